"""A Python client generated from the committed ``openapi/openapi.json`` works as is.

``openapi-python-client`` generates the client once per module (into a temp dir, never
committed); the tests drive it over real HTTP against a live gateway whose provider is
the test-only echo provider (``echo/v1``: queued → in_progress → completed, one step per
poll with ``GATEWAY_REFRESH_INTERVAL=0``). The committed spec is built from the real
registry; the echo app's spec differs only in its native block, and ``model`` is a plain
string, so ``echo/v1`` goes through the generated types unchanged.

Everything is read through the generated, typed models: the job, its status enum, its
outputs and usage, and the error envelope of a 401 and of 400s.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from tests.conftest import TEST_KEY
from tests.support.echo import EchoProvider
from tests.support.servers import serve

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "openapi" / "openapi.json"
PACKAGE = "music_gateway_client"
GENERATE_TIMEOUT = 300  # seconds: the generator (and the ruff it runs) on a cold machine

# The first test's setup runs the generator: above the project's default of 120 s.
pytestmark = pytest.mark.timeout(GENERATE_TIMEOUT + 120)


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Any]]:
    """Generate the client from the committed spec; ``gen("models")`` imports a submodule."""
    parent = tmp_path_factory.mktemp("python-client")
    out = parent / PACKAGE
    env = dict(os.environ)
    # The generator formats its output with ruff, installed next to this interpreter.
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
            str(out),
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
    # The spec must generate cleanly: a warning means a schema or an operation was skipped.
    assert "Warning(s) encountered" not in log, log
    assert "Error(s) encountered" not in log, log
    sys.path.insert(0, str(parent))
    try:
        yield lambda name="": importlib.import_module(f"{PACKAGE}.{name}" if name else PACKAGE)
    finally:
        sys.path.remove(str(parent))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture
def gateway_url(make_settings: Callable[..., Settings]) -> Iterator[str]:
    """A live gateway over real HTTP on loopback, with the echo provider."""
    app = create_app(make_settings(GATEWAY_REFRESH_INTERVAL="0"), providers=[EchoProvider()])
    with serve(app) as url:
        yield url


def _client(gen: Callable[[str], Any], url: str, key: str) -> Any:
    return gen("").AuthenticatedClient(base_url=url, token=key, raise_on_unexpected_status=True)


def test_generated_package_has_typed_models(gen: Callable[[str], ModuleType]) -> None:
    models = gen("models")
    # Named models and enums, one class per schema (no ``..._type_2_type_1`` duplicates).
    assert {s.value for s in models.MusicJobStatus} == {
        "queued",
        "in_progress",
        "completed",
        "failed",
    }
    assert {f.value for f in models.MusicGenerateRequestFormatType0} == {"mp3", "wav", "ogg", "aac"}
    for name in ("MusicJob", "OutputItem", "Usage", "JobErrorInfo", "ErrorResponse"):
        assert hasattr(models, name), name
    assert not [n for n in dir(models) if "Type1" in n or "Type2" in n]


def test_create_poll_to_completed_with_typed_fields(
    gen: Callable[[str], Any], gateway_url: str
) -> None:
    models = gen("models")
    create = gen("api.music.create_music_generation")
    get = gen("api.music.get_music_generation")
    status = models.MusicJobStatus

    with _client(gen, gateway_url, TEST_KEY) as client:
        metadata = models.MusicGenerateRequestMetadataType0.from_dict({"user": "42"})
        body = models.MusicGenerateRequest(
            model="echo/v1",
            prompt="a calm lofi beat",
            title="Lofi",
            format_=models.MusicGenerateRequestFormatType0.WAV,
            metadata=metadata,
        )
        job = create.sync(client=client, body=body)
        assert isinstance(job, models.MusicJob)
        assert job.status is status.QUEUED
        assert job.id.startswith("mus_")
        assert job.object_ == "music"
        assert job.provider == "echo" and job.model == "echo/v1"
        assert job.output == [] and job.usage is None and job.error is None

        seen = [job.status]
        for _ in range(10):
            response = get.sync_detailed(job.id, client=client)
            assert response.status_code == 200
            job = response.parsed
            assert isinstance(job, models.MusicJob)
            seen.append(job.status)
            if job.status in (status.COMPLETED, status.FAILED):
                break
        assert seen == [status.QUEUED, status.IN_PROGRESS, status.COMPLETED]

        assert job.progress == 100
        assert isinstance(job.created_at, int) and job.updated_at >= job.created_at
        assert job.native_response_id and job.native_response_id.startswith("echo-")
        assert len(job.output) == 1
        out = job.output[0]
        assert isinstance(out, models.OutputItem)
        assert out.index == 0
        assert out.audio_url == f"https://echo.test/{job.native_response_id}.wav"
        assert out.title == "Lofi"
        assert out.duration == 3.5
        assert out.lyrics is None and out.image_url is None  # null, not absent
        assert isinstance(job.usage, models.Usage)
        assert job.usage.output_audio_count == 1
        assert job.usage.output_audio_seconds == 3.5
        assert isinstance(job.metadata, models.MusicJobMetadataType0)
        assert job.metadata.additional_properties == {"user": "42"}
        assert job.additional_properties == {}  # the spec lists every field the job has

        again = get.sync(job.id, client=client)  # a final job, read back from the store
        assert isinstance(again, models.MusicJob)
        assert again.to_dict() == job.to_dict()


def test_typed_401_for_a_bad_key(gen: Callable[[str], Any], gateway_url: str) -> None:
    models = gen("models")
    create = gen("api.music.create_music_generation")
    get = gen("api.music.get_music_generation")
    types = gen("types")

    with _client(gen, gateway_url, "sk-not-a-real-key") as client:
        response = create.sync_detailed(
            client=client, body=models.MusicGenerateRequest(model="echo/v1", prompt="x")
        )
        assert response.status_code == 401
        err = response.parsed
        assert isinstance(err, models.ErrorResponse)
        assert err.error == "invalid_api_key"
        assert err.status_code == 401
        assert err.request_id == response.headers["x-request-id"]
        assert err.description
        assert isinstance(err.param, types.Unset)  # absent, not null

        missing = get.sync("mus_nothing", client=client)
        assert isinstance(missing, models.ErrorResponse)
        assert missing.error == "invalid_api_key"


def test_typed_400s(gen: Callable[[str], Any], gateway_url: str) -> None:
    models = gen("models")
    create = gen("api.music.create_music_generation")
    get = gen("api.music.get_music_generation")

    with _client(gen, gateway_url, TEST_KEY) as client:
        response = create.sync_detailed(
            client=client, body=models.MusicGenerateRequest(model="suno/v4", prompt="x")
        )
        assert response.status_code == 400
        err = response.parsed
        assert isinstance(err, models.ErrorResponse)
        assert err.error == "unknown_model"
        assert err.status_code == 400
        assert err.param == "model"
        assert err.details == ["echo/v1", "echo/i1"]
        assert "suno/v4" in err.description
        assert err.request_id == response.headers["x-request-id"]

        # The spec closes the request (additionalProperties: false): the typed model has
        # no way to send a field the API does not have; raw JSON still gets a typed 400.
        body = models.MusicGenerateRequest(model="echo/v1", prompt="x")
        assert not hasattr(body, "additional_properties")
        raw = client.get_httpx_client().post(
            "/v1/music/generate", json={**body.to_dict(), "tempo": 120}
        )
        unknown = models.ErrorResponse.from_dict(raw.json())
        assert raw.status_code == 400
        assert unknown.error == "unknown_parameter"
        assert unknown.details == ["tempo"]

        not_found = get.sync_detailed("mus_00000000000000000000000000", client=client)
        assert not_found.status_code == 404
        assert isinstance(not_found.parsed, models.ErrorResponse)
        assert not_found.parsed.error == "not_found"
