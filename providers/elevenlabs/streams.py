"""The audio of a ``POST /v1/music`` answer as a ``Finished`` with one ``ByteStream``,
never held whole in memory.

* MP3 (``mp3_*``): the upstream's bytes as they are, byte for byte. The first chunk is
  read before ``start`` answers, so an empty answer is an error, not an empty song.
* WAV (``pcm_*``): ElevenLabs sends raw 16-bit little-endian mono PCM; a RIFF/WAVE
  header goes in front. The header needs the data size: with a ``Content-Length`` (the
  client asks for ``Accept-Encoding: identity``, so it counts the PCM itself) the header
  is written at once and the PCM streamed after it. Without one, the PCM is first
  spooled to an anonymous temporary file (``tempfile.TemporaryFile`` in the system temp
  directory, ``TMPDIR``: on Linux it has no name and its space is freed when closed),
  then header + file are streamed and the file closed when the stream ends or is
  closed. Disk, not memory, holds it meanwhile (10 min of ``pcm_44100`` is ~53 MB).
* A 200 answer that says it is JSON or text is an ``UpstreamError`` quoting it.

Every failure closes the upstream answer (and the spool file) before raising.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from typing import IO, Protocol

from providers.base import Artefact, ByteStream, Finished, SubmitRequest, UpstreamError
from providers.elevenlabs import mapping
from providers.elevenlabs.mapping import NativeCall

CHUNK_SIZE = 64 * 1024
ERROR_PEEK = 2048  # bytes of a JSON-in-200 answer quoted in the error


class Body(Protocol):
    """What ``providers.kit.UpstreamStream`` offers (and tests may stand in for)."""

    headers: object
    length: int | None

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    async def aclose(self) -> None: ...


class Prefixed:
    """``head`` (if any), then every chunk of ``body``; ``aclose`` closes ``body``."""

    def __init__(self, head: bytes, body: Body) -> None:
        self._head: bytes | None = head or None
        self._body = body

    def __aiter__(self) -> Prefixed:
        return self

    async def __anext__(self) -> bytes:
        if self._head is not None:
            head, self._head = self._head, None
            return head
        return await anext(self._body)

    async def aclose(self) -> None:
        self._head = None
        await self._body.aclose()


class Spooled:
    """``head``, then the spooled file from its start, ``CHUNK_SIZE`` at a time; the file
    is closed (and so deleted) at its end or on ``aclose``."""

    def __init__(self, head: bytes, file: IO[bytes]) -> None:
        self._head: bytes | None = head
        self._file = file

    def __aiter__(self) -> Spooled:
        return self

    async def __anext__(self) -> bytes:
        if self._head is not None:
            head, self._head = self._head, None
            await asyncio.to_thread(self._file.seek, 0)
            return head
        if self._file.closed:
            raise StopAsyncIteration
        chunk = await asyncio.to_thread(self._file.read, CHUNK_SIZE)
        if not chunk:
            self._file.close()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._head = None
        self._file.close()


def _header(body: Body, name: str) -> str | None:
    get = getattr(body.headers, "get", None)
    value = get(name) if get is not None else None
    return value if isinstance(value, str) else None


def _fail(message: str) -> UpstreamError:
    return UpstreamError(f"{mapping.LABEL} compose: {message}", provider=mapping.PROVIDER)


async def finish(req: SubmitRequest, call: NativeCall, body: Body) -> Finished:
    """``start``'s answer from the open 2xx ``body`` (closed here on any failure)."""
    try:
        upstream_type = _header(body, "Content-Type")
        if not mapping.is_audio_answer(upstream_type):
            text = (await _peek(body)).decode("utf-8", "replace")
            raise _fail(f"answered {upstream_type} instead of audio: {text[:300]}")
        ctype = mapping.content_type(call.output_format, upstream_type)
        rate = call.pcm_rate
        if rate is None:
            stream, duration = await _mp3(body, ctype), mapping.duration_of(req)
        else:
            stream, data_bytes = await _wav(body, ctype, rate)
            duration = mapping.duration_of(req, (data_bytes, rate))
    except BaseException:
        await body.aclose()
        raise
    song_id = _header(body, "song-id")
    artefact = Artefact(
        index=0, id=song_id, kind="audio", content_type=ctype, duration=duration, title=None
    )
    return Finished(artefacts=[artefact], native_id=song_id, streams={0: stream})


async def _peek(body: Body) -> bytes:
    data = b""
    async for chunk in body:
        data += chunk
        if len(data) >= ERROR_PEEK:
            break
    return data[:ERROR_PEEK]


async def _mp3(body: Body, ctype: str) -> ByteStream:
    try:
        first = await anext(body)
    except StopAsyncIteration:
        raise _fail("answered no audio") from None
    return ByteStream(content_type=ctype, chunks=Prefixed(first, body), length=body.length)


async def _wav(body: Body, ctype: str, rate: int) -> tuple[ByteStream, int]:
    """The WAV stream and its PCM byte count."""
    size = body.length
    if size is not None:
        if size == 0:
            raise _fail("answered no audio")
        head = _wav_header(rate, size)
        chunks = Prefixed(head, body)
        return ByteStream(content_type=ctype, chunks=chunks, length=len(head) + size), size
    file, size = await _spool(body)
    try:
        if size == 0:
            raise _fail("answered no audio")
        head = _wav_header(rate, size)
    except BaseException:
        file.close()
        raise
    stream = ByteStream(content_type=ctype, chunks=Spooled(head, file), length=len(head) + size)
    return stream, size


def _wav_header(rate: int, size: int) -> bytes:
    try:
        return mapping.wav_header(rate, size)
    except ValueError as exc:
        raise _fail(str(exc)) from None


async def _spool(body: Body) -> tuple[IO[bytes], int]:
    """Every PCM byte into an anonymous temporary file; ``body`` is read to its end."""
    file = tempfile.TemporaryFile(prefix="elevenlabs-", suffix=".pcm")
    size = 0
    try:
        async for chunk in body:
            await asyncio.to_thread(file.write, chunk)
            size += len(chunk)
        await asyncio.to_thread(file.flush)
    except BaseException:
        file.close()
        raise
    finally:
        await body.aclose()
    return file, size
