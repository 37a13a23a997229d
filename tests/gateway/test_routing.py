"""Routing with the real registry: the catalog, unknown models, unsupported parameters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from tests.conftest import app_client

MODEL_IDS = [
    "musicgpt/v6", "musicgpt/v6-pro", "musicgpt/v7", "musicgpt/v7-pro",
    "tempolor/v3", "tempolor/v3.5", "tempolor/v4.5+", "tempolor/v4.8",
    "tempolor/i3", "tempolor/i3.5", "tempolor/i4",
    "suno/v4", "suno/v4.5", "suno/v4.5+", "suno/v4.5-all", "suno/v5", "suno/v4.5plus",
    "elevenlabs/music_v1", "elevenlabs/music_v2", "elevenlabs/music", "eleven-labs/music",
]  # fmt: skip


@pytest.fixture
async def client(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    # Real providers, no credentials: validation and routing run before any upstream call.
    app = create_app(make_settings())
    async with app_client(app) as c:
        yield c


async def test_catalog(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/models")
    assert r.status_code == 200
    data = {m["id"]: m for m in r.json()["data"]}
    assert list(data) == MODEL_IDS
    for model_id, m in data.items():
        assert m["provider"] == model_id.split("/")[0].replace("eleven-labs", "elevenlabs")
        assert m["object"] == "model"
        assert m["available"] is False  # no credentials in this test
        instrumental = model_id in {"tempolor/i3", "tempolor/i3.5", "tempolor/i4"}
        assert m["kind"] == ("instrumental" if instrumental else "song")
    assert "duration" not in data["musicgpt/v7"]["supported_parameters"]
    assert "style" in data["musicgpt/v7"]["supported_parameters"]
    assert "gender" in data["musicgpt/v7"]["native_parameters"]
    assert "lyrics" not in data["tempolor/i4"]["supported_parameters"]
    assert "bpm" in data["tempolor/i4"]["native_parameters"]
    assert "duration" in data["elevenlabs/music"]["supported_parameters"]
    assert "composition_plan" in data["eleven-labs/music"]["native_parameters"]
    assert "style" in data["suno/v4.5plus"]["supported_parameters"]
    assert "vocalGender" in data["suno/v5"]["native_parameters"]


async def _post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/music/generate", json=body)


async def test_unknown_model_lists_every_valid_id(client: httpx.AsyncClient) -> None:
    r = await _post(client, {"model": "udio/v1", "prompt": "x"})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "unknown_model" and body["param"] == "model"
    assert body["details"] == MODEL_IDS
    for model_id in MODEL_IDS:
        assert model_id in body["description"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "musicgpt/v7", "prompt": "x", "duration": 30}, "duration"),
        ({"model": "tempolor/v4.8", "prompt": "x", "title": "T"}, "title"),
        ({"model": "tempolor/v4.8", "prompt": "x", "style": "jazz"}, "style"),
        ({"model": "tempolor/v3", "prompt": "x", "duration": 60}, "duration"),
        ({"model": "tempolor/i4", "prompt": "x", "lyrics": "la"}, "lyrics"),
        ({"model": "musicgpt/v6", "prompt": "x", "tempolor": {"bpm": 90}}, "tempolor"),
        ({"model": "tempolor/i3", "prompt": "x", "musicgpt": {"gender": "male"}}, "musicgpt"),
    ],
)
async def test_unsupported_parameter(client: httpx.AsyncClient, body: dict, param: str) -> None:
    """A field the model cannot use: a warning by default (the job runs without it), the
    400 under ``require_parameters``; another provider's native block: always a 400."""
    native = param in ("musicgpt", "tempolor")
    r = await _post(client, body)
    if native:
        assert r.status_code == 400, r.text
        assert (r.json()["error"], r.json()["param"]) == ("unsupported_parameter", param)
        return
    # past the parameter policy: this gateway has no provider credentials configured
    assert r.json()["error"] == "provider_not_configured", r.text
    r = await _post(client, {**body, "provider": {"require_parameters": True}})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "unsupported_parameter"
    assert r.json()["param"] == param


async def test_native_blocks_are_checked(client: httpx.AsyncClient) -> None:
    r = await _post(client, {"model": "musicgpt/v7", "prompt": "x", "musicgpt": {"genre": "a"}})
    assert r.status_code == 400
    assert r.json()["error"] == "unknown_parameter"
    assert r.json()["param"] == "musicgpt.genre"
    r = await _post(client, {"model": "musicgpt/v7", "prompt": "x", "musicgpt": {"gender": "x"}})
    assert r.status_code == 400 and r.json()["param"] == "musicgpt.gender"


async def test_valid_request_routes_to_unconfigured_provider(client: httpx.AsyncClient) -> None:
    for model in ("musicgpt/v7-pro", "tempolor/i3.5"):
        r = await _post(client, {"model": model, "prompt": "x"})
        assert r.status_code == 503
        assert r.json()["error"] == "provider_not_configured"
        assert model.split("/")[0] in r.json()["description"]
