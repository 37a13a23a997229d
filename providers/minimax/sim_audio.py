"""Real audio for the MiniMax simulator, made lazily in bounded memory.

MiniMax answers stereo audio (``extra_info.music_channel: 2``) at the asked
``audio_setting``:

* MP3: one second of a two-tone chord is encoded once per (sample rate, bitrate) with
  PyAV's libmp3lame (bit reservoir off, so every frame stands alone), and its frames are
  repeated to the requested length: concatenated MPEG audio frames are a valid MP3
  stream. MPEG-2 rates (16/24 kHz) top out at 160 kbit/s: a higher bitrate is lowered.
* WAV: a 44-byte RIFF/WAVE header, then 16-bit little-endian stereo PCM of the tone.

Usage::

    size = audio_size("mp3", 30_000, 44100, 256000)
    for chunk in audio_chunks("wav", 300_000, 44100, 256000, 65536): ...  # never held
"""

from __future__ import annotations

import array
import functools
import math
import struct
import sys
from collections.abc import Iterator

import av

CHANNELS = 2
SAMPLE_WIDTH = 2
TONES = (440.0, 660.0)  # left, right
AMPLITUDE = 6000
MPEG2_MAX_BITRATE = 160_000


def _tone(rate: int) -> bytes:
    """One second of interleaved stereo 16-bit little-endian samples."""
    samples = array.array("h")
    for i in range(rate):
        for freq in TONES:
            samples.append(int(AMPLITUDE * math.sin(2 * math.pi * freq * i / rate)))
    if sys.byteorder != "little":
        samples.byteswap()
    return samples.tobytes()


def _channel(rate: int, freq: float) -> bytes:
    """One second of one channel's tone, 16-bit little-endian."""
    samples = array.array(
        "h", (int(AMPLITUDE * math.sin(2 * math.pi * freq * i / rate)) for i in range(rate))
    )
    if sys.byteorder != "little":
        samples.byteswap()
    return samples.tobytes()


@functools.cache
def _encoded(rate: int, bitrate: int) -> tuple[int, tuple[bytes, ...]]:
    """The samples per frame and the MPEG frames of one second of the tone (encoded
    once; libmp3lame takes stereo as planar samples)."""
    ctx = av.CodecContext.create("libmp3lame", "w")
    ctx.sample_rate = rate
    ctx.layout = "stereo"
    ctx.format = "s16p"
    ctx.bit_rate = min(bitrate, MPEG2_MAX_BITRATE) if rate < 32000 else bitrate
    ctx.options = {"reservoir": "0"}
    ctx.open()
    size = ctx.frame_size
    left, right = (_channel(rate, f) for f in TONES)
    step = size * SAMPLE_WIDTH
    packets: list[bytes] = []
    for n, offset in enumerate(range(0, (rate - rate % size) * SAMPLE_WIDTH, step)):
        frame = av.AudioFrame(format="s16p", layout="stereo", samples=size)
        frame.planes[0].update(left[offset : offset + step])
        frame.planes[1].update(right[offset : offset + step])
        frame.sample_rate = rate
        frame.pts = n * size
        packets += [bytes(p) for p in ctx.encode(frame)]
    packets += [bytes(p) for p in ctx.encode(None)]
    return size, tuple(p for p in packets if p)


def mp3_frames(rate: int, bitrate: int) -> tuple[bytes, ...]:
    return _encoded(rate, bitrate)[1]


def _mp3_count(ms: int, rate: int, bitrate: int) -> int:
    return max(1, round(ms * rate / 1000 / _encoded(rate, bitrate)[0]))


def mp3_size(ms: int, rate: int, bitrate: int) -> int:
    frames = mp3_frames(rate, bitrate)
    whole, rest = divmod(_mp3_count(ms, rate, bitrate), len(frames))
    return whole * sum(map(len, frames)) + sum(map(len, frames[:rest]))


def mp3_chunks(ms: int, rate: int, bitrate: int, chunk_size: int) -> Iterator[bytes]:
    frames = mp3_frames(rate, bitrate)
    pending: list[bytes] = []
    size = 0
    for i in range(_mp3_count(ms, rate, bitrate)):
        frame = frames[i % len(frames)]
        pending.append(frame)
        size += len(frame)
        if size >= chunk_size:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


def pcm_size(ms: int, rate: int) -> int:
    return rate * ms // 1000 * CHANNELS * SAMPLE_WIDTH


def wav_header(rate: int, data_bytes: int) -> bytes:
    block = CHANNELS * SAMPLE_WIDTH
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        CHANNELS,
        rate,
        rate * block,
        block,
        8 * SAMPLE_WIDTH,
        b"data",
        data_bytes,
    )


@functools.cache
def _pcm_cycle(rate: int, chunk_size: int) -> bytes:
    """One second of the tone plus ``chunk_size`` bytes of its start, so that any window
    of ``chunk_size`` bytes of the repeated second is one slice."""
    second = _tone(rate)
    return second + (second * (chunk_size // len(second) + 1))[:chunk_size]


def wav_chunks(ms: int, rate: int, chunk_size: int) -> Iterator[bytes]:
    total = pcm_size(ms, rate)
    yield wav_header(rate, total)
    chunk_size -= chunk_size % (CHANNELS * SAMPLE_WIDTH)
    cycle = _pcm_cycle(rate, chunk_size)
    second = rate * CHANNELS * SAMPLE_WIDTH
    sent = 0
    while sent < total:
        n = min(chunk_size, total - sent)
        start = sent % second
        yield cycle[start : start + n]
        sent += n


def audio_size(fmt: str, ms: int, rate: int, bitrate: int) -> int:
    """The byte length of ``audio_chunks(fmt, ms, rate, bitrate, ...)``."""
    return mp3_size(ms, rate, bitrate) if fmt == "mp3" else 44 + pcm_size(ms, rate)


def audio_chunks(fmt: str, ms: int, rate: int, bitrate: int, chunk_size: int) -> Iterator[bytes]:
    """``ms`` of ``mp3`` or ``wav`` audio, about ``chunk_size`` bytes at a time."""
    if fmt == "mp3":
        return mp3_chunks(ms, rate, bitrate, chunk_size)
    return wav_chunks(ms, rate, chunk_size)
