"""Format conversion with PyAV, and raw PCM wrapped as WAV: real encoders, decoded back."""

from __future__ import annotations

import array
import asyncio
import math
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest

from gateway.infra.audio import (
    CONTENT_TYPES,
    ConversionError,
    content_type,
    converted,
    format_of,
    probe,
    read_file,
    wav_header,
    wav_stream,
)

RATE = 44_100
SECONDS = 1.5


def pcm_tone(seconds: float, rate: int = RATE, channels: int = 2, hz: float = 440.0) -> bytes:
    """A sine tone as signed 16-bit little-endian interleaved PCM."""
    samples = array.array("h")
    for i in range(int(seconds * rate)):
        value = int(math.sin(2 * math.pi * hz * i / rate) * 12_000)
        samples.extend([value] * channels)
    return samples.tobytes()


def write_tone(path: Path, seconds: float = SECONDS, rate: int = RATE, channels: int = 2) -> Path:
    """A tone encoded by PyAV (FLAC, so that conversion really decodes something)."""
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout=layout)
        frame = av.AudioFrame(format="s16", layout=layout, samples=int(seconds * rate))
        frame.planes[0].update(pcm_tone(seconds, rate, channels))
        frame.rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


async def stream_of(path: Path) -> AsyncIterator[bytes]:
    async for chunk in read_file(path, 10_000):
        yield chunk


@pytest.fixture(scope="module")
def tone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tone(tmp_path_factory.mktemp("audio") / "tone.flac")


EXPECTED = {  # format -> (container as PyAV names it, codec as decoded, content type)
    "mp3": ("mp3", "mp3float", "audio/mpeg"),
    "wav": ("wav", "pcm_s16le", "audio/wav"),
    "ogg": ("ogg", "opus", "audio/ogg"),
    "aac": ("aac", "aac", "audio/aac"),
}


@pytest.mark.parametrize("target", sorted(EXPECTED))
async def test_convert_a_file(tone: Path, target: str) -> None:
    container, codec, kind = EXPECTED[target]
    async with converted(tone, target) as out:
        assert (out.format, out.content_type) == (target, kind)
        assert out.path.suffix == f".{target}" and out.size == out.path.stat().st_size > 0
        found_container, found_codec, duration = await asyncio.to_thread(probe, out.path)
        work = out.path.parent
    assert not work.exists()  # the temporary files are gone
    assert (found_container, found_codec) == (container, codec)
    assert duration == pytest.approx(SECONDS, rel=0.05)


@pytest.mark.parametrize("target", ["mp3", "ogg"])
async def test_convert_a_byte_stream_of_mono_audio(tmp_path: Path, target: str) -> None:
    source = write_tone(tmp_path / "mono.flac", seconds=2.0, rate=22_050, channels=1)
    async with converted(stream_of(source), target) as out:
        chunks = [chunk async for chunk in out.chunks(4096)]
        assert sum(map(len, chunks)) == out.size
        _, codec, duration = await asyncio.to_thread(probe, out.path)
    assert codec == EXPECTED[target][1]
    assert duration == pytest.approx(2.0, rel=0.05)


async def test_conversion_does_not_block_the_event_loop(tmp_path: Path) -> None:
    source = write_tone(tmp_path / "long.flac", seconds=20.0)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)  # yields to the loop; counts how often it got it back

    task = asyncio.create_task(ticker())
    try:
        async with converted(source, "mp3") as out:
            assert out.size > 0
    finally:
        done.set()
        await task
    assert ticks > 50  # the loop kept running while the encoder worked


async def test_undecodable_input_is_a_conversion_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not audio at all" * 100)
    with pytest.raises(ConversionError):
        async with converted(junk, "wav"):
            pass
    with pytest.raises(ValueError, match="unknown audio format"):
        async with converted(junk, "flac"):
            pass


async def test_raw_pcm_wrapped_as_wav(tmp_path: Path) -> None:
    pcm = pcm_tone(1.0, rate=24_000, channels=1)

    async def chunks() -> AsyncIterator[bytes]:
        for at in range(0, len(pcm), 5000):
            yield pcm[at : at + 5000]

    out = tmp_path / "pcm.wav"
    body = b"".join(
        [c async for c in wav_stream(chunks(), sample_rate=24_000, channels=1, data_size=len(pcm))]
    )
    out.write_bytes(body)
    assert len(body) == len(pcm) + 44
    container, codec, duration = probe(out)
    assert (container, codec) == ("wav", "pcm_s16le")
    assert duration == pytest.approx(1.0, rel=0.01)
    with av.open(str(out)) as check:
        ctx = check.streams.audio[0].codec_context
        assert (ctx.sample_rate, ctx.channels) == (24_000, 1)


async def test_wav_stream_refuses_a_wrong_size() -> None:
    async def short() -> AsyncIterator[bytes]:
        yield b"\x00" * 10

    with pytest.raises(ValueError, match="ended after 10 of 20"):
        [c async for c in wav_stream(short(), sample_rate=8000, channels=1, data_size=20)]
    with pytest.raises(ValueError, match="longer"):
        [c async for c in wav_stream(short(), sample_rate=8000, channels=1, data_size=4)]
    assert len(wav_header(0, sample_rate=8000, channels=2)) == 44


def test_content_types() -> None:
    assert dict(CONTENT_TYPES) == {k: v[2] for k, v in EXPECTED.items()}
    assert content_type("mp3") == "audio/mpeg"
    assert format_of("audio/mpeg") == "mp3"
    assert format_of("audio/x-wav; rate=1") == "wav"
    assert format_of("audio/flac") is None
