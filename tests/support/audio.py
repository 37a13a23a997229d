"""Audio bytes as the tests check them: decoded with PyAV.

Usage::

    container, codec, seconds = probe(response.content)   # ("ogg", "opus", 1.0)
"""

from __future__ import annotations

import io

import av


def probe(data: bytes) -> tuple[str, str, float]:
    """(container, codec, seconds decoded) of audio bytes. The codec is the stream's codec
    id (``mp3``), not the decoder FFmpeg picked (``mp3float``)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        codec = stream.codec_context.codec.canonical_name
        return container.format.name, codec, samples / stream.rate
