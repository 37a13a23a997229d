"""The ElevenLabs provider against its simulator over real HTTP on loopback: the audio
answer (MP3 byte for byte, PCM wrapped as WAV, with and without ``Content-Length``),
every error knob, the key kept out of messages and logs, latency and concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
import wave
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from providers.base import (
    Finished,
    ProviderError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamInsufficientCredits,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)
from providers.elevenlabs import ElevenLabsProvider, create
from providers.elevenlabs.catalog import CompositionPlan, ElevenLabsOptions, PlanChunk
from tests.support.spool import SpoolFiles

from .conftest import KEY, Sim, decoded_seconds, make_provider, read_all, request


async def test_mp3_is_the_providers_bytes_unchanged(
    provider: ElevenLabsProvider, el_sim: Sim
) -> None:
    fin = await provider.start(request(duration=12))
    assert isinstance(fin, Finished) and list(fin.streams) == [0]
    stream = fin.streams[0]
    data = await read_all(stream)
    stats = await el_sim.stats()
    assert hashlib.sha256(data).hexdigest() == stats["last_sha256"]
    assert len(data) == stats["last_bytes"] and stream.length is None  # sent chunked
    assert stream.content_type == "audio/mpeg"
    [art] = fin.artefacts
    assert art.index == 0 and art.kind == "audio" and art.content_type == "audio/mpeg"
    assert art.duration == 12.0 and art.title is None and art.audio_url is None
    assert art.id and fin.native_id == art.id
    assert decoded_seconds(data) == pytest.approx(12.0, rel=0.05)
    assert msgspec.json.decode(stats["last_body"]) == {
        "prompt": request().prompt,
        "music_length_ms": 12000,
        "model_id": "music_v2",
    }
    assert stats["last_query"] == "mp3_44100_128" and KEY not in stats["last_body"]


async def test_mp3_with_content_length_and_the_default_length(
    provider: ElevenLabsProvider, el_sim: Sim
) -> None:
    await el_sim.set(mp3_content_length=True, default_length_ms=4000)
    fin = await provider.start(request("elevenlabs/music_v1"))
    data = await read_all(fin.streams[0])
    assert fin.streams[0].length == len(data) == (await el_sim.stats())["last_bytes"]
    assert fin.artefacts[0].duration is None  # none requested, not PCM
    assert decoded_seconds(data) == pytest.approx(4.0, rel=0.05)


def check_wav(data: bytes, seconds: float, pcm_sha: str) -> None:
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt " and data[36:40] == b"data"
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 44100)
        assert w.getnframes() == round(seconds * 44100)
        pcm = w.readframes(w.getnframes())
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    assert hashlib.sha256(pcm).hexdigest() == pcm_sha  # the PCM itself, unchanged
    assert decoded_seconds(data) == pytest.approx(seconds, rel=0.01)


@pytest.mark.parametrize("content_length", [True, False])
async def test_wav_wraps_the_pcm(
    provider: ElevenLabsProvider, el_sim: Sim, content_length: bool
) -> None:
    await el_sim.set(pcm_content_length=content_length, chunk_size=4096)
    fin = await provider.start(request(duration=7, format="wav"))
    stream = fin.streams[0]
    data = await read_all(stream)
    stats = await el_sim.stats()
    assert stats["last_query"] == "pcm_44100"
    check_wav(data, 7.0, stats["last_sha256"])
    assert stream.length == len(data) and stream.content_type == "audio/wav"
    assert fin.artefacts[0].content_type == "audio/wav" and fin.artefacts[0].duration == 7.0


async def test_wav_duration_is_measured_from_the_pcm(
    provider: ElevenLabsProvider, el_sim: Sim
) -> None:
    plan = CompositionPlan(
        chunks=[PlanChunk(text="[Intro]", duration_ms=3500, positive_styles=["ambient"])]
    )
    req = request(format="wav", options=ElevenLabsOptions(composition_plan=plan, seed=4))
    fin = await provider.start(req)
    assert fin.artefacts[0].duration == 3.5
    body = msgspec.json.decode((await el_sim.stats())["last_body"])
    assert body["composition_plan"] == msgspec.to_builtins(plan) and body["seed"] == 4
    await fin.streams[0].aclose()


async def test_the_spool_file_is_closed_at_the_end_or_on_aclose(
    provider: ElevenLabsProvider, el_sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = SpoolFiles(monkeypatch)
    await el_sim.set(pcm_content_length=False)
    fin = await provider.start(request(duration=3, format="wav"))
    [spool] = files.made
    assert not spool.closed
    await read_all(fin.streams[0])
    assert spool.closed
    fin = await provider.start(request(duration=3, format="wav"))
    await fin.streams[0].aclose()  # never read
    assert files.made[1].closed


async def test_a_ten_minute_pcm_answer_streams_in_bounded_memory(
    provider: ElevenLabsProvider, el_sim: Sim
) -> None:
    import tracemalloc

    size = 600 * 44100 * 2
    for content_length in (True, False):  # streamed straight through, or spooled to disk
        await el_sim.set(pcm_content_length=content_length)
        tracemalloc.start()
        try:
            fin = await provider.start(request(duration=600, format="wav"))
            stream, total, digest = fin.streams[0], 0, hashlib.sha256()
            async for chunk in stream.chunks:
                total += len(chunk)
                digest.update(chunk[44:] if total == len(chunk) else chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert total == size + 44 and stream.length == total
        assert fin.artefacts[0].duration == 600.0
        assert peak < size / 10, f"peak {peak} bytes for a {size}-byte answer"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("fault", "cls", "status", "words"),
    [
        (
            {"kind": "bad_prompt", "suggestion": "A calm piano piece"},
            UpstreamRejected,
            422,
            ["bad_prompt", "suggested prompt: A calm piano piece"],
        ),
        ({"kind": "bad_prompt", "status": 400}, UpstreamRejected, 400, ["bad_prompt"]),
        (
            {"kind": "bad_composition_plan"},
            UpstreamRejected,
            422,
            ["bad_composition_plan", "suggested plan:", "Intro 10s"],
        ),
        (
            {"kind": "validation"},
            UpstreamRejected,
            422,
            ["music_length_ms: Input should be less than or equal to 600000"],
        ),
        ({"kind": "invalid_api_key"}, UpstreamAuthError, 401, ["invalid_api_key"]),
        ({"kind": "quota_exceeded"}, UpstreamInsufficientCredits, 401, ["quota_exceeded"]),
        ({"kind": "system_busy"}, UpstreamRateLimited, 429, ["system_busy"]),
        ({"kind": "server_error"}, UpstreamError, 500, ["Internal Server Error"]),
    ],
)
async def test_error_knobs(
    provider: ElevenLabsProvider,
    el_sim: Sim,
    fault: dict[str, Any],
    cls: type[ProviderError],
    status: int,
    words: list[str],
) -> None:
    await el_sim.set(faults=[fault], echo_key_in_errors=True)
    with capture_logs() as logs, pytest.raises(ProviderError) as caught:
        await provider.start(request())
    err = caught.value
    assert type(err) is cls and err.native_status == status and err.sent
    for word in words:
        assert word in err.message, err.message
    assert KEY not in err.message and KEY not in repr(logs)
    assert "[redacted]" in err.message or status == 500  # it was echoed, and scrubbed
    fin = await provider.start(request(duration=3))  # the fault was for one call
    await fin.streams[0].aclose()


async def test_too_many_concurrent_requests_with_and_without_retry_after(
    provider: ElevenLabsProvider, el_sim: Sim
) -> None:
    rule = {"kind": "too_many_concurrent_requests", "count": 1}
    await el_sim.set(faults=[{**rule, "retry_after": 3}, rule])
    for wait in (3.0, 5.0):
        with pytest.raises(UpstreamRateLimited) as caught:
            await provider.start(request())
        assert caught.value.retry_after == wait and caught.value.native_status == 429
        assert "too_many_concurrent_requests" in caught.value.message
    assert (await el_sim.stats())["faults_injected"] == 2


async def test_a_wrong_or_missing_key(el_sim: Sim) -> None:
    wrong = make_provider(el_sim, ELEVENLABS_API_KEY="xi-wrong-key-0000")
    try:
        with pytest.raises(UpstreamAuthError) as caught:
            await wrong.start(request())
        assert "invalid_api_key" in caught.value.message
    finally:
        await wrong.aclose()
    missing = create({"ELEVENLABS_BASE_URL": el_sim.url})
    with pytest.raises(UpstreamAuthError) as unset:
        await missing.start(request())
    assert unset.value.sent is False and "ELEVENLABS_API_KEY" in unset.value.message
    stats = await el_sim.stats()
    assert stats["music_calls"] == 1 and stats["auth_failures"] == 1


async def test_a_cut_answer_is_an_error_that_was_sent(
    provider: ElevenLabsProvider, el_sim: Sim
) -> None:
    await el_sim.set(faults=[{"kind": "disconnect", "after_bytes": 10000}], chunk_size=4096)
    fin = await provider.start(request(duration=20))
    with pytest.raises(UpstreamError) as caught:
        await read_all(fin.streams[0])
    assert caught.value.sent and "compose body call failed" in caught.value.message
    await el_sim.set(
        faults=[{"kind": "disconnect", "after_bytes": 10000}], pcm_content_length=False
    )
    with pytest.raises(UpstreamError) as spooled:  # spooling reads it all before answering
        await provider.start(request(duration=20, format="wav"))
    assert spooled.value.sent
    assert (await el_sim.stats())["disconnects"] == 2


async def test_latency_and_the_concurrency_limit(provider: ElevenLabsProvider, el_sim: Sim) -> None:
    await el_sim.set(latency=0.4, max_concurrency=1, concurrency_retry_after=2)
    started = time.monotonic()
    first = asyncio.create_task(provider.start(request(duration=3)))
    await el_sim.wait_for("in_flight", 1)  # the first call is "generating"
    assert not first.done()
    with pytest.raises(UpstreamRateLimited) as caught:
        await provider.start(request(duration=3))
    assert (
        caught.value.retry_after == 2.0 and "too_many_concurrent_requests" in caught.value.message
    )
    fin = await first
    assert time.monotonic() - started >= 0.4  # no byte before the latency
    await read_all(fin.streams[0])
    stats = await el_sim.wait_for("in_flight", 0)
    assert stats["rate_limited"] == 1 and stats["max_in_flight"] == 1


async def test_a_stalled_generation_times_out_after_it_was_sent(el_sim: Sim) -> None:
    await el_sim.set(latency=2.0)
    slow = make_provider(el_sim, ELEVENLABS_READ_TIMEOUT="0.2")
    try:
        with pytest.raises(UpstreamTimeout) as caught:
            await slow.start(request())
    finally:
        await slow.aclose()
    assert caught.value.sent and caught.value.provider == "elevenlabs"


async def test_an_unread_answer_holds_the_generation_until_closed(
    provider: ElevenLabsProvider, el_sim: Sim
) -> None:
    await el_sim.set(max_concurrency=1)
    fin = await provider.start(request(duration=600, format="wav"))  # ~53 MB, unread
    with pytest.raises(UpstreamRateLimited):
        await provider.start(request())
    await fin.streams[0].aclose()
    await el_sim.wait_for("in_flight", 0)
    again = await provider.start(request(duration=3))
    await read_all(again.streams[0])
