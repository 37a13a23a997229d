"""Where a finished generation's artefacts go: the artefact store.

``ArtefactSink.store_all`` turns a ``Finished`` answer's artefacts into the job's outputs.
Audio given as bytes is streamed into the store; audio given as a URL (one that dies,
MiniMax's 24 h) is copied in. A URL on the host of the provider's own configured base URL
is trusted; any other host first passes the SSRF guard, so a provider answer pointing at
a private address fails the job with a clear error instead of a silent fetch. When the
provider could not give the format asked (``format``), the stored audio is converted
(PyAV) and the converted file is what the job serves.

A stored output's ``audio_url`` is ``artefact://{key}``; ``resolve_urls`` makes it an
expiring signed URL each time the job is read (so a read after expiry gets a fresh one).

Without a store (``ArtefactSink(None, ...)``) only artefacts given as URLs can complete a
job, as they are; bytes fail it (``artefact_store_unavailable``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
import structlog

from gateway.infra.audio import ConversionError, content_type, converted, format_of
from gateway.notify.ssrf import UnsafeURL
from gateway.store.artefacts import ArtefactError, ArtefactStore, trusting
from gateway.store.objects import artefact_key
from gateway.store.store import JobRecord
from providers.base import Artefact, ByteStream, Finished, Provider, UpstreamError

log = structlog.get_logger("gateway.jobs.sink")

SCHEME = "artefact://"  # an output stored by the gateway (resolved when read)
_EXTENSIONS = {"mp3": "mp3", "wav": "wav", "ogg": "ogg", "aac": "aac"}

Guard = Callable[[str], Awaitable[object]]


class ArtefactStoreUnavailable(UpstreamError):
    code = "artefact_store_unavailable"


class ArtefactCopyFailed(UpstreamError):
    code = "artefact_copy_failed"


class ArtefactSink:
    def __init__(
        self,
        store: ArtefactStore | None,
        providers: dict[str, Provider] | None = None,
        guard: Guard | None = None,
    ) -> None:
        self.store = store
        self.providers = providers or {}
        self.guard = guard

    async def store_all(self, record: JobRecord, finished: Finished, fmt: str) -> list[Artefact]:
        if self.store is None:
            if finished.streams:
                for stream in finished.streams.values():  # never read: release them
                    await stream.aclose()
                raise ArtefactStoreUnavailable(
                    "The provider answered with the audio itself; storing it needs the "
                    "artefact store.",
                    provider=record.provider,
                )
            return list(finished.artefacts)
        outputs = []
        try:
            for artefact in finished.artefacts:
                stream = finished.streams.pop(artefact.index, None)
                outputs.append(await self._one(record, artefact, stream, fmt))
        finally:
            for stream in finished.streams.values():  # artefacts never reached
                await stream.aclose()
        return outputs

    async def mirror(self, record: JobRecord, outputs: list[Artefact]) -> list[Artefact]:
        """Copy an asynchronous provider's outputs in (their own URLs expire)."""
        copied = []
        for artefact in outputs:
            if artefact.audio_url and not artefact.audio_url.startswith(SCHEME):
                artefact = await self._one(record, artefact, None, record.format)
            copied.append(artefact)
        return copied

    async def _one(
        self, record: JobRecord, artefact: Artefact, stream: ByteStream | None, fmt: str
    ) -> Artefact:
        assert self.store is not None
        if stream is None and not artefact.audio_url:
            return artefact
        kind = (stream.content_type if stream else None) or artefact.content_type
        native = format_of(kind) or _format_of_url(artefact.audio_url) or fmt
        key = artefact_key(record.id, artefact.index, _EXTENSIONS.get(native, "bin"))
        try:
            if stream is not None:
                try:
                    stored = await self.store.put(key, stream.chunks, kind or content_type(native))
                finally:
                    await stream.aclose()
            else:
                check = trusting([self._base(record.provider)], self._guard)
                stored = await self.store.put_url(key, artefact.audio_url or "", check=check)
            if fmt != native and fmt in _EXTENSIONS:
                key = await self._convert(record, artefact.index, key, fmt)
                kind = content_type(fmt)
            else:
                kind = stored.content_type
        except UnsafeURL as exc:
            reason = exc.message.replace("webhook_url", "URL")
            raise ArtefactCopyFailed(
                f"The provider's audio URL was refused: {reason}", provider=record.provider
            ) from None
        except (ArtefactError, ConversionError, ValueError) as exc:
            raise ArtefactCopyFailed(
                f"Storing the audio failed: {exc}", provider=record.provider
            ) from None
        return msgspec.structs.replace(artefact, audio_url=SCHEME + key, content_type=kind)

    async def _convert(self, record: JobRecord, index: int, key: str, fmt: str) -> str:
        assert self.store is not None
        opened = await self.store.open(key)
        target = artefact_key(record.id, index, _EXTENSIONS[fmt])
        async with converted(opened.chunks, fmt) as out:
            await self.store.put(target, out.chunks(), out.content_type)
        await self.store.delete(key)
        log.info("artefact_converted", job_id=record.id, index=index, to=fmt)
        return target

    def _base(self, provider: str) -> str:
        p = self.providers.get(provider)
        return getattr(p, "base_url", "") or ""

    async def _guard(self, url: str) -> object:
        if self.guard is None:
            raise UnsafeURL("no SSRF guard configured for untrusted hosts", param="url")
        return await self.guard(url)


def _format_of_url(url: str | None) -> str | None:
    path = (url or "").split("?", 1)[0].rsplit("/", 1)[-1]
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    return ext if ext in _EXTENSIONS else None


def stores_outputs(record: JobRecord) -> bool:
    """Whether any output of ``record`` is in the artefact store (``artefact://``)."""
    return any(o.audio_url and o.audio_url.startswith(SCHEME) for o in record.outputs)


async def resolve_urls(
    record: JobRecord, store: ArtefactStore | None, base_url: str | None
) -> JobRecord:
    """``record`` with every stored output's ``artefact://`` URL made a signed URL."""
    if store is None or not stores_outputs(record):
        return record
    outputs = []
    for o in record.outputs:
        if o.audio_url and o.audio_url.startswith(SCHEME):
            url = await store.url(o.audio_url.removeprefix(SCHEME), base_url)
            o = msgspec.structs.replace(o, audio_url=url)
        outputs.append(o)
    return msgspec.structs.replace(record, outputs=outputs)
