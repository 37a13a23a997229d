"""A client generated from AI Stats' own OpenAPI description of its music routes works
against the gateway unchanged: it creates a job, polls it to ``completed``, through both
the ``/generate`` routes and the ``/generations`` aliases.

``openapi-python-client`` generates the client once per module from
``ai_stats/ai-stats-music.yaml`` (written from AI Stats' published spec) into a temp dir.
The gateway is served on loopback in front of every provider's simulator.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.infra.settings import Settings
from tests.gateway.ai_stats_stack import GW_KEY, simulators
from tests.gateway.ai_stats_stack import gateway as served_gateway
from tests.support.waiting import eventually

SPEC = Path(__file__).parent / "ai_stats" / "ai-stats-music.yaml"
PACKAGE = "ai_stats_music_client"
GENERATE_TIMEOUT = 300

pytestmark = pytest.mark.timeout(GENERATE_TIMEOUT + 120)


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Any]]:
    parent = tmp_path_factory.mktemp("ai-stats-client")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(SPEC),
            "--output-path",
            str(parent / PACKAGE),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=GENERATE_TIMEOUT,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert "Warning(s) encountered" not in log, log
    sys.path.insert(0, str(parent))
    try:
        yield lambda name="": importlib.import_module(f"{PACKAGE}.{name}" if name else PACKAGE)
    finally:
        sys.path.remove(str(parent))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def sims() -> Iterator[Any]:
    with simulators() as running:
        yield running


@pytest.mark.parametrize(
    ("create_op", "get_op"),
    [
        ("generate_music", "get_music_generation"),
        ("generate_music_alias", "get_music_generation_alias"),
    ],
)
async def test_the_ai_stats_client_creates_and_polls_to_completed(
    gen: Callable[[str], Any],
    make_settings: Callable[..., Settings],
    sims: Any,
    create_op: str,
    get_op: str,
) -> None:
    models = gen("models")
    create = gen(f"api.default.{create_op}")
    get = gen(f"api.default.{get_op}")
    async with served_gateway(make_settings, sims) as served:
        client = gen("").AuthenticatedClient(
            base_url=str(served.base_url), token=GW_KEY, raise_on_unexpected_status=True
        )
        body = models.MusicGenerateRequest(
            model="musicgpt/v7",
            prompt="a calm lofi beat",
            duration=30,
            format_=models.MusicGenerateRequestFormat.MP3,
            provider=models.ProviderRoutingOptions(only=["musicgpt"], allow_fallbacks=True),
            debug=models.DebugOptions(return_upstream_request=True),
        )
        async with client as c:
            created = await create.asyncio(client=c, body=body)
            assert isinstance(created, models.MusicGenerateResponse)
            job = created.additional_properties
            assert job["object"] == "music" and job["provider"] == "musicgpt"
            assert job["status"] in ("queued", "in_progress")
            assert [w["param"] for w in job["warnings"]] == ["duration"]
            assert job["debug"]["upstream_request"]["body"]["prompt"] == "a calm lofi beat"

            latest: dict[str, Any] = {}

            async def completed() -> bool:
                answer = await get.asyncio(job["id"], client=c)
                latest.update(answer.additional_properties)
                return latest["status"] == "completed"

            await eventually(completed, what="the AI Stats client sees completed")
        assert latest["nativeResponseId"] and latest["usage"]["output_audio_count"] == 2
        assert latest["audio_url"] == latest["output"][0]["audio_url"]
