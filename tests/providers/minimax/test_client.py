"""The MiniMax provider against its simulator over real HTTP on loopback: URL answers
(the URL in ``data.audio`` or ``data.audio_url``), hex answers decoded byte for byte and
spooled in bounded memory, every error knob (class, message, the key kept out of
messages and logs), cut and malformed answers, latency and timeouts."""

from __future__ import annotations

import hashlib
import tracemalloc
from typing import Any

import httpx
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
from providers.minimax import MiniMaxProvider, create
from providers.minimax.catalog import AudioSetting, MiniMaxOptions
from tests.support.spool import SpoolFiles

from .conftest import KEY, LYRICS, PROMPT, Sim, make_provider, probe, read_all, request

HEX = MiniMaxOptions(output_format="hex")


async def download(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as c:
        return await c.get(url)


async def test_a_url_answer_is_an_artefact_to_copy(provider: MiniMaxProvider, mm_sim: Sim) -> None:
    fin = await provider.start(request())
    assert isinstance(fin, Finished) and fin.streams == {}
    [art] = fin.artefacts
    stats = await mm_sim.stats()
    assert art.index == 0 and art.kind == "audio" and art.content_type == "audio/mpeg"
    assert art.duration == 5.0 and art.id == fin.native_id == stats["last_trace_id"]
    assert art.audio_url and art.audio_url.startswith(f"{mm_sim.url}/files/{art.id}.mp3?")
    assert await mm_sim.sent() == {
        "model": "music-2.6",
        "prompt": PROMPT,
        "is_instrumental": True,
        "stream": False,
        "output_format": "url",
        "audio_setting": {"sample_rate": 44100, "bitrate": 256000, "format": "mp3"},
    }
    audio = await download(art.audio_url)
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"
    assert probe(audio.content)[:3] == ("mp3", 44100, 2)
    assert probe(audio.content)[3] == pytest.approx(5.0, rel=0.02)


async def test_the_url_in_audio_url_and_the_trace_header(
    provider: MiniMaxProvider, mm_sim: Sim
) -> None:
    await mm_sim.set(url_field="audio_url")
    fin = await provider.start(request(model="minimax/music-3.0", lyrics=LYRICS, format="wav"))
    art = fin.artefacts[0]
    assert art.audio_url and f"/files/{art.id}.wav?" in art.audio_url
    assert art.content_type == "audio/wav"
    sent = await mm_sim.sent()
    assert (sent["model"], sent["lyrics"], sent["is_instrumental"]) == ("music-3.0", LYRICS, False)


@pytest.mark.parametrize(
    ("fmt", "rate", "container"),
    [("mp3", 44100, "mp3"), ("mp3", 24000, "mp3"), ("wav", 44100, "wav"), ("wav", 16000, "wav")],
)
async def test_a_hex_answer_is_the_audio_byte_for_byte(
    provider: MiniMaxProvider, mm_sim: Sim, fmt: str, rate: int, container: str
) -> None:
    await mm_sim.set(chunk_size=4096)
    opts = MiniMaxOptions(output_format="hex", audio_setting=AudioSetting(sample_rate=rate))
    fin = await provider.start(request(format=fmt, options=opts))
    [art] = fin.artefacts
    assert art.audio_url is None and list(fin.streams) == [0]
    stream = fin.streams[0]
    data = await read_all(stream)
    stats = await mm_sim.stats()
    assert hashlib.sha256(data).hexdigest() == stats["last_sha256"]
    assert len(data) == stats["last_bytes"] == stream.length
    assert (
        stream.content_type == art.content_type == ("audio/mpeg" if fmt == "mp3" else "audio/wav")
    )
    got = probe(data)
    assert got[:3] == (container, rate, 2) and got[3] == pytest.approx(5.0, rel=0.03)
    assert art.id == fin.native_id == stats["last_trace_id"] and art.duration == 5.0


async def test_a_long_hex_answer_is_spooled_in_bounded_memory(
    provider: MiniMaxProvider, mm_sim: Sim
) -> None:
    await mm_sim.set(length_ms=120_000)  # two minutes of 44.1 kHz stereo WAV: ~21 MB, hex ~42 MB
    size = 44 + 120 * 44100 * 4
    tracemalloc.start()
    try:
        fin = await provider.start(request(format="wav", options=HEX))
        stream, total, digest = fin.streams[0], 0, hashlib.sha256()
        async for chunk in stream.chunks:
            total += len(chunk)
            digest.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size == stream.length
    assert digest.hexdigest() == (await mm_sim.stats())["last_sha256"]
    assert peak < size / 10, f"peak {peak} bytes for a {size}-byte song"


async def test_the_spool_file_is_closed_at_the_end_on_aclose_and_on_error(
    provider: MiniMaxProvider, mm_sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = SpoolFiles(monkeypatch)
    fin = await provider.start(request(options=HEX))
    assert not files.made[0].closed
    await read_all(fin.streams[0])
    assert files.made[0].closed
    fin = await provider.start(request(options=HEX))
    await fin.streams[0].aclose()  # never read
    assert files.made[1].closed
    await mm_sim.set(faults=[{"kind": "disconnect", "after_bytes": 100_000}], chunk_size=4096)
    with pytest.raises(UpstreamError):
        await provider.start(request(options=HEX))
    assert len(files.made) == 3 and files.made[2].closed
    await mm_sim.set(faults=[{"kind": "malformed"}])
    with pytest.raises(UpstreamError):
        await provider.start(request(options=HEX))
    assert len(files.made) == 4 and files.made[3].closed


# --------------------------------------------------------------------------- errors

ROWS = [
    ({"kind": "rate_limited"}, UpstreamRateLimited, 1002, ["rate limit"]),
    ({"kind": "plan_limit"}, UpstreamRateLimited, 2056, ["usage limit"]),
    ({"kind": "auth_failed"}, UpstreamAuthError, 1004, ["authorized failed"]),
    ({"kind": "invalid_api_key"}, UpstreamAuthError, 2049, ["invalid api key"]),
    ({"kind": "insufficient_balance"}, UpstreamInsufficientCredits, 1008, ["insufficient balance"]),
    (
        {"kind": "input_sensitive"},
        UpstreamRejected,
        1026,
        ["content policy", "input new_sensitive"],
    ),
    (
        {"kind": "output_sensitive"},
        UpstreamRejected,
        1027,
        ["content policy", "output new_sensitive"],
    ),
    (
        {"kind": "invalid_params", "field": "audio_setting.bitrate"},
        UpstreamRejected,
        2013,
        ["rejected audio_setting.bitrate (2013)"],
    ),
    ({"kind": "unknown_error"}, UpstreamError, 1000, ["unknown error"]),
    ({"kind": "http_error"}, UpstreamError, 500, ["answered 500"]),
    ({"kind": "http_error", "status": 429}, UpstreamRateLimited, 429, ["answered 429"]),
    ({"kind": "unfinished"}, UpstreamError, 200, ["data.status 1"]),
    ({"kind": "malformed"}, UpstreamError, 200, ["unreadable answer"]),
]


@pytest.mark.parametrize("hexed", [False, True])
@pytest.mark.parametrize(("fault", "cls", "native", "words"), ROWS)
async def test_error_knobs(
    provider: MiniMaxProvider,
    mm_sim: Sim,
    fault: dict[str, Any],
    cls: type[ProviderError],
    native: int,
    words: list[str],
    hexed: bool,
) -> None:
    await mm_sim.set(faults=[fault], echo_key_in_errors=True)
    with capture_logs() as logs, pytest.raises(ProviderError) as caught:
        await provider.start(request(options=HEX if hexed else None))
    err = caught.value
    assert type(err) is cls and err.native_status == native and err.sent
    assert err.provider == "minimax"
    for word in words:
        assert word in err.message, err.message
    assert KEY not in err.message and KEY not in repr(logs)
    if isinstance(native, int) and native > 999:  # a base_resp message: echoed, then scrubbed
        assert "[redacted]" in err.message
    fin = await provider.start(request())  # the fault was for one call
    assert fin.artefacts[0].audio_url


async def test_a_rate_limit_waits_as_told_or_as_documented(
    provider: MiniMaxProvider, mm_sim: Sim
) -> None:
    await mm_sim.set(
        faults=[
            {"kind": "rate_limited", "retry_after": 3},
            {"kind": "rate_limited"},
            {"kind": "plan_limit"},
        ]
    )
    for wait in (3.0, 10.0, 60.0):
        with pytest.raises(UpstreamRateLimited) as caught:
            await provider.start(request())
        assert caught.value.retry_after == wait
    assert (await mm_sim.stats())["faults_injected"] == 3


async def test_a_wrong_or_missing_key(mm_sim: Sim) -> None:
    wrong = make_provider(mm_sim, MINIMAX_API_KEY="mm-wrong-key-0000")
    try:
        with pytest.raises(UpstreamAuthError) as caught:
            await wrong.start(request())
        assert "2049" in caught.value.message and "invalid api key" in caught.value.message
    finally:
        await wrong.aclose()
    missing = create({"MINIMAX_BASE_URL": mm_sim.url})
    with pytest.raises(UpstreamAuthError) as unset:
        await missing.start(request())
    assert unset.value.sent is False and "MINIMAX_API_KEY" in unset.value.message
    stats = await mm_sim.stats()
    assert stats["music_calls"] == 1 and stats["auth_failures"] == 1


async def test_a_cut_answer_is_an_error_that_was_sent(
    provider: MiniMaxProvider, mm_sim: Sim
) -> None:
    await mm_sim.set(faults=[{"kind": "disconnect", "after_bytes": 50_000}], chunk_size=4096)
    with pytest.raises(UpstreamError) as caught:
        await provider.start(request(options=HEX))
    assert caught.value.sent and "generate body call failed" in caught.value.message
    assert (await mm_sim.stats())["disconnects"] == 1


async def test_what_the_simulator_refuses_is_rejected_naming_the_field(
    provider: MiniMaxProvider, mm_sim: Sim
) -> None:
    # check() would refuse this first; sent anyway, the API's own 2013 names the field
    with pytest.raises(UpstreamRejected) as caught:
        await provider.start(request(instrumental=False))
    assert "rejected lyrics (2013)" in caught.value.message
    assert (await mm_sim.stats())["rejected"] == 1


async def test_a_stalled_generation_times_out_after_it_was_sent(mm_sim: Sim) -> None:
    await mm_sim.set(latency=2.0)
    slow = make_provider(mm_sim, MINIMAX_READ_TIMEOUT="0.2")
    try:
        with pytest.raises(UpstreamTimeout) as caught:
            await slow.start(request())
    finally:
        await slow.aclose()
    assert caught.value.sent and caught.value.provider == "minimax"


async def test_the_key_travels_only_in_the_authorization_header(
    provider: MiniMaxProvider, mm_sim: Sim
) -> None:
    await provider.start(request(options=HEX))
    stats = await mm_sim.stats()
    assert KEY not in stats["last_body"]
    assert msgspec.json.decode(stats["last_body"])["output_format"] == "hex"
