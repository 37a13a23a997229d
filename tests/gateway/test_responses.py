"""``JSONBytes``: the hot routes' pre-encoded answers, sent as Litestar sends any answer."""

from __future__ import annotations

import httpx
from litestar import Litestar, Response, get
from litestar.datastructures import Cookie, ResponseHeader

from gateway.api.responses import JSONBytes

BODY = b'{"id":"mus_1","status":"completed"}'


@get("/plain", sync_to_thread=False)
def plain() -> JSONBytes:
    return JSONBytes(BODY)


@get("/stale", sync_to_thread=False)
def stale() -> JSONBytes:
    return JSONBytes(BODY, status_code=202, headers={"X-Gateway-Stale": "true"})


@get(
    "/route-headers",
    sync_to_thread=False,
    response_headers=[ResponseHeader(name="X-Route", value="1")],
    response_cookies=[Cookie(key="c", value="v")],
)
def route_headers() -> JSONBytes:
    return JSONBytes(BODY, headers={"X-Own": "2"})


async def call(path: str, method: str = "GET") -> httpx.Response:
    app = Litestar([plain, stale, route_headers])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path)


def test_is_a_litestar_response() -> None:
    assert isinstance(JSONBytes(BODY), Response)


async def test_body_is_sent_unchanged_as_json() -> None:
    r = await call("/plain")
    assert r.status_code == 200 and r.content == BODY
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-length"] == str(len(BODY))


async def test_status_and_headers() -> None:
    r = await call("/stale")
    assert r.status_code == 202 and r.content == BODY
    assert r.headers["x-gateway-stale"] == "true"
    assert r.headers["content-type"] == "application/json"


async def test_route_level_headers_and_cookies_still_apply() -> None:
    r = await call("/route-headers")
    assert r.status_code == 200 and r.content == BODY
    assert r.headers["x-route"] == "1" and r.headers["x-own"] == "2"
    assert r.cookies["c"] == "v"
