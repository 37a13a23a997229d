"""The artefact store: audio (and other outputs) kept by the gateway, in a folder or S3.

Objects are addressed by keys like ``{job_id}/{index}.{ext}`` (segments of letters,
digits, ``.``, ``_`` and ``-``, none starting with a dot), stored through obstore
(``LocalStore`` or ``S3Store``). Bytes are always streamed: ``put`` uploads in parts
(multipart, at most ``PART_SIZE x PART_CONCURRENCY`` in flight), ``open`` reads in
chunks, and nothing holds a whole object in memory. Objects carry nothing special;
``delete_prefix(job_id)`` removes a job's artefacts when the job expires.

Content types: an S3 object keeps the one given to ``put`` (S3 answers it on download);
a folder keeps none, so the type of the key's extension is answered (``.mp3`` →
``audio/mpeg``, ...): give keys the extension of their content.

Download URLs expire: a file store's are served by the gateway itself
(``GET /v1/artefacts/{key}?exp=...&sig=...``, see ``gateway/store/signing.py``), an S3
store's are presigned by S3. Both are built anew by ``url()`` at every render.

``put_url`` copies from an HTTP URL, streaming. ``check(url)`` runs before every request
(redirects included) and may raise to refuse it; ``trusting(base_urls, guard)`` builds
the usual one: a provider's own host is trusted, any other host goes through the guard
(the SSRF guard, ``gateway.notify.ssrf.check_webhook_url`` with ``allow_private=False``),
whose approved addresses are the only ones that request connects to (DNS pinning,
``gateway.infra.pinning``, with a ``PinnedTransport`` client).

Usage::

    artefacts = ArtefactStore.from_settings(settings, signer=UrlSigner(b"k"), http=client)
    stored = await artefacts.put("mus_1/0.mp3", chunks, "audio/mpeg")     # Stored(...)
    check = trusting([provider_base_url], partial(check_webhook_url, allow_private=False))
    stored = await artefacts.put_url("mus_1/1.mp3", url, None, check=check)
    url = await artefacts.url("mus_1/0.mp3", base_url="https://gw.example")
    opened = await artefacts.open("mus_1/0.mp3", start=0, end=1024)      # end exclusive
    await artefacts.delete_prefix("mus_1")
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import obstore
from obstore.exceptions import GenericError, NotFoundError
from obstore.store import LocalStore

from gateway.infra.pinning import addresses_of, approved
from gateway.infra.settings import Settings
from gateway.store.objects import artefact_key, check_key, guess_type, open_backend
from gateway.store.signing import UrlSigner

__all__ = [
    "ArtefactError",
    "ArtefactFetchError",
    "ArtefactInfo",
    "ArtefactNotFound",
    "ArtefactStore",
    "ArtefactTooLarge",
    "Opened",
    "Stored",
    "UrlCheck",
    "artefact_key",
    "check_key",
    "guess_type",
    "no_check",
    "trusting",
]

#: The gateway's download route (the API layer serves it for a file store).
ROUTE_PREFIX = "/v1/artefacts"
PART_SIZE = 5 * 1024 * 1024  # multipart part size (S3's minimum)
PART_CONCURRENCY = 2  # parts uploaded at once: bounds the memory of one upload
LOCAL_PART_SIZE = 1024 * 1024  # a folder has no minimum part: less held per upload
CHUNK_SIZE = 1024 * 1024  # bytes per chunk when reading (fewer, larger ASGI messages)
MAX_BYTES = 1024**3  # default limit of one object copied from a URL
MAX_REDIRECTS = 5
MAX_PRESIGNED_SECONDS = 7 * 86_400

UrlCheck = Callable[[str], Awaitable[object]]
_NOT_FOUND = (FileNotFoundError, NotFoundError)


class ArtefactError(Exception):
    """An artefact could not be stored or read."""


class ArtefactNotFound(ArtefactError, LookupError):
    """No object under that key."""


class ArtefactFetchError(ArtefactError):
    """Copying from a URL failed (network error, non-2xx answer, too many redirects)."""


class ArtefactTooLarge(ArtefactError):
    """The stream was longer than the limit given to ``put``/``put_url``."""


@dataclass(frozen=True)
class Stored:
    """What ``put`` wrote."""

    key: str
    size: int
    content_type: str
    sha256: str


@dataclass(frozen=True)
class ArtefactInfo:
    """An object's metadata (``head``)."""

    key: str
    size: int
    content_type: str
    etag: str | None


