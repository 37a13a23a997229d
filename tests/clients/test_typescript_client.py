"""A TypeScript client generated from the committed ``openapi/openapi.json`` works as is.

``@hey-api/openapi-ts`` (with its fetch client) generates the client into a temp
workspace; ``tsc --strict`` compiles it together with ``ts/driver.ts``, which then runs
under node against a live gateway over real HTTP: it creates a job, polls it to
``completed``, reads its typed fields, and reads a typed 401 and 400. The driver's
``@ts-expect-error`` lines make the compile fail if a generated type is looser than the
spec promises (a status that is any string, an output field that may be absent, ...).

The npm packages are pinned in ``ts/package.json`` / ``ts/package-lock.json`` and
installed with ``npm ci`` into ``ts/node_modules`` (git-ignored) when missing or stale: on
a clean clone that is a cold install, which the npm timeout and the tests' own pytest
timeout (above the project's default of 120 s) both cover.

Without ``node`` or ``npm`` on PATH the tests skip on a developer's machine, and fail
under ``CI=true``: CI must run every test (``node_tools_missing``, ``require_node_tools``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from tests.conftest import TEST_KEY
from tests.support.echo import EchoProvider
from tests.support.servers import serve

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "openapi" / "openapi.json"
TS_DIR = Path(__file__).resolve().parent / "ts"
NODE_MODULES = TS_DIR / "node_modules"

NODE = shutil.which("node")
NPM = shutil.which("npm")

NPM_CI_TIMEOUT = 900  # seconds: a cold ``npm ci`` (empty npm cache, slow registry)
# A test that may run the cold install in its setup, then generate, compile and run.
SLOW = pytest.mark.timeout(NPM_CI_TIMEOUT + 600)


def node_tools_missing(env: Mapping[str, str], which: Callable[..., str | None]) -> str | None:
    """What keeps the TypeScript client tests from running here: ``node`` and/or ``npm``
    not on ``env``'s PATH (looked up with ``which``, e.g. ``shutil.which``); None when
    both are there."""
    path = env.get("PATH")
    missing = [tool for tool in ("node", "npm") if which(tool, path=path) is None]
    if not missing:
        return None
    return f"{' and '.join(missing)} not on PATH: needed for the TypeScript client tests"


def on_ci(env: Mapping[str, str]) -> bool:
    return env.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_node_tools(env: Mapping[str, str], which: Callable[..., str | None]) -> None:
    """Skip when node or npm is missing, except under ``CI=true``: there, fail."""
    missing = node_tools_missing(env, which)
    if missing is None:
        return
    if on_ci(env):
        pytest.fail(f"{missing} (CI=true: every test must run, none may skip)", pytrace=False)
    pytest.skip(missing)


def _run(args: list[str], cwd: Path, timeout: float, **kw: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "npm_config_update_notifier": "false"}
    env.update(kw.pop("env", {}))  # type: ignore[arg-type]
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """``npm ci`` from the committed lock file, unless node_modules is already current."""
    require_node_tools(os.environ, shutil.which)
    marker = NODE_MODULES / ".package-lock.json"  # written by npm after every install
    lock = TS_DIR / "package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        proc = _run([NPM, "ci", "--no-audit", "--no-fund"], TS_DIR, timeout=NPM_CI_TIMEOUT)  # type: ignore[list-item]
        assert proc.returncode == 0, proc.stdout + proc.stderr
    for tool in ("@hey-api/openapi-ts/bin/run.js", "typescript/bin/tsc"):
        assert (NODE_MODULES / tool).exists(), tool
    return NODE_MODULES


def build(workspace: Path, spec: Path, node_modules: Path) -> subprocess.CompletedProcess:
    """Generate the client from ``spec`` into ``workspace`` and compile the driver there."""
    workspace.mkdir(parents=True, exist_ok=True)
    for name in ("driver.ts", "tsconfig.json"):
        shutil.copy(TS_DIR / name, workspace / name)
    (workspace / "node_modules").symlink_to(node_modules, target_is_directory=True)
    gen = _run(
        [
            NODE,  # type: ignore[list-item]
            str(node_modules / "@hey-api/openapi-ts/bin/run.js"),
            "--input",
            str(spec),
            "--output",
            str(workspace / "generated"),
            "--client",
            "@hey-api/client-fetch",
            "--no-log-file",
        ],
        workspace,
        timeout=120,
    )
    assert gen.returncode == 0, gen.stdout + gen.stderr
    assert (workspace / "generated" / "sdk.gen.ts").exists(), gen.stdout
    return _run(
        [NODE, str(node_modules / "typescript/bin/tsc"), "-p", "tsconfig.json"],  # type: ignore[list-item]
        workspace,
        timeout=180,
    )


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory, node_modules: Path) -> Path:
    """The compiled driver, built once per module from the committed spec."""
    workspace = tmp_path_factory.mktemp("ts-client")
    tsc = build(workspace, SPEC, node_modules)
    assert tsc.returncode == 0, f"tsc rejected the driver:\n{tsc.stdout}{tsc.stderr}"
    compiled = workspace / "dist" / "driver.js"
    assert compiled.exists()
    return compiled


@pytest.fixture
def gateway_url(make_settings: Callable[..., Settings]) -> Iterator[str]:
    """A live gateway over real HTTP on loopback, with the echo provider."""
    app = create_app(make_settings(GATEWAY_REFRESH_INTERVAL="0"), providers=[EchoProvider()])
    with serve(app) as url:
        yield url


@SLOW
def test_generated_client_round_trip(driver: Path, gateway_url: str) -> None:
    proc = _run(
        [NODE, str(driver)],  # type: ignore[list-item]
        driver.parent,
        timeout=60,
        env={"GATEWAY_URL": gateway_url, "GATEWAY_KEY": TEST_KEY, "GATEWAY_MODEL": "echo/v1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])

    assert summary["statuses"] == ["queued", "in_progress", "completed"]
    job = summary["job"]
    assert job["id"].startswith("mus_")
    assert job["object"] == "music"
    assert job["provider"] == "echo" and job["model"] == "echo/v1"
    assert job["audio_url"] == f"https://echo.test/{job['nativeResponseId']}.wav"
    assert job["title"] == "Lofi" and job["duration"] == 3.5
    assert job["usage"] == {"output_audio_count": 1, "output_audio_seconds": 3.5}
    assert job["metadata"] == {"user": "42"}

    e401 = summary["e401"]
    assert e401["error"] == "invalid_api_key" and e401["status_code"] == 401
    assert e401["request_id"].startswith("req_")
    e400 = summary["e400"]
    assert e400["error"] == "unknown_model" and e400["status_code"] == 400
    assert e400["param"] == "model" and e400["details"] == ["echo/v1", "echo/i1"]


@SLOW
def test_tsc_rejects_the_driver_when_the_spec_is_looser(tmp_path: Path, node_modules: Path) -> None:
    """The compile step has teeth: loosen the spec (status any string, output fields
    optional) and the driver's type checks fail."""
    spec = json.loads(SPEC.read_text())
    schemas = spec["components"]["schemas"]
    schemas["MusicJob"]["properties"]["status"] = {"type": "string"}
    schemas["OutputItem"]["required"] = ["index"]
    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps(spec))

    tsc = build(tmp_path / "ws", loose, node_modules)
    out = tsc.stdout + tsc.stderr
    assert tsc.returncode != 0, out
    assert "TS2578" in out  # an @ts-expect-error that no longer finds an error
    assert "not assignable to type 'string | null'" in out  # audio_url may be undefined


