"""``UpstreamHTTP.stream`` / ``Upstream.stream``: an answer whose body stays on the wire,
against raw sockets on loopback (``test_http.raw_server``): chunks as sent, the
connection back in the pool only when the body was read to the end, a non-2xx answer
read bounded and raised through the one status mapping, and every failure while the
body streams a ``sent`` error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from providers.base import (
    ProviderError,
    UpstreamError,
    UpstreamInsufficientCredits,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)
from providers.kit import StreamedAnswer, Timeouts, Upstream, UpstreamHTTP
from providers.kit.http import ReadError, ReadTimeout
from tests.providers.test_http import answer, answer_then_close, raw_server
from tests.support.servers import free_port

FAST = Timeouts(connect=0.3, read=0.3, write=0.3, pool=0.3)
SECRET = "sk-stream-secret-5e7a01"


def ok(body: bytes, *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (extra, len(body), body)


def chunked(*parts: bytes, end: bool = True) -> bytes:
    out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    out += b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    return out + (b"0\r\n\r\n" if end else b"")


@pytest.fixture
async def http() -> AsyncIterator[list[UpstreamHTTP]]:
    made: list[UpstreamHTTP] = []
    yield made
    for h in made:
        await h.aclose()


def make(made: list[UpstreamHTTP], url: str) -> UpstreamHTTP:
    h = UpstreamHTTP(url, timeouts=FAST, headers={"Authorization": SECRET})
    made.append(h)
    return h


def api(h: UpstreamHTTP, **kw: object) -> Upstream:
    return Upstream(provider="kit", label="Kit", http=h, secret=SECRET, **kw)  # type: ignore[arg-type]


async def test_a_streamed_200_reads_as_sent_and_reuses_the_connection(
    http: list[UpstreamHTTP],
) -> None:
    body = bytes(range(256)) * 1024
    async with raw_server(answer(ok(body, b"song-id: s-1"))) as srv:
        h = make(http, srv.url)
        for _ in range(2):
            got = await h.stream("POST", "/music", content=b"{}", params={"f": "x"})
            assert isinstance(got, StreamedAnswer) and got.ok and got.status == 200
            assert got.headers["song-id"] == "s-1" and got.length == len(body)
            parts = [c async for c in got]
            assert b"".join(parts) == body and max(map(len, parts)) <= 64 * 1024
            await got.aclose()  # idempotent after the end
        assert srv.connections == 1  # read to the end: back in the pool
        assert srv.requests[0].startswith(b"POST /api/music?f=x HTTP/1.1")


async def test_chunked_or_encoded_answers_have_no_length(http: list[UpstreamHTTP]) -> None:
    async with raw_server(answer(chunked(b"ab", b"cd"))) as srv:
        got = await make(http, srv.url).stream("GET", "/x")
        assert got.length is None and b"".join([c async for c in got]) == b"abcd"
    gz = ok(b"\x1f\x8b" + bytes(18), b"Content-Encoding: gzip")
    async with raw_server(answer(gz)) as srv:
        got = await make(http, srv.url).stream("GET", "/x")
        assert got.length is None
        await got.aclose()


async def test_closing_an_unread_answer_closes_its_connection(http: list[UpstreamHTTP]) -> None:
    async with raw_server(answer(ok(b"x" * 200_000))) as srv:
        h = make(http, srv.url)
        got = await h.stream("GET", "/x")
        await got.aclose()
        assert [c async for c in got] == []  # closed: nothing more
        again = await h.stream("GET", "/x")
        assert len(await again.read(10)) == 10
        assert srv.connections == 2  # the half-read connection was not reused


async def test_a_body_cut_short_or_stalled_is_a_sent_error(http: list[UpstreamHTTP]) -> None:
    async with raw_server(answer_then_close(ok(b"x" * 1000)[:-900])) as srv:
        got = await make(http, srv.url).stream("GET", "/x")
        with pytest.raises(ReadError) as cut:
            _ = [c async for c in got]
        assert cut.value.sent
    async with raw_server(answer(chunked(b"partial", end=False))) as srv:  # then silence
        got = await make(http, srv.url).stream("GET", "/x")
        with pytest.raises(ReadTimeout) as stalled:
            _ = [c async for c in got]
        assert stalled.value.sent
    async with raw_server(answer(chunked(b"partial", end=False))) as srv:
        stream = await api(make(http, srv.url)).stream("op", "GET", "/x")
        assert await anext(stream) == b"partial"
        with pytest.raises(UpstreamTimeout) as caught:
            await anext(stream)
        assert caught.value.sent and "op body call timed out" in caught.value.message
    async with raw_server(answer_then_close(ok(b"x" * 1000)[:-900])) as srv:
        stream = await api(make(http, srv.url)).stream("op", "GET", "/x")
        with pytest.raises(UpstreamError) as broken:
            _ = [c async for c in stream]
        assert broken.value.sent and type(broken.value) is UpstreamError


async def test_a_non_2xx_answer_is_read_bounded_and_mapped(http: list[UpstreamHTTP]) -> None:
    err = b'{"message": "bad input %s"}' % SECRET.encode()
    reply = b"HTTP/1.1 422 Unprocessable\r\nContent-Length: %d\r\n\r\n%s" % (len(err), err)
    async with raw_server(answer(reply)) as srv:
        with pytest.raises(UpstreamRejected) as caught:
            await api(make(http, srv.url)).stream("create", "POST", "/x")
    assert caught.value.message == "Kit create answered 422: bad input [redacted]"
    huge = b"HTTP/1.1 500 Oops\r\nContent-Length: 5000000\r\n\r\n" + b"e" * 5_000_000
    async with raw_server(answer(huge)) as srv:
        with pytest.raises(UpstreamError) as big:
            await asyncio.wait_for(api(make(http, srv.url)).stream("op", "GET", "/x"), 5)
    assert big.value.native_status == 500 and big.value.message == "Kit op answered 500: Oops"


async def test_error_class_and_the_default_rate_limit_wait(http: list[UpstreamHTTP]) -> None:
    def pick(status: int, body: bytes) -> type[ProviderError] | None:
        return UpstreamInsufficientCredits if b"quota" in body else None

    quota = b"HTTP/1.1 401 No\r\nContent-Length: 5\r\n\r\nquota"
    async with raw_server(answer(quota)) as srv:
        with pytest.raises(UpstreamInsufficientCredits) as caught:
            await api(make(http, srv.url), error_class=pick).stream("op", "GET", "/x")
        assert caught.value.native_status == 401 and caught.value.retry_after is None
    busy = b"HTTP/1.1 429 Busy\r\nContent-Length: 0\r\n\r\n"
    async with raw_server(answer(busy)) as srv:
        with pytest.raises(UpstreamRateLimited) as limited:
            await api(make(http, srv.url), rate_limit_retry=4.0).stream("op", "GET", "/x")
        assert limited.value.retry_after == 4.0


async def test_nothing_leaves_when_it_cannot(http: list[UpstreamHTTP]) -> None:
    h = make(http, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(UpstreamError) as refused:
        await api(h).stream("op", "GET", "/x")
    assert refused.value.sent is False
    with pytest.raises(ProviderError) as unset:
        await Upstream(provider="kit", label="Kit", http=h, secret=None).stream("op", "GET", "/")
    assert unset.value.sent is False
