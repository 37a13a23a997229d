"""The ElevenLabs simulator speaks the native wire format: the key check, the API's 422
validation, real audio of the asked length (MP3 decoded by FFmpeg, PCM sized), knobs and
stats; and ``streams.finish`` on answers the simulator does not make."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

import providers.elevenlabs as elevenlabs
from providers.base import UpstreamError
from providers.elevenlabs import mapping, sim_audio, streams

from .conftest import KEY, Sim, decoded_seconds, request

PLAN_V1 = {
    "positive_global_styles": ["pop"],
    "negative_global_styles": [],
    "sections": [
        {
            "section_name": "Intro",
            "positive_local_styles": [],
            "negative_local_styles": [],
            "duration_ms": 4000,
            "lines": [],
        }
    ],
}


async def post(sim: Sim, body: Any, fmt: str | None = "mp3_44100_128", key: str | None = KEY):
    params = {"output_format": fmt} if fmt else {}
    headers = {"xi-api-key": key} if key else {}
    async with httpx.AsyncClient(timeout=30) as c:
        return await c.post(f"{sim.url}/v1/music", params=params, json=body, headers=headers)


async def test_the_key_is_checked(el_sim: Sim) -> None:
    missing = await post(el_sim, {"prompt": "x"}, key=None)
    assert missing.status_code == 401
    assert missing.json()["detail"]["status"] == "needs_authorization"
    wrong = await post(el_sim, {"prompt": "x"}, key="nope")
    assert wrong.status_code == 401 and wrong.json()["detail"]["status"] == "invalid_api_key"
    assert (await el_sim.stats())["auth_failures"] == 2


@pytest.mark.parametrize(
    ("body", "fmt", "loc"),
    [
        ({"prompt": "x", "music_length_ms": 2999}, "mp3_44100_128", ["body", "music_length_ms"]),
        ({"prompt": "x", "music_length_ms": 600001}, "mp3_44100_128", ["body", "music_length_ms"]),
        ({"prompt": "x", "composition_plan": PLAN_V1}, "mp3_44100_128", ["body"]),
        ({}, "mp3_44100_128", ["body"]),
        ({"prompt": "x" * 2001}, "mp3_44100_128", ["body", "prompt"]),
        ({"prompt": "x", "seed": 1}, "mp3_44100_128", ["body", "seed"]),
        ({"prompt": "x", "model_id": "music_v9"}, "mp3_44100_128", ["body", "model_id"]),
        ({"prompt": "x"}, "wav_44100", ["query", "output_format"]),
        (
            {"composition_plan": PLAN_V1, "model_id": "music_v2"},
            "mp3_44100_128",
            ["body", "composition_plan"],
        ),
        (
            {"composition_plan": PLAN_V1, "music_length_ms": 5000},
            "mp3_44100_128",
            ["body", "music_length_ms"],
        ),
        ({"prompt": "x", "finetune_strength": 1.0}, "mp3_44100_128", ["body", "finetune_strength"]),
    ],
)
async def test_validation_like_the_api(
    el_sim: Sim, body: dict[str, Any], fmt: str, loc: list[str]
) -> None:
    resp = await post(el_sim, body, fmt)
    assert resp.status_code == 422, resp.text
    [issue] = resp.json()["detail"]
    assert issue["loc"] == loc and issue["msg"] and issue["type"]
    assert (await el_sim.stats())["rejected"] == 1


@pytest.mark.parametrize("ms", [3000, 61000])
async def test_mp3_of_the_asked_length(el_sim: Sim, ms: int) -> None:
    resp = await post(el_sim, {"prompt": "x", "music_length_ms": ms})
    assert resp.status_code == 200 and resp.headers["content-type"] == "audio/mpeg"
    assert resp.headers["song-id"] and "content-length" not in resp.headers
    assert len(resp.content) == sim_audio.mp3_size(ms)
    assert resp.content[:2] == b"\xff\xfb"  # an MPEG-1 Layer III frame header
    assert decoded_seconds(resp.content) == pytest.approx(ms / 1000, rel=0.05)
    stats = await el_sim.stats()
    assert stats["last_sha256"] == hashlib.sha256(resp.content).hexdigest()


async def test_pcm_and_plan_lengths_and_the_default(el_sim: Sim) -> None:
    plan = await post(el_sim, {"composition_plan": PLAN_V1}, "pcm_16000")
    assert plan.status_code == 200 and plan.headers["content-type"] == "audio/pcm"
    assert int(plan.headers["content-length"]) == len(plan.content) == 4 * 16000 * 2
    await el_sim.set(default_length_ms=5000)
    default = await post(el_sim, {"prompt": "x"}, "pcm_44100")
    assert len(default.content) == 5 * 44100 * 2
    v2 = {
        "model_id": "music_v2",
        "composition_plan": {
            "chunks": [
                {"text": "[Verse]", "duration_ms": 3000, "positive_styles": []},
                {"song_id": "s", "range": {"start_ms": 0, "end_ms": 1500}},
            ]
        },
    }
    assert len((await post(el_sim, v2, "pcm_8000")).content) == 9 * 8000 // 2 * 2


async def test_the_concurrency_limit_and_config_endpoint(el_sim: Sim) -> None:
    await el_sim.set(max_concurrency=0, concurrency_retry_after=7)
    resp = await post(el_sim, {"prompt": "x"})
    assert resp.status_code == 429 and resp.headers["retry-after"] == "7"
    assert resp.json()["detail"]["status"] == "too_many_concurrent_requests"
    async with httpx.AsyncClient() as c:
        bad = await c.post(f"{el_sim.url}/__sim__/config", json={"latncy": 1})
        assert bad.status_code == 400
        assert (await c.get(f"{el_sim.url}/__sim__/config")).json()["max_concurrency"] == 0


def test_pcm_is_made_lazily() -> None:
    chunks = sim_audio.pcm_chunks(600_000, 44100, 65536)
    first = next(chunks)
    assert len(first) == 65536 and sum(map(len, chunks)) == 600 * 44100 * 2 - 65536


def test_the_simulator_spec() -> None:
    env = elevenlabs.SIMULATOR.env_for("http://127.0.0.1:1")
    assert env == {
        "ELEVENLABS_API_KEY": "sim-elevenlabs-key",
        "ELEVENLABS_BASE_URL": "http://127.0.0.1:1",
    }
    app = elevenlabs.SIMULATOR.create_app()
    assert app.state.sim.config.latency > 0


# ------------------------------------------------- streams.finish on odd answers


class FakeBody:
    def __init__(self, parts: list[bytes], ctype: str, length: int | None = None) -> None:
        self.headers = CIMultiDictProxy(CIMultiDict({"Content-Type": ctype, "song-id": "s9"}))
        self.length = length
        self.closed = False
        self._parts = iter(parts)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        try:
            return next(self._parts)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("fmt", "body", "words"),
    [
        ("mp3", FakeBody([b'{"detail": "odd"}'], "application/json"), "instead of audio"),
        ("mp3", FakeBody([], "audio/mpeg"), "no audio"),
        ("wav", FakeBody([], "audio/pcm", length=0), "no audio"),
        ("wav", FakeBody([], "audio/pcm"), "no audio"),
        ("wav", FakeBody([b"x"], "audio/pcm", length=1 << 33), "do not fit"),
    ],
)
async def test_odd_answers_are_errors_and_closed(fmt: str, body: FakeBody, words: str) -> None:
    req = request(format=fmt)
    with pytest.raises(UpstreamError) as caught:
        await streams.finish(req, mapping.to_native(req), body)
    assert words in caught.value.message and caught.value.sent and body.closed


async def test_mp3_is_passed_through_and_typed_by_upstream() -> None:
    req = request()
    body = FakeBody([b"ID3", b"\xff\xfb", b"rest"], "audio/mpeg", length=9)
    fin = await streams.finish(req, mapping.to_native(req), body)
    s = fin.streams[0]
    assert s.length == 9 and b"".join([c async for c in s.chunks]) == b"ID3\xff\xfbrest"
    assert fin.native_id == "s9" and fin.artefacts[0].id == "s9"
    await s.aclose()
    assert body.closed