# ------------------------------------------------------- when node or npm is missing


def _which(*found: str) -> Callable[..., str | None]:
    """A fake ``shutil.which`` that finds only ``found``, and checks the PATH it is given."""

    def which(tool: str, path: str | None = None) -> str | None:
        assert path == "/fake/bin"
        return f"/fake/bin/{tool}" if tool in found else None

    return which


@pytest.mark.parametrize("ci", [None, "true", "false"])
def test_node_tools_present_run_everywhere(ci: str | None) -> None:
    env = {"PATH": "/fake/bin", **({"CI": ci} if ci is not None else {})}
    assert node_tools_missing(env, _which("node", "npm")) is None
    require_node_tools(env, _which("node", "npm"))  # neither skips nor fails


@pytest.mark.parametrize(
    ("found", "missing"),
    [(("npm",), "node"), (("node",), "npm"), ((), "node and npm")],
)
def test_missing_node_tools_skip_outside_ci_and_fail_under_ci(
    found: tuple[str, ...], missing: str
) -> None:
    which = _which(*found)
    reason = node_tools_missing({"PATH": "/fake/bin"}, which)
    assert reason is not None and reason.startswith(f"{missing} not on PATH")
    for env in ({"PATH": "/fake/bin"}, {"PATH": "/fake/bin", "CI": "false"}):
        with pytest.raises(pytest.skip.Exception, match=missing):
            require_node_tools(env, which)
    for ci in ("true", "TRUE", "1"):
        with pytest.raises(pytest.fail.Exception, match="CI=true"):
            require_node_tools({"PATH": "/fake/bin", "CI": ci}, which)
