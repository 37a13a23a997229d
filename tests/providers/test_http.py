"""``providers.kit.http``: answers as sent, and every transport failure classified by whether
the request may have reached the server (``sent``), against raw sockets on loopback.

Each fault is a small asyncio server in the test's own loop that answers exactly the
bytes a test gives it (or nothing, or garbage), so the classification is checked on real
connections, not on mocks. The same faults go through both provider clients, whose
``ProviderError``s keep the ``sent`` flag the gateway's create retries depend on.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import aiohttp
import pytest

import providers.musicgpt as musicgpt
import providers.tempolor as tempolor
from providers.base import (
    Provider,
    SubmitRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from providers.kit.http import (
    ConnectError,
    ConnectTimeout,
    ProtocolError,
    ReadError,
    ReadTimeout,
    Timeouts,
    TransportError,
    UpstreamHTTP,
    classify,
)
from providers.musicgpt.catalog import MODELS as MG_MODELS
from providers.tempolor.catalog import MODELS as TP_MODELS
from tests.support.servers import free_port
from tests.support.waiting import eventually, wait_until

# Short timeouts where a test waits for one to fire; patient ones everywhere else, so that
# an answer that is on its way is never cut short on a loaded machine.
FAST = Timeouts(connect=0.3, read=0.3, write=0.3, pool=0.3)
PATIENT = Timeouts(connect=5, read=5, write=5, pool=5)
# Against a body dribbled a byte per 50 ms: a read timeout no stall of the serving loop
# reaches (a stall beyond 0.3 s did), and a short total cap (their sum) that cuts it.
DRIBBLE = Timeouts(connect=0.1, read=3.0, write=0.1, pool=0.1)
MG_KEY = "mg-http-test-key-7d2e9a"
UA_TOKEN = "user:4711-http-test-token-c0ffee"


@dataclass
class Raw:
    """A raw HTTP/1.1 server: reads each request, then runs ``reply(writer)``."""

    reply: Callable[[asyncio.StreamWriter], Awaitable[None]]
    url: str = ""
    requests: list[bytes] = field(default_factory=list)  # head + body, as received
    connections: int = 0


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")


@contextlib.asynccontextmanager
async def raw_server(
    reply: Callable[[asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[Raw]:
    raw = Raw(reply)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        raw.connections += 1
        try:
            while True:
                try:
                    raw.requests.append(await _read_request(reader))
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                await raw.reply(writer)
                if writer.is_closing():
                    return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    raw.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/api"
    try:
        yield raw
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def answer(data: bytes) -> Callable[[asyncio.StreamWriter], Awaitable[None]]:
    async def reply(writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()

    return reply


def answer_then_close(data: bytes) -> Callable[[asyncio.StreamWriter], Awaitable[None]]:
    async def reply(writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        writer.close()

    return reply


async def never_answer(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


async def reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()


async def dribble(writer: asyncio.StreamWriter) -> None:
    """A 200 whose body arrives a byte at a time, each well within the read timeout
    (``DRIBBLE``'s), the whole far beyond the total cap."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    for _ in range(1000):
        await writer.drain()
        writer.write(b"x")
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def full_backlog() -> Iterator[str]:
    """A listening socket whose accept queue is full: Linux drops further SYNs, so a
    connect hangs until the client's connect timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []

    def handshake_done(s: socket.socket) -> bool:
        _, writable, _ = select.select([], [s], [], 0)
        return bool(writable) and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0

    try:
        for _ in range(4):  # backlog 0 queues one; a few more make sure
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        wait_until(lambda: any(handshake_done(s) for s in fillers), what="the accept queue full")
        yield f"http://127.0.0.1:{port}"
    finally:
        for s in fillers:
            s.close()
        listener.close()


@pytest.fixture
async def fast_http() -> AsyncIterator[Callable[..., UpstreamHTTP]]:
    made: list[UpstreamHTTP] = []

    def make(url: str, **kw: object) -> UpstreamHTTP:
        kw.setdefault("timeouts", PATIENT)
        http = UpstreamHTTP(url, **kw)  # type: ignore[arg-type]
        made.append(http)
        return http

    yield make
    for http in made:
        await http.aclose()


# ------------------------------------------------------------------------- answers


async def test_a_200_with_its_body_headers_and_the_request_as_sent(
    fast_http: Callable[..., UpstreamHTTP],
) -> None:
    body = b'{"ok": true}'
    reply = answer(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Thing: 1\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    async with raw_server(reply) as srv:
        http = fast_http(srv.url, headers={"Authorization": "Bearer t", "User-Agent": "ua/1"})
        got = await http.request(
            "POST",
            "/jobs/user:1-a@b",
            params={"q": "a b"},
            content=b'{"x":1}',
            headers={"Content-Type": "application/json"},
        )
        again = await http.request("GET", "/jobs/42")
    assert got.status == 200 and got.ok and got.reason == "OK"
    assert got.body == body and got.headers["x-thing"] == "1"
    assert again.status == 200 and again.body == body
    first, second = srv.requests
    head, _, sent_body = first.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /api/jobs/user:1-a@b?q=a+b HTTP/1.1"  # path kept raw
    assert b"Authorization: Bearer t" in lines and b"User-Agent: ua/1" in lines
    assert b"Content-Type: application/json" in lines and sent_body == b'{"x":1}'
    assert second.startswith(b"GET /api/jobs/42 HTTP/1.1\r\n")
    assert srv.connections == 1  # kept alive and reused


async def test_a_4xx_is_an_answer_with_its_body_and_retry_after(
    fast_http: Callable[..., UpstreamHTTP],
) -> None:
    reply = answer(
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
        b'Content-Length: 12\r\n\r\n{"e":"slow"}'
    )
    async with raw_server(reply) as srv:
        got = await fast_http(srv.url).request("GET", "/x")
    assert got.status == 429 and not got.ok and got.reason == "Too Many Requests"
    assert got.headers.get("Retry-After") == "7" and got.headers.get("retry-after") == "7"
    assert got.body == b'{"e":"slow"}'


async def test_a_redirect_is_not_followed(fast_http: Callable[..., UpstreamHTTP]) -> None:
    reply = answer(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
    async with raw_server(reply) as srv:
        got = await fast_http(srv.url).request("GET", "/x")
    assert got.status == 302 and len(srv.requests) == 1


async def test_no_cookies_are_kept(fast_http: Callable[..., UpstreamHTTP]) -> None:
    reply = answer(b"HTTP/1.1 200 OK\r\nSet-Cookie: s=1; Path=/\r\nContent-Length: 0\r\n\r\n")
    async with raw_server(reply) as srv:
        http = fast_http(srv.url)
        await http.request("GET", "/a")
        await http.request("GET", "/b")
    assert all(b"cookie" not in r.lower() for r in srv.requests)


async def test_no_session_before_the_first_call_and_a_new_one_after_aclose(
    fast_http: Callable[..., UpstreamHTTP],
) -> None:
    async with raw_server(answer(b"HTTP/1.1 204 No Content\r\n\r\n")) as srv:
        http = fast_http(srv.url)
        assert http._session is None  # nothing opened at init
        assert (await http.request("GET", "/x")).status == 204
        await http.aclose()
        assert http._session is None
        assert (await http.request("GET", "/x")).status == 204


def test_timeouts_map_onto_aiohttp() -> None:
    t = Timeouts(connect=1.0, read=2.0, write=3.0, pool=4.0).client_timeout()
    assert (t.sock_connect, t.connect, t.sock_read) == (1.0, 5.0, 2.0)
    assert t.total == 10.0  # bounds a write the server never reads (no write timeout)


# --------------------------------------------------------------- never sent


async def test_connection_refused_is_not_sent(fast_http: Callable[..., UpstreamHTTP]) -> None:
    http = fast_http(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConnectError) as info:
        await http.request("POST", "/x", content=b"{}")
    assert info.value.sent is False and "ClientConnectorError" in info.value.message


async def test_an_unknown_host_is_not_sent(fast_http: Callable[..., UpstreamHTTP]) -> None:
    http = fast_http("http://does-not-exist.invalid")
    with pytest.raises(TransportError) as info:
        await http.request("GET", "/x")
    assert info.value.sent is False  # DNS failure (or its timeout): nothing left


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping SYNs")
async def test_connect_timeout_is_not_sent(fast_http: Callable[..., UpstreamHTTP]) -> None:
    with full_backlog() as url:
        http = fast_http(url, timeouts=FAST)
        started = time.monotonic()
        with pytest.raises(ConnectTimeout) as info:
            await http.request("POST", "/x", content=b"{}")
    assert info.value.sent is False
    # The connect timeout (0.3 s) cut it; a hang detector above (a SYN retry is 1 s, 3 s..)
    assert 0.25 <= time.monotonic() - started < 5.0


async def test_waiting_for_a_pooled_connection_times_out_as_not_sent(
    fast_http: Callable[..., UpstreamHTTP],
) -> None:
    async with raw_server(never_answer) as srv:
        http = fast_http(
            srv.url, timeouts=Timeouts(connect=0.2, read=5, write=1, pool=0.1), limit=1
        )
        busy = asyncio.create_task(http.request("GET", "/busy"))
        await eventually(lambda: len(srv.requests) == 1, what="the one connection taken")
        with pytest.raises(ConnectTimeout) as info:
            await http.request("POST", "/x", content=b"{}")
        busy.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await busy
    assert info.value.sent is False
    assert srv.connections == 1 and len(srv.requests) == 1  # the POST never left


# ----------------------------------------------------------------------- sent


async def test_read_timeout_is_sent(fast_http: Callable[..., UpstreamHTTP]) -> None:
    async with raw_server(never_answer) as srv:
        with pytest.raises(ReadTimeout) as info:
            await fast_http(srv.url, timeouts=FAST).request("POST", "/x", content=b"{}")
    assert info.value.sent is True and "SocketTimeoutError" in info.value.message
    assert len(srv.requests) == 1


async def test_an_answer_slower_than_the_total_cap_is_a_read_timeout(
    fast_http: Callable[..., UpstreamHTTP],
) -> None:
    async with raw_server(dribble) as srv:
        started = time.monotonic()
        with pytest.raises(ReadTimeout) as info:
            await fast_http(srv.url, timeouts=DRIBBLE).request("GET", "/x")
    assert info.value.sent is True and info.value.message.startswith("TimeoutError")
    # Cut at connect + pool + write + read (3.3 s), far before the 50 s the body takes.
    assert time.monotonic() - started < 15.0


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="closed-before-answering"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Le", id="closed-mid-headers"),
        pytest.param(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"id":', id="mid-body"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", id="chunk"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_server_closing_mid_answer_is_sent_and_not_sent_again(
    fast_http: Callable[..., UpstreamHTTP], data: bytes, method: str
) -> None:
    async with raw_server(answer_then_close(data)) as srv:
        with pytest.raises(ReadError) as info:
            await fast_http(srv.url).request(
                method, "/x", content=b"{}" if method == "POST" else None
            )
    assert info.value.sent is True
    if method == "POST":  # a create is never sent twice
        assert len(srv.requests) == 1 and srv.connections == 1
    else:  # aiohttp re-sends an idempotent GET once on a new connection (RFC 9112 9.3.1)
        assert len(srv.requests) <= 2 and srv.connections == len(srv.requests)


async def test_connection_reset_after_the_request_is_sent(
    fast_http: Callable[..., UpstreamHTTP],
) -> None:
    async with raw_server(reset) as srv:
        with pytest.raises(ReadError) as info:
            await fast_http(srv.url).request("POST", "/x", content=b"{}")
    assert info.value.sent is True and len(srv.requests) == 1


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"garbage\r\n\r\n", id="no-status-line"),
        pytest.param(b"HTTP/1.1 abc OK\r\n\r\n", id="bad-status"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", id="bad-length"),
    ],
)
async def test_a_malformed_answer_is_sent(
    fast_http: Callable[..., UpstreamHTTP], data: bytes
) -> None:
    async with raw_server(answer(data)) as srv:
        http = fast_http(srv.url, headers={"Authorization": "Bearer secret-xyz"})
        with pytest.raises(ProtocolError) as info:
            await http.request("POST", "/x", content=b"{}")
    exc = info.value
    assert exc.sent is True and "ClientResponseError" in exc.message
    assert exc.__cause__ is None and exc.__context__ is None  # aiohttp's repr has headers
    assert "secret-xyz" not in exc.message and "secret-xyz" not in repr(exc)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (aiohttp.ConnectionTimeoutError("connect"), ConnectTimeout),
        (aiohttp.SocketTimeoutError("read"), ReadTimeout),
        (aiohttp.ServerTimeoutError("either"), ReadTimeout),
        (TimeoutError(), ReadTimeout),  # the total cap
        (aiohttp.InvalidUrlClientError("nowhere"), ConnectError),
        (aiohttp.NonHttpUrlClientError("ftp://x"), ConnectError),
        (aiohttp.ServerDisconnectedError(), ReadError),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), ReadError),
        (aiohttp.ClientConnectionResetError("closing transport"), ReadError),
        (aiohttp.ClientPayloadError("cut"), ReadError),
        (aiohttp.ClientConnectionError("other"), ReadError),
    ],
)
def test_classify(exc: BaseException, kind: type[TransportError]) -> None:
    got = classify(exc)
    assert type(got) is kind and got.sent is kind.sent
    assert type(exc).__name__ in got.message


# ----------------------------------------------------- through both provider clients


def mg_provider(url: str, timeout: str) -> Provider:
    return musicgpt.create(
        {
            "MUSICGPT_API_KEY": MG_KEY,
            "MUSICGPT_BASE_URL": url,
            "MUSICGPT_CONNECT_TIMEOUT": timeout,
            "MUSICGPT_READ_TIMEOUT": timeout,
            "MUSICGPT_POOL_TIMEOUT": timeout,
            "MUSICGPT_WRITE_TIMEOUT": timeout,
        }
    )


def tp_provider(url: str, timeout: str) -> Provider:
    return tempolor.create(
        {
            "USEAPI_TOKEN": UA_TOKEN,
            "USEAPI_BASE_URL": url,
            "USEAPI_CONNECT_TIMEOUT": timeout,
            "USEAPI_READ_TIMEOUT": timeout,
            "USEAPI_POOL_TIMEOUT": timeout,
            "USEAPI_WRITE_TIMEOUT": timeout,
        }
    )


PROVIDERS = {
    "musicgpt": (mg_provider, SubmitRequest(model=MG_MODELS[0], prompt="a song"), MG_KEY),
    "tempolor": (tp_provider, SubmitRequest(model=TP_MODELS[0], prompt="a song"), UA_TOKEN),
}


async def submit(name: str, url: str, timeout: str = "5") -> BaseException:
    """The error ``name``'s submit raises against ``url`` (``timeout``: each of the
    client's timeouts, short only where the test waits for one to fire)."""
    make, req, _ = PROVIDERS[name]
    provider = make(url, timeout)
    try:
        await provider.start(req)
    except Exception as exc:  # the test asserts on it
        return exc
    finally:
        await provider.aclose()
    raise AssertionError("submit succeeded")


def check(exc: BaseException, name: str, kind: type[Exception], sent: bool) -> None:
    assert type(exc) is kind, repr(exc)
    assert exc.sent is sent  # type: ignore[attr-defined]
    secret = PROVIDERS[name][2]
    assert secret not in str(exc) and secret not in repr(exc.args)
    assert exc.__cause__ is None


@pytest.mark.parametrize("name", sorted(PROVIDERS))
async def test_provider_connect_failures_are_not_sent(name: str) -> None:
    check(await submit(name, f"http://127.0.0.1:{free_port()}"), name, UpstreamError, False)
    if sys.platform == "linux":
        with full_backlog() as url:
            check(await submit(name, url, timeout="0.3"), name, UpstreamTimeout, False)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        pytest.param(never_answer, UpstreamTimeout, id="read-timeout"),
        pytest.param(answer_then_close(b""), UpstreamError, id="disconnected"),
        pytest.param(
            answer_then_close(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{"),
            UpstreamError,
            id="cut",
        ),
        pytest.param(reset, UpstreamError, id="reset"),
        pytest.param(answer(b"garbage\r\n\r\n"), UpstreamError, id="malformed"),
    ],
)
async def test_provider_failures_after_sending_are_sent(
    name: str, reply: Callable[[asyncio.StreamWriter], Awaitable[None]], kind: type[Exception]
) -> None:
    async with raw_server(reply) as srv:
        exc = await submit(name, srv.url, timeout="0.3" if reply is never_answer else "5")
    check(exc, name, kind, True)
    assert exc.native_status is None  # type: ignore[attr-defined]
    assert len(srv.requests) == 1 and srv.requests[0].startswith(b"POST ")


@pytest.mark.parametrize("name", sorted(PROVIDERS))
async def test_provider_rate_limit_reads_retry_after(name: str) -> None:
    reply = answer(
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 12\r\nContent-Length: 2\r\n\r\n{}"
    )
    async with raw_server(reply) as srv:
        exc = await submit(name, srv.url)
    assert type(exc) is UpstreamRateLimited and exc.retry_after == 12
