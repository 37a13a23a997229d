"""``JSONBytes``: the hot routes' pre-encoded answers, by their own path or Litestar's."""

from __future__ import annotations

import httpx
from litestar import Litestar, MediaType, Response, get
from litestar.datastructures import Cookie, ResponseHeader

from gateway.api.responses import JSONBytes, _Answer

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
    return JSONBytes(BODY)


async def call(path: str, method: str = "GET") -> httpx.Response:
    app = Litestar([plain, stale, route_headers])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path)


def test_has_every_attribute_of_a_litestar_response() -> None:
    """``JSONBytes`` sets ``Response``'s attributes itself; the framework's path (and its
    next version) must find all of them."""
    mine = JSONBytes(BODY, headers={"X-A": "1"})
    theirs = Response(BODY, status_code=200, media_type=MediaType.JSON, headers={"X-A": "1"})
    slots = [name for cls in Response.__mro__ for name in getattr(cls, "__slots__", ())]
    assert slots
    for name in slots:
        assert getattr(mine, name) == getattr(theirs, name), name


class _Request:
    method = "GET"


def test_own_path_sends_encoded_headers_once() -> None:
    answer = JSONBytes(BODY, headers={"X-Gateway-Stale": "true"}).to_asgi_response(
        None,
        _Request(),
        headers={},
        cookies=[],  # type: ignore[arg-type]
    )
    assert isinstance(answer, _Answer)
    assert answer.headers == [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"x-gateway-stale", b"true"),
    ]
    assert answer.body == BODY and answer.status == 200


async def test_answers_match_litestars_own() -> None:
    r = await call("/plain")
    assert r.status_code == 200 and r.content == BODY
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-length"] == str(len(BODY))

    r = await call("/stale")
    assert r.status_code == 202 and r.content == BODY
    assert r.headers["x-gateway-stale"] == "true"


async def test_route_level_headers_and_cookies_go_the_frameworks_way() -> None:
    r = await call("/route-headers")
    assert r.status_code == 200 and r.content == BODY
    assert r.headers["x-route"] == "1"
    assert r.cookies["c"] == "v"
