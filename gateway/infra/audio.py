"""Audio format conversion (PyAV) and a streaming WAV wrapper for raw PCM.

The four public formats and what each is made of (the encoders PyAV's wheel bundles;
``av.codecs_available`` lists them)::

    format  container        codec                   content type  extension
    mp3     MPEG audio       libmp3lame              audio/mpeg    .mp3
    wav     RIFF WAVE        pcm_s16le               audio/wav     .wav
    ogg     Ogg              libopus (Opus, 48 kHz)  audio/ogg     .ogg
    aac     ADTS (raw AAC)   aac (FFmpeg's, AAC-LC)  audio/aac     .aac

Ogg holds Opus, not Vorbis: the wheel has no libvorbis, and FFmpeg's built-in Vorbis
encoder is flagged experimental (it needs ``strict=experimental`` and sounds worse than
Opus at the same rate). AAC is written as an ADTS stream (``audio/aac``): it can be
written front to back in one pass, where an ``.m4a`` needs its index rewritten at the end.

Conversion decodes and encodes frame by frame in a worker thread (``asyncio.to_thread``),
from a file on disk to a file on disk under a temporary directory: memory stays bounded
whatever the length, and the event loop is never blocked. A byte-stream source is first
spooled to that directory.

Usage::

    async with converted(Path("in.wav"), "mp3") as out:     # or an async byte iterable
        await artefacts.put(key, out.chunks(), out.content_type)
    # the temporary files are gone here

    wav = wav_stream(pcm_chunks, sample_rate=44100, channels=2, data_size=n)  # async bytes
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal, get_args

import av

Format = Literal["mp3", "wav", "ogg", "aac"]
FORMATS: tuple[Format, ...] = get_args(Format)
CHUNK_SIZE = 256 * 1024  # bytes per read when streaming a file


@dataclass(frozen=True)
class AudioFormat:
    """How one public format is written."""

    name: Format
    container: str  # PyAV/FFmpeg muxer name
    codec: str  # encoder name
    content_type: str
    extension: str
    rates: tuple[int, ...] = ()  # sample rates the encoder takes (empty: any)
    bit_rate: int | None = None


SPECS: Mapping[str, AudioFormat] = MappingProxyType(
    {
        "mp3": AudioFormat(
            "mp3",
            "mp3",
            "libmp3lame",
            "audio/mpeg",
            "mp3",
            (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000),
            192_000,
        ),
        "wav": AudioFormat("wav", "wav", "pcm_s16le", "audio/wav", "wav"),
        "ogg": AudioFormat("ogg", "ogg", "libopus", "audio/ogg", "ogg", (48000,), 128_000),
        "aac": AudioFormat(
            "aac",
            "adts",
            "aac",
            "audio/aac",
            "aac",
            (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000),
            192_000,
        ),
    }
)

#: Content type of each public format.
CONTENT_TYPES: Mapping[str, str] = MappingProxyType({f: s.content_type for f, s in SPECS.items()})

_ALIASES = {
    "audio/mp3": "mp3",
    "audio/mpeg3": "mp3",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/opus": "ogg",
    "audio/x-aac": "aac",
}


def content_type(fmt: str) -> str:
    """The content type of a public format (``mp3`` → ``audio/mpeg``)."""
    return SPECS[fmt].content_type


def format_of(content_type: str | None) -> Format | None:
    """The public format a content type stands for, if any (parameters ignored)."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    for spec in SPECS.values():
        if spec.content_type == base:
            return spec.name
    alias = _ALIASES.get(base)
    return SPECS[alias].name if alias else None


class ConversionError(Exception):
    """The source could not be decoded or the target not written."""