@dataclass(frozen=True)
class Opened:
    """An object being read: bytes ``start`` to ``end`` (exclusive) of ``size``."""

    size: int
    content_type: str
    chunks: AsyncIterator[bytes]
    start: int
    end: int


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def trusting(base_urls: Iterable[str], guard: UrlCheck) -> UrlCheck:
    """A ``put_url`` check: URLs on the origin (scheme, host, port) of one of
    ``base_urls`` pass as they are (the provider's own, configured host); every other
    URL must pass ``guard`` (the SSRF guard), which raises to refuse it."""
    trusted = {_origin(u) for u in base_urls if u}

    async def check(url: str) -> object:
        if _origin(url) in trusted:
            return None
        return await guard(url)

    return check


async def no_check(url: str) -> None:
    """A ``put_url`` check that lets everything through (trusted callers only)."""


class ArtefactStore:
    """Streams artefacts in and out of one obstore store and makes their URLs."""

    def __init__(
        self,
        backend: Any,
        *,
        presigned: bool,
        signer: UrlSigner,
        public_url: str | None = None,
        url_ttl: float = 3600.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.backend = backend
        self.presigned = presigned
        self.signer = signer
        self.public_url = public_url.rstrip("/") if public_url else None
        self.url_ttl = url_ttl
        self.http = http

    def local_path(self, key: str) -> Path | None:
        """The file behind ``key`` when the store is a local folder (so a whole-file
        download can be sent as a file, the server's fast path), else None."""
        if self.presigned or not isinstance(self.backend, LocalStore):
            return None
        return Path(self.backend.prefix) / check_key(key)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, signer: UrlSigner, http: httpx.AsyncClient | None = None
    ) -> ArtefactStore:
        backend, presigned = open_backend(settings)
        return cls(
            backend,
            presigned=presigned,
            signer=signer,
            public_url=settings.public_url,
            url_ttl=settings.artefact_url_ttl,
            http=http,
        )

    # ----------------------------------------------------------------- writing

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        content_type: str,
        *,
        max_bytes: int | None = None,
    ) -> Stored:
        """Store a byte stream under ``key`` (replacing any object there), in parts;
        the object appears whole or not at all. ``ArtefactTooLarge`` past ``max_bytes``."""
        check_key(key)
        digest = hashlib.sha256()
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise ArtefactTooLarge(f"{key}: more than {max_bytes} bytes")
                digest.update(chunk)
                yield chunk

        stream = counted()
        first = await anext(stream, None)
        attributes = {"Content-Type": content_type} if self.presigned else None
        if first is None:  # an empty object: no multipart upload of zero parts
            await obstore.put_async(self.backend, key, b"", attributes=attributes)
        else:
            await obstore.put_async(
                self.backend,
                key,
                _prepend(first, stream),
                attributes=attributes,
                use_multipart=True,
                chunk_size=PART_SIZE if self.presigned else LOCAL_PART_SIZE,
                max_concurrency=PART_CONCURRENCY if self.presigned else 1,
            )
        return Stored(key, size, content_type, digest.hexdigest())

    async def put_url(
        self,
        key: str,
        url: str,
        content_type: str | None = None,
        *,
        check: UrlCheck,
        max_bytes: int | None = MAX_BYTES,
    ) -> Stored:
        """Copy the body of ``GET url`` into ``key``, streaming. ``check`` runs before
        the request and before following each redirect, and raises to refuse a URL; when
        it answers a list of addresses (the SSRF guard does), that request connects only
        to them (``gateway.infra.pinning``; the client's transport a ``PinnedTransport``).
        ``content_type`` unset: the answer's, else the key's extension's."""
        if self.http is None:
            raise RuntimeError("ArtefactStore was built without an HTTP client")
        target = url
        for _ in range(MAX_REDIRECTS + 1):
            verdict = await check(target)
            try:
                with approved(target, addresses_of(verdict)):  # resolved once, by the check
                    request = self.http.build_request("GET", target)
                    response = await self.http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise ArtefactFetchError(f"GET {_safe(target)}: {type(exc).__name__}") from exc
            try:
                if response.is_redirect and "location" in response.headers:
                    target = str(response.url.join(response.headers["location"]))
                    continue
                if response.status_code != 200:
                    raise ArtefactFetchError(f"GET {_safe(target)} answered {response.status_code}")
                declared = response.headers.get("content-length", "")
                if max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise ArtefactTooLarge(f"{key}: {declared} bytes announced")
                kind = content_type or response.headers.get("content-type") or guess_type(key)
                try:
                    return await self.put(
                        key, response.aiter_bytes(CHUNK_SIZE), kind, max_bytes=max_bytes
                    )
                except httpx.HTTPError as exc:
                    raise ArtefactFetchError(f"GET {_safe(target)}: {type(exc).__name__}") from exc
            finally:
                await response.aclose()
        raise ArtefactFetchError(f"GET {_safe(url)}: more than {MAX_REDIRECTS} redirects")

    # ----------------------------------------------------------------- reading

    async def head(self, key: str) -> ArtefactInfo | None:
        """The object's size and content type; None when there is none."""
        check_key(key)
        try:
            result = await obstore.get_async(self.backend, key, options={"head": True})
        except _NOT_FOUND:
            return None
        meta = result.meta
        kind = result.attributes.get("Content-Type") or guess_type(key)
        return ArtefactInfo(key, int(meta["size"]), str(kind), meta.get("e_tag"))

    async def exists(self, key: str) -> bool:
        return await self.head(key) is not None

    async def open(self, key: str, start: int | None = None, end: int | None = None) -> Opened:
        """Read bytes ``start`` (default 0) to ``end`` (exclusive; default the end) of
        the object. ``ArtefactNotFound`` when there is none; the range must lie within
        the object (the caller checks it against ``head``)."""
        check_key(key)
        options: dict[str, Any] = {}
        if end is not None:
            options["range"] = (start or 0, end)
        elif start:
            options["range"] = {"offset": start}
        try:
            result = await obstore.get_async(self.backend, key, options=options or None)
        except _NOT_FOUND:
            raise ArtefactNotFound(key) from None
        except GenericError as exc:
            if not options or "NotPartial" not in str(exc):
                raise
            return await self._open_skipping(key, start or 0, end)
        first, last = result.range
        kind = result.attributes.get("Content-Type") or guess_type(key)
        chunks = aiter(result.stream(min_chunk_size=CHUNK_SIZE))
        return Opened(int(result.meta["size"]), str(kind), chunks, first, last)

    async def _open_skipping(self, key: str, start: int, end: int | None) -> Opened:
        """A ranged read from a server that answers a range request with 200 (some
        S3-compatible servers, e.g. ``rclone serve s3`` 1.75, which obstore refuses):
        the whole object, streamed, less the bytes outside the range."""
        try:
            result = await obstore.get_async(self.backend, key)
        except _NOT_FOUND:
            raise ArtefactNotFound(key) from None
        size = int(result.meta["size"])
        stop = size if end is None else min(end, size)
        kind = result.attributes.get("Content-Type") or guess_type(key)
        chunks = _slice(aiter(result.stream(min_chunk_size=CHUNK_SIZE)), start, stop)
        return Opened(size, str(kind), chunks, start, stop)

    # ---------------------------------------------------------------- deleting

    async def delete(self, key: str) -> None:
        """Remove one object (nothing happens when there is none)."""
        check_key(key)
        try:
            await obstore.delete_async(self.backend, key)
        except _NOT_FOUND:
            pass

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix/`` (a job id); answer how many."""
        check_key(prefix)
        removed = 0
        async for batch in obstore.list(self.backend, prefix, chunk_size=500):
            paths = [str(meta["path"]) for meta in batch]
            if paths:
                try:
                    await obstore.delete_async(self.backend, paths)
                except _NOT_FOUND:  # a file store deletes one by one: gone meanwhile
                    for path in paths:
                        await self.delete(path)
                removed += len(paths)
        return removed

    # -------------------------------------------------------------------- URLs

    async def url(self, key: str, base_url: str | None = None, ttl: float | None = None) -> str:
        """An absolute download URL of ``key`` valid ``ttl`` seconds (default
        ``GATEWAY_ARTEFACT_URL_TTL``): presigned by S3, or signed for the gateway's own
        route on ``GATEWAY_PUBLIC_URL`` (else ``base_url``, the request's own)."""
        check_key(key)
        ttl = self.url_ttl if ttl is None else ttl
        if self.presigned:  # SigV4 presigned URLs live at most 7 days
            expires = timedelta(seconds=min(ttl, MAX_PRESIGNED_SECONDS))
            return await obstore.sign_async(self.backend, "GET", key, expires)
        base = self.public_url or (base_url or "").rstrip("/")
        if not base:
            raise ValueError("no base URL: set GATEWAY_PUBLIC_URL or pass the request's")
        query = await self.signer.query(key, ttl)
        return f"{base}{ROUTE_PREFIX}/{quote(key)}?{query}"

    async def verify(self, key: str, expires: str | None, signature: str | None) -> None:
        """Check a download URL's ``exp`` and ``sig`` for ``key`` (raises ``Forbidden``)."""
        await self.signer.verify(key, expires, signature)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def _slice(chunks: AsyncIterator[bytes], start: int, stop: int) -> AsyncIterator[bytes]:
    """Bytes ``start`` to ``stop`` (exclusive) of a stream."""
    offset = 0
    async for chunk in chunks:
        lo, hi = max(start - offset, 0), min(stop - offset, len(chunk))
        offset += len(chunk)
        if lo < hi:
            yield chunk[lo:hi]
        if offset >= stop:
            break


def _safe(url: str) -> str:
    """A URL for an error message: no query string (it may carry a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
