"""The one thin HTTP layer every provider client uses: one pooled ``aiohttp`` session.

``UpstreamHTTP`` sends a request and answers status, reason, headers and the whole body
(read to the end, the connection back in the pool). Every failure below HTTP leaves as a
``TransportError`` whose ``sent`` says whether the request may have reached the server:
a create is tried again only when it provably never left (``sent`` False), otherwise
its outcome is unknown. The provider clients turn these into their ``ProviderError``
subclasses and build their own messages::

    TransportError               sent   aiohttp raised
     ├── ConnectError            False  ClientConnectorError (refused, DNS, TLS handshake),
     │                                  an invalid or non-HTTP URL
     ├── ConnectTimeout          False  ConnectionTimeoutError: no connection within
     │                                  ``pool + connect`` (pool wait included)
     ├── ReadTimeout             True   SocketTimeoutError (no byte for ``read`` seconds),
     │                                  or the whole call past its total cap
     ├── ReadError               True   ServerDisconnectedError, ClientOSError after
     │                                  connecting (reset), ClientPayloadError (body cut)
     └── ProtocolError           True   ClientResponseError: a malformed answer

Timeouts (``Timeouts``) map onto ``aiohttp.ClientTimeout``: ``sock_connect=connect``,
``connect=pool + connect`` (waiting for a pooled connection plus connecting),
``sock_read=read`` (between two reads of the answer, as httpx's read timeout). aiohttp
has no write timeout: request bodies here are small, and the ``total`` cap
``pool + connect + write + read`` bounds a write the server never reads.

The aiohttp exception is not chained to the ``TransportError`` (the repr of a
``ClientResponseError`` holds the request headers, credentials included); its class name
and text are in the message.

``UpstreamHTTP.stream`` sends the same way but answers as soon as the status line and
headers are in: a ``StreamedAnswer`` whose body is read once, chunk by chunk
(``async for chunk in answer``), or bounded (``await answer.read(limit)``), and released
with ``aclose`` (the connection goes back to the pool when the body was read to the end,
else it is closed). A failure while reading the body is a ``TransportError`` with ``sent``
True, whatever aiohttp raised. A stream has no ``total`` cap (a long download is not a
stall): ``read`` bounds every wait for the next bytes, the first ones included.

A POST (every create) is one request upstream, never more. aiohttp re-sends an idempotent
request (a status GET) once when the connection it used breaks before the answer (RFC 9112
§9.3.1 allows it, and aiohttp has no public switch for it): a status call may therefore
reach the provider twice in that case, one call more than the gateway's budget counts.

Usage::

    http = UpstreamHTTP("https://api.example.com/v1", headers={"Authorization": key})
    answer = await http.request("GET", "/jobs/42", params={"x": "1"})
    answer.status, answer.headers.get("Retry-After"), answer.body
    streamed = await http.stream("POST", "/render", content=b"{}")
    try:
        async for chunk in streamed: ...
    finally:
        await streamed.aclose()
    await http.aclose()
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

__all__ = [
    "Answer",
    "ConnectError",
    "ConnectTimeout",
    "ProtocolError",
    "ReadError",
    "ReadTimeout",
    "StreamedAnswer",
    "Timeouts",
    "TransportError",
    "UpstreamHTTP",
]

KEEPALIVE_SECONDS = 5.0  # an idle pooled connection is closed after this (httpx's default)
CHUNK_SIZE = 64 * 1024  # a streamed body is read this much at a time, at most


# ------------------------------------------------------------------------- errors


class TransportError(Exception):
    """No HTTP answer. ``sent``: the request may have reached the server."""

    sent: bool = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConnectError(TransportError):
    sent = False


class ConnectTimeout(TransportError):
    sent = False


class ReadTimeout(TransportError):
    sent = True


class ReadError(TransportError):
    sent = True


class ProtocolError(TransportError):
    sent = True


def classify(exc: BaseException) -> TransportError:
    """The ``TransportError`` for an exception aiohttp raised (order matters: the
    specific timeouts subclass ``ServerTimeoutError``, itself a ``TimeoutError``, and
    ``ClientConnectorError`` subclasses ``ClientOSError``)."""
    # ServerDisconnectedError's text can hold the answer's headers as parsed so far.
    detail = "server disconnected" if isinstance(exc, aiohttp.ServerDisconnectedError) else exc
    what = f"{type(exc).__name__}: {detail}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeout(what)
    if isinstance(exc, TimeoutError):  # SocketTimeoutError, or the total cap
        return ReadTimeout(what)
    if isinstance(
        exc,
        (
            aiohttp.ClientConnectorError,
            aiohttp.ServerFingerprintMismatch,
            aiohttp.InvalidURL,
            aiohttp.NonHttpUrlClientError,
        ),
    ):
        return ConnectError(what)
    if isinstance(exc, aiohttp.ClientResponseError):
        return ProtocolError(what)
    return ReadError(what)  # disconnected, reset, payload cut short, anything else


# ------------------------------------------------------------------------ settings


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds: ``connect`` (TCP/TLS), ``read`` (between reads of the answer), ``write``
    (part of the total cap only, see the module docstring), ``pool`` (waiting for a
    pooled connection when ``limit`` are busy)."""

    connect: float = 5.0
    read: float = 30.0
    write: float = 10.0
    pool: float = 5.0

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=self.pool + self.connect + self.write + self.read,
            connect=self.pool + self.connect,
            sock_connect=self.connect,
            sock_read=self.read,
        )

    def stream_timeout(self) -> aiohttp.ClientTimeout:
        """As ``client_timeout`` without the ``total`` cap (see the module docstring)."""
        return aiohttp.ClientTimeout(
            total=None,
            connect=self.pool + self.connect,
            sock_connect=self.connect,
            sock_read=self.read,
        )


