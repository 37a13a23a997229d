"""Small, real media files the provider simulators serve (valid WAV, MP3 and JPEG/PNG bytes).

Built once at import, deterministic, no files on disk::

    from providers.simulator_media import wav_bytes, MP3_BYTES, PNG_BYTES
"""

from __future__ import annotations

import io
import math
import struct
import wave
import zlib


def wav_bytes(seconds: float = 1.0, rate: int = 8000, freq: float = 440.0) -> bytes:
    """A mono 16-bit PCM WAV with a sine tone."""
    frames = int(seconds * rate)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate)))
                for i in range(frames)
            )
        )
    return buf.getvalue()


def _mp3_silence(frames: int = 38) -> bytes:
    """MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, mono frames of digital silence (~1 s).

    Header 0xFFFB90C4: sync, MPEG-1, Layer III, no CRC, 128 kbit/s, 44.1 kHz, no padding,
    mono. Frame length = 144 * 128000 / 44100 = 417 bytes. An all-zero side info and main
    data decode to silence in every decoder.
    """
    header = bytes([0xFF, 0xFB, 0x90, 0xC4])
    return (header + bytes(417 - 4)) * frames


def _png_cover(size: int = 16) -> bytes:
    """A small solid-colour PNG (cover art)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + bytes([200, 60, 120]) * size for _ in range(size))
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


WAV_BYTES: bytes = wav_bytes()
MP3_BYTES: bytes = _mp3_silence()
PNG_BYTES: bytes = _png_cover()
