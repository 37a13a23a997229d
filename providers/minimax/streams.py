"""A ``POST /v1/music_generation`` answer as a ``Finished``, never held whole in memory.

The 200 answer is JSON, read chunk by chunk through ``answer.Splitter``:

* ``output_format: "url"``: the answer is small; its URL (valid 24 h) becomes the
  artefact's ``audio_url``, which the gateway copies into its store at once.
* ``output_format: "hex"``: the hex digits of ``data.audio`` are decoded as they arrive
  and spooled to an anonymous temporary file (``tempfile.TemporaryFile`` in ``TMPDIR``:
  on Linux it has no name and its space is freed when closed): the answer's verdict
  (``base_resp``) may come after the audio, so nothing is handed on before the whole
  answer is in. The file is then the artefact's ``ByteStream``, closed when read to the
  end or closed. Disk, not memory, holds the audio meanwhile.

``base_resp.status_code`` ≠ 0 is the error it stands for (``mapping.CODES``), logged like
the kit logs a non-2xx answer; a 200 that is not a finished song is an ``UpstreamError``
(the generation may have happened: its outcome is unknown). The skeleton is scrubbed of
the API key before it is read. Every failure closes the answer and the spool file.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable
from typing import IO, Protocol

import structlog

from providers.base import (
    Artefact,
    ByteStream,
    Finished,
    ProviderError,
    SubmitRequest,
    UpstreamError,
)
from providers.kit import retry_after
from providers.minimax import mapping
from providers.minimax.answer import MalformedAnswer, Splitter

log = structlog.get_logger("providers.minimax")

CHUNK_SIZE = 64 * 1024


class Body(Protocol):
    """What ``providers.kit.UpstreamStream`` offers (and tests may stand in for)."""

    headers: object

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Spooled:
    """The spooled file from its start, ``CHUNK_SIZE`` at a time; closed (and so deleted)
    at its end or on ``aclose``."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._started = False

    def __aiter__(self) -> Spooled:
        return self

    async def __anext__(self) -> bytes:
        if self._file.closed:
            raise StopAsyncIteration
        if not self._started:
            self._started = True
            await asyncio.to_thread(self._file.seek, 0)
        chunk = await asyncio.to_thread(self._file.read, CHUNK_SIZE)
        if not chunk:
            self._file.close()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._file.close()


def _header(body: Body, name: str) -> str | None:
    get = getattr(body.headers, "get", None)
    value = get(name) if get is not None else None
    return value if isinstance(value, str) else None


async def finish(req: SubmitRequest, body: Body, scrub: Callable[[bytes], bytes]) -> Finished:
    """``start``'s answer from the open 200 ``body`` (always closed here)."""
    file: IO[bytes] | None = None
    try:
        file, splitter = await _read(body)
        result = mapping.outcome(
            scrub(splitter.close()),
            audio_bytes=splitter.audio_bytes,
            trace_header=_header(body, "Trace-Id"),
            retry_after=retry_after(_header(body, "Retry-After")),
        )
    except MalformedAnswer as exc:
        if file is not None:
            file.close()
        error = UpstreamError(
            f"{mapping.LABEL} {mapping.OP}: unreadable answer ({exc})",
            provider=mapping.PROVIDER,
            native_status=200,
        )
        _log(error)
        raise error from None
    except ProviderError as exc:
        if file is not None:
            file.close()
        _log(exc)
        raise
    except BaseException:
        if file is not None:
            file.close()
        raise
    finally:
        await body.aclose()
    ctype = mapping.content_type(req)
    artefact = Artefact(
        index=0,
        id=result.native_id,
        kind="audio",
        content_type=ctype,
        duration=result.duration,
        audio_url=result.url if file is None else None,
    )
    streams = {}
    if file is not None:
        streams[0] = ByteStream(
            content_type=ctype, chunks=Spooled(file), length=splitter.audio_bytes
        )
    return Finished(artefacts=[artefact], native_id=result.native_id, streams=streams)


async def _read(body: Body) -> tuple[IO[bytes] | None, Splitter]:
    """Read the whole answer: the hex audio (if any) decoded into a spool file."""
    splitter = Splitter()
    file: IO[bytes] | None = None
    try:
        async for chunk in body:
            audio = splitter.feed(chunk)
            if not audio:
                continue
            if file is None:
                file = await asyncio.to_thread(
                    tempfile.TemporaryFile, prefix="minimax-", suffix=".audio"
                )
            await asyncio.to_thread(file.write, audio)
        if file is not None:
            await asyncio.to_thread(file.flush)
    except BaseException:
        if file is not None:
            file.close()
        raise
    return file, splitter


def _log(exc: ProviderError) -> None:
    log.warning(
        "upstream_call_failed",
        provider=mapping.PROVIDER,
        op=mapping.OP,
        status=exc.native_status,
        error=exc.code,
        message=exc.message,
    )
