"""Real audio for the ElevenLabs simulator, made lazily in bounded memory.

* MP3: one second of a 441 Hz tone is encoded once (PyAV's libmp3lame, 44.1 kHz mono,
  128 kbit/s CBR, bit reservoir off so that every frame stands alone), and its MPEG
  frames are repeated to the requested length: concatenated MPEG audio frames are a
  valid MP3 stream. A frame is 1152 samples (~26.1 ms).
* PCM: 16-bit signed little-endian mono at the requested rate (ElevenLabs' ``pcm_*``),
  one second of the tone computed once per rate and repeated.

Usage::

    total = mp3_size(10_000)
    for chunk in mp3_chunks(10_000, 65536): ...
    for chunk in pcm_chunks(600_000, 44100, 65536): ...   # 10 min, never held whole
"""

from __future__ import annotations

import array
import functools
import math
import sys
from collections.abc import Iterator

import av

MP3_RATE = 44100
FRAME_SAMPLES = 1152
TONE_HZ = 441.0
AMPLITUDE = 8000
SAMPLE_WIDTH = 2


def _tone(rate: int) -> array.array[int]:
    samples = array.array(
        "h", (int(AMPLITUDE * math.sin(2 * math.pi * TONE_HZ * i / rate)) for i in range(rate))
    )
    if sys.byteorder != "little":
        samples.byteswap()
    return samples


@functools.cache
def mp3_frames() -> tuple[bytes, ...]:
    """The MPEG frames of one second of the tone (encoded once)."""
    ctx = av.CodecContext.create("libmp3lame", "w")
    ctx.sample_rate = MP3_RATE
    ctx.layout = "mono"
    ctx.format = "s16"
    ctx.bit_rate = 128_000
    ctx.options = {"reservoir": "0"}
    ctx.open()
    samples = _tone(MP3_RATE)
    packets: list[bytes] = []
    whole = MP3_RATE - MP3_RATE % FRAME_SAMPLES
    for offset in range(0, whole, FRAME_SAMPLES):
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(samples[offset : offset + FRAME_SAMPLES].tobytes())
        frame.sample_rate = MP3_RATE
        frame.pts = offset
        packets += [bytes(p) for p in ctx.encode(frame)]
    packets += [bytes(p) for p in ctx.encode(None)]
    return tuple(p for p in packets if p)


def mp3_frame_count(ms: int) -> int:
    return max(1, round(ms * MP3_RATE / 1000 / FRAME_SAMPLES))


def mp3_size(ms: int) -> int:
    """The byte length of ``mp3_chunks(ms, ...)``."""
    frames = mp3_frames()
    whole, rest = divmod(mp3_frame_count(ms), len(frames))
    return whole * sum(map(len, frames)) + sum(map(len, frames[:rest]))


def mp3_chunks(ms: int, chunk_size: int) -> Iterator[bytes]:
    """``ms`` of MP3, in chunks of about ``chunk_size`` bytes (whole frames)."""
    frames = mp3_frames()
    pending: list[bytes] = []
    size = 0
    for i in range(mp3_frame_count(ms)):
        frame = frames[i % len(frames)]
        pending.append(frame)
        size += len(frame)
        if size >= chunk_size:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


@functools.cache
def _pcm_cycle(rate: int, chunk_size: int) -> bytes:
    """One second of the tone, plus ``chunk_size`` bytes of its start so that any
    ``chunk_size`` window of the repeated second is one slice."""
    second = _tone(rate).tobytes()
    return second + (second * (chunk_size // len(second) + 1))[:chunk_size]


def pcm_size(ms: int, rate: int) -> int:
    return rate * ms // 1000 * SAMPLE_WIDTH


def pcm_chunks(ms: int, rate: int, chunk_size: int) -> Iterator[bytes]:
    """``ms`` of 16-bit LE mono PCM at ``rate`` Hz, ``chunk_size`` bytes at a time."""
    chunk_size -= chunk_size % SAMPLE_WIDTH
    cycle = _pcm_cycle(rate, chunk_size)
    second = rate * SAMPLE_WIDTH
    total = pcm_size(ms, rate)
    sent = 0
    while sent < total:
        n = min(chunk_size, total - sent)
        start = sent % second
        yield cycle[start : start + n]
        sent += n