@dataclass(frozen=True)
class Converted:
    """A converted file on disk (deleted when the ``converted`` block ends)."""

    path: Path
    format: Format
    content_type: str
    size: int

    def chunks(self, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """The file's bytes, read in a worker thread chunk by chunk."""
        return read_file(self.path, chunk_size)


async def read_file(path: Path, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
    """Stream a file's bytes without blocking the event loop."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, chunk_size):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


async def spool(chunks: AsyncIterable[bytes], path: Path) -> int:
    """Write an async byte stream to ``path`` (in a worker thread); answer its size."""
    size = 0
    handle = await asyncio.to_thread(path.open, "wb")
    try:
        async for chunk in chunks:
            await asyncio.to_thread(handle.write, chunk)
            size += len(chunk)
    finally:
        await asyncio.to_thread(handle.close)
    return size


def _rate(spec: AudioFormat, rate: int) -> int:
    if not spec.rates or rate in spec.rates:
        return rate
    higher = [r for r in spec.rates if r >= rate]
    return min(higher) if higher else max(spec.rates)


def convert_file(src: Path, dst: Path, target: str) -> None:
    """Decode ``src`` (any format FFmpeg reads) and write it to ``dst`` as ``target``,
    frame by frame. Blocking: run it in a worker thread. The first audio stream is
    used; more than two channels are mixed down to stereo."""
    spec = SPECS[target]
    try:
        with av.open(str(src)) as source:
            if not source.streams.audio:
                raise ConversionError("the source has no audio stream")
            stream = source.streams.audio[0]
            rate = stream.codec_context.sample_rate or 44100
            layout = "mono" if stream.codec_context.channels == 1 else "stereo"
            with av.open(str(dst), "w", format=spec.container) as sink:
                out = sink.add_stream(spec.codec, rate=_rate(spec, rate), layout=layout)
                if spec.bit_rate:
                    out.codec_context.bit_rate = spec.bit_rate
                for frame in source.decode(stream):
                    frame.pts = None  # the encoder numbers its own (rates may differ)
                    for packet in out.encode(frame):  # PyAV resamples and re-frames
                        sink.mux(packet)
                for packet in out.encode(None):
                    sink.mux(packet)
    except av.FFmpegError as exc:
        raise ConversionError(f"cannot convert to {target}: {exc}") from exc


@contextlib.asynccontextmanager
async def converted(
    src: Path | AsyncIterable[bytes], target: str, *, tmp_dir: Path | None = None
) -> AsyncIterator[Converted]:
    """Convert ``src`` (a local file or an async byte stream) to ``target``
    (``mp3 | wav | ogg | aac``) in a worker thread; yield the result on disk. Every
    temporary file (the spooled source, the result) is removed when the block ends."""
    if target not in SPECS:
        raise ValueError(f"unknown audio format {target!r}; expected one of {FORMATS}")
    spec = SPECS[target]
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="mgw-audio-", dir=tmp_dir))
    try:
        if isinstance(src, Path):
            source = src
        else:
            source = work / "source"
            await spool(src, source)
        dst = work / f"converted.{spec.extension}"
        await asyncio.to_thread(convert_file, source, dst, target)
        size = (await asyncio.to_thread(dst.stat)).st_size
        yield Converted(dst, spec.name, spec.content_type, size)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


def probe(path: Path) -> tuple[str, str, float]:
    """(container, codec, duration in seconds) of a file's first audio stream, the
    duration counted from the decoded samples. Blocking."""
    with av.open(str(path)) as source:
        stream = source.streams.audio[0]
        samples = sum(frame.samples for frame in source.decode(stream))
        rate = stream.codec_context.sample_rate
        return source.format.name, stream.codec_context.name, samples / rate


# ------------------------------------------------------------------------- raw PCM

WAV_HEADER_SIZE = 44


def wav_header(data_size: int, *, sample_rate: int, channels: int, bits: int = 16) -> bytes:
    """The 44-byte RIFF/WAVE header of ``data_size`` bytes of little-endian PCM."""
    if data_size < 0 or data_size + 36 > 0xFFFFFFFF:
        raise ValueError("a WAV file holds at most 4 GiB of audio")
    block = channels * bits // 8
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_size,
        b"WAVE",
        b"fmt ",
        16,  # size of the fmt chunk
        1,  # PCM
        channels,
        sample_rate,
        sample_rate * block,  # byte rate
        block,
        bits,
        b"data",
        data_size,
    )


async def wav_stream(
    pcm: AsyncIterable[bytes], *, sample_rate: int, channels: int, data_size: int
) -> AsyncIterator[bytes]:
    """Raw signed 16-bit little-endian PCM as a WAV file, streamed: the header (which
    needs the size up front), then the samples as they come. Raises ``ValueError`` if
    the stream is longer or shorter than ``data_size``."""
    yield wav_header(data_size, sample_rate=sample_rate, channels=channels)
    seen = 0
    async for chunk in pcm:
        seen += len(chunk)
        if seen > data_size:
            raise ValueError(f"PCM stream longer than the announced {data_size} bytes")
        yield chunk
    if seen != data_size:
        raise ValueError(f"PCM stream ended after {seen} of {data_size} bytes")