class Answer(NamedTuple):
    """An HTTP answer, body fully read."""

    status: int
    reason: str
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class StreamedAnswer:
    """An HTTP answer whose body is still on the wire (``UpstreamHTTP.stream``).

    ``status``, ``reason`` and ``headers`` are known; the body is read once, as an async
    iterator of chunks (at most ``chunk_size`` bytes each) or with ``read(limit)``.
    Reading raises ``TransportError`` (always ``sent``). ``aclose`` (idempotent) releases
    the connection: back to the pool when the body was read to the end, else closed.
    """

    def __init__(self, resp: aiohttp.ClientResponse, chunk_size: int = CHUNK_SIZE) -> None:
        self.status = resp.status
        self.reason = resp.reason or ""
        self.headers: CIMultiDictProxy[str] = resp.headers
        self._resp = resp
        self._chunks: AsyncIterator[bytes] = resp.content.iter_chunked(chunk_size)
        self._closed = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def length(self) -> int | None:
        """The body's length in bytes as it will be read: ``Content-Length``, unless a
        ``Content-Encoding`` (other than identity) makes it the encoded length."""
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            return None
        return self._resp.content_length

    def __aiter__(self) -> StreamedAnswer:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            await self.aclose()
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = classify(exc)
        await self.aclose()
        # Raised outside the handler, like ``UpstreamHTTP.request``'s errors.
        raise error if error.sent else ReadError(error.message)

    async def read(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the body (an error body, say), then ``aclose``."""
        parts: list[bytes] = []
        size = 0
        try:
            async for chunk in self:
                parts.append(chunk)
                size += len(chunk)
                if size >= limit:
                    break
        finally:
            await self.aclose()
        return b"".join(parts)[:limit]

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._resp.content.at_eof():
            self._resp.release()
        else:
            self._resp.close()


# -------------------------------------------------------------------------- client


class UpstreamHTTP:
    """One pooled ``aiohttp.ClientSession`` for one upstream, made on first use inside
    the running loop: nothing is opened at init, and as a session is bound to the loop
    that made it, a call from another loop makes a new one."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        limit: int = 50,
    ) -> None:
        # Parsed (and normalized) once; each call appends an already-safe path to it.
        self._base = str(URL(base_url.rstrip("/")))
        self._headers = dict(headers or {})
        self.timeouts = timeouts or Timeouts()
        self._timeout = self.timeouts.client_timeout()
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        return self._base

    def _open(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limit,
            limit_per_host=0,
            keepalive_timeout=KEEPALIVE_SECONDS,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=True,
        )
        self._session, self._loop = session, loop
        return session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """``method`` ``base_url + path`` (``path`` already percent-encoded where it must
        be); raises a ``TransportError`` when no complete answer arrives."""
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._loop is not loop:
            session = self._open(loop)
        try:
            async with session.request(
                method,
                URL(self._base + path, encoded=True),
                params=params,
                data=content,
                headers=headers,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                return Answer(resp.status, resp.reason or "", resp.headers, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = classify(exc)
        # Raised outside the handler: aiohttp's exception is not kept as the context (the
        # repr of a ClientResponseError holds the request headers, credentials included).
        raise error

    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> StreamedAnswer:
        """As ``request``, answering once the headers are in; the body stays on the wire
        (``StreamedAnswer``). The caller must ``aclose`` the answer."""
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._loop is not loop:
            session = self._open(loop)
        try:
            resp = await session.request(
                method,
                URL(self._base + path, encoded=True),
                params=params,
                data=content,
                headers=headers,
                allow_redirects=False,
                timeout=self.timeouts.stream_timeout(),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = classify(exc)
        else:
            return StreamedAnswer(resp, chunk_size)
        raise error

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
