"""Outbound connections pinned to the addresses a check approved (no DNS rebinding).

A guard (the SSRF guard, ``gateway.notify.ssrf.check_webhook_url``) resolves a URL's host
once and answers the addresses it approved. ``approved(url, addresses)`` puts that
approval in force for the requests made inside its block (a context variable: this task
and what it awaits, nothing else), and a client whose transport is a ``PinnedTransport``
then connects to those addresses only, one after the other in the order given, and never
resolves the host again: a DNS answer that changes between the check and the connection
(DNS rebinding: a public address for the check, loopback for the connection) cannot move
the request. The URL itself is unchanged, so the ``Host`` header, TLS SNI and certificate
verification all use the original host name.

``addresses=None`` is a trusted host (a provider's own configured base URL): it is
resolved and connected by name as usual. A request without an approval for its origin
(scheme aside: host and port) is refused with ``httpx.ConnectError``: the transport fails
closed. Connections are not kept alive, so each request connects under its own approval.
Environment proxies do not apply to a client built on this transport with
``trust_env=False`` (a proxy would resolve the name itself).

Public API only: httpx's transport interface (``httpx.AsyncBaseTransport``) over
httpcore's connection pool and its network backend interface (``AsyncNetworkBackend``,
public since httpcore 1.0), the same layering as httpx's own default transport.

Usage::

    http = httpx.AsyncClient(transport=PinnedTransport(), trust_env=False)
    addresses = await check_webhook_url(url, allow_private=False)   # resolved once
    with approved(url, addresses):
        response = await http.post(url, content=body)              # to those only
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

import httpcore
import httpx

__all__ = ["PinnedBackend", "PinnedTransport", "addresses_of", "approved"]


class _Approval(NamedTuple):
    host: str  # as httpcore connects to it: ASCII (IDNA), IPv6 without brackets
    port: int
    addresses: tuple[str, ...] | None  # None: a trusted host, connected by name


_approval: ContextVar[_Approval | None] = ContextVar("gateway_pinned_approval", default=None)


def _origin(url: str | httpx.URL) -> tuple[str, int]:
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.raw_host.decode("ascii").lower(), port


def addresses_of(verdict: object) -> list[str] | None:
    """A check's answer as an approval: a list or tuple of addresses pins the request to
    them; anything else (``None``: a trusted host) lets it connect by name."""
    if isinstance(verdict, (list, tuple)):
        return [str(address) for address in verdict]
    return None


@contextmanager
def approved(url: str, addresses: Iterable[object] | None) -> Iterator[None]:
    """Requests to ``url``'s origin made in this block connect only to ``addresses``
    (``None``: by name). Nested blocks replace the approval for their duration."""
    host, port = _origin(url)
    pins = None if addresses is None else tuple(str(address) for address in addresses)
    token = _approval.set(_Approval(host, port, pins))
    try:
        yield
    finally:
        _approval.reset(token)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that opens TCP connections only to the approved addresses of
    the approval in force (``approved``); ``inner`` does the actual connecting (default:
    httpcore's ``AnyIOBackend``)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        approval = _approval.get()
        if approval is None or (approval.host, approval.port) != (host.lower(), port):
            raise httpcore.ConnectError(f"no approved address for {host}:{port}")
        if approval.addresses is None:  # a trusted host
            return await self._inner.connect_tcp(
                host, port, timeout, local_address=local_address, socket_options=socket_options
            )
        return await self._first(approval.addresses, port, timeout, local_address, socket_options)

    async def _first(
        self,
        addresses: Sequence[str],
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        """The first approved address that accepts, within one connect timeout in all."""
        if not addresses:
            raise httpcore.ConnectError("no approved address")
        options = list(socket_options or ())
        deadline = None if timeout is None else time.monotonic() + timeout
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await self._inner.connect_tcp(
                    address, port, left, local_address=local_address, socket_options=options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the next approved address, if any
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a unix socket is never an approved target")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


#: httpcore's exceptions as httpx's (most specific first), as httpx's transport maps them.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _mapped(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc) or type(exc).__name__, request=request) from exc
        raise


class _Body(httpx.AsyncByteStream):
    """An httpcore response body as an httpx stream (errors mapped as above)."""

    def __init__(self, response: httpcore.Response, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request):
            async for part in self._response.aiter_stream():
                yield part

    async def aclose(self) -> None:
        await self._response.aclose()


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport (HTTP/1.1) whose connections follow ``approved``: see the
    module docstring. ``verify``: an SSL context, or True (httpx's default context) /
    False; ``backend``: what ``PinnedBackend`` connects with (tests record with it)."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        max_connections: int = 100,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=max_connections,
            max_keepalive_connections=0,  # every request connects under its own approval
            network_backend=PinnedBackend(backend),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.AsyncByteStream):
            raise TypeError("PinnedTransport needs an async request body")
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped(request):
            response = await self._pool.handle_async_request(core)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response, request),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
