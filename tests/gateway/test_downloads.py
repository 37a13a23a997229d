"""The signed download route, through the app: ``GET``/``HEAD /v1/artefacts/{key}``.

No API key is sent anywhere here: the signed URL is the authorization.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.api.app import create_app
from gateway.api.downloads import parse_range
from gateway.infra.errors import RangeNotSatisfiable
from gateway.infra.settings import Settings
from gateway.store.artefacts import ArtefactStore
from tests.conftest import app_client

DATA = os.urandom(10_000)
KEY = "mus_dl/0.mp3"


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data[:4000]
    yield data[4000:]


@pytest.fixture
async def client(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings())  # no GATEWAY_ARTEFACT_SECRET: the key comes from Redis
    async with app_client(app, key=None) as client:
        await store(client).put(KEY, _chunks(DATA), "audio/mpeg")
        yield client


def store(client: httpx.AsyncClient) -> ArtefactStore:
    return client.app.state.artefacts  # type: ignore[attr-defined]


async def signed(client: httpx.AsyncClient, key: str = KEY) -> str:
    return await store(client).url(key, base_url=str(client.base_url))


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and body["status_code"] == status
    assert body["request_id"] == response.headers["x-request-id"]


async def test_get_whole_artefact_without_api_key(client: httpx.AsyncClient) -> None:
    url = await signed(client)
    assert url.startswith("http://gateway.test/v1/artefacts/mus_dl/0.mp3?exp=")
    response = await client.get(url)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["accept-ranges"] == "bytes"
    assert "content-range" not in response.headers


async def test_head_answers_the_headers_only(client: httpx.AsyncClient) -> None:
    url = await signed(client)
    response = await client.head(url)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["content-type"] == "audio/mpeg"
    partial = await client.head(url, headers={"Range": "bytes=0-99"})
    assert partial.status_code == 206
    assert partial.headers["content-range"] == f"bytes 0-99/{len(DATA)}"
    assert partial.headers["content-length"] == "100"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=100-199", 100, 200),
        ("bytes=9000-", 9000, 10_000),
        ("bytes=-500", 9500, 10_000),
        ("bytes=9990-20000", 9990, 10_000),  # clamped to the end
        ("bytes=-20000", 0, 10_000),  # more than the whole: all of it
    ],
)
async def test_range_gives_206(
    client: httpx.AsyncClient, header: str, start: int, end: int
) -> None:
    response = await client.get(await signed(client), headers={"Range": header})
    assert response.status_code == 206, response.text
    assert response.content == DATA[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert response.headers["content-length"] == str(end - start)
    assert response.headers["content-type"] == "audio/mpeg"


@pytest.mark.parametrize("header", ["bytes=10000-", "bytes=20000-20010", "bytes=-0"])
async def test_unsatisfiable_range_gives_416(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get(await signed(client), headers={"Range": header})
    assert_error(response, 416, "range_not_satisfiable")
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-1", "bytes=abc", "bytes=5-1"])
async def test_ignored_range_gives_the_whole_artefact(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await client.get(await signed(client), headers={"Range": header})
    assert response.status_code == 200
    assert response.content == DATA


async def test_tampered_urls_are_403(client: httpx.AsyncClient) -> None:
    url = await signed(client)
    query = parse_qs(urlsplit(url).query)
    exp, sig = query["exp"][0], query["sig"][0]
    base = "/v1/artefacts/"
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    cases = [
        f"{base}{KEY}?exp={exp}&sig={flipped}",  # signature changed
        f"{base}{KEY}?exp={int(exp) + 3600}&sig={sig}",  # expiry pushed back
        f"{base}mus_dl/1.mp3?exp={exp}&sig={sig}",  # another key
        f"{base}{KEY}",  # not signed
        f"{base}{KEY}?exp=soon&sig={sig}",
        f"{base}{KEY}?exp={exp}&sig=%C3%A9",  # not hex
    ]
    for path in cases:
        assert_error(await client.get(path), 403, "invalid_signature")
    head = await client.head(cases[0])
    assert head.status_code == 403


async def test_expired_url_is_403(client: httpx.AsyncClient) -> None:
    past = int(time.time()) - 60
    query = await store(client).signer.query_until(KEY, past)
    response = await client.get(f"/v1/artefacts/{KEY}?{query}")
    assert_error(response, 403, "url_expired")
    assert "fresh" in response.json()["description"]


async def test_fresh_url_after_expiry(client: httpx.AsyncClient) -> None:
    """A job read after expiry is rendered with a new URL: just ``url()`` again."""
    signer = store(client).signer
    real = signer.clock
    signer.clock = lambda: real() - 7200  # a URL issued two hours ago, valid one hour
    try:
        old = await signed(client)
    finally:
        signer.clock = real
    assert_error(await client.get(old), 403, "url_expired")
    assert (await client.get(await signed(client))).status_code == 200


async def test_unknown_artefact_with_valid_signature_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(await signed(client, "mus_dl/9.mp3"))
    assert_error(response, 404, "not_found")


async def test_the_signing_key_is_shared_through_redis(
    make_settings: Callable[..., Settings], client: httpx.AsyncClient
) -> None:
    """A second replica on the same Redis prefix and store checks the first's URLs."""
    first: Settings = client.app.state.jobs.settings  # type: ignore[attr-defined]
    env = dict(first.env)
    other = create_app(Settings.from_env(env))
    async with app_client(other, key=None) as second:
        response = await second.get(await signed(client))
        assert response.status_code == 200
        assert response.content == DATA


async def test_public_url_is_the_base(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(GATEWAY_PUBLIC_URL="https://music.example.com/"))
    async with app_client(app, key=None) as client:
        await store(client).put("mus_pub/0.ogg", _chunks(b"o" * 10), "audio/ogg")
        url = await store(client).url("mus_pub/0.ogg", base_url="http://ignored")
        assert url.startswith("https://music.example.com/v1/artefacts/mus_pub/0.ogg?exp=")
        response = await client.get(url.removeprefix("https://music.example.com"))
        assert response.headers["content-type"] == "audio/ogg"


def test_parse_range() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-4", 10) == (2, 5)
    assert parse_range("bytes = 2 - 4", 10) == (2, 5)
    assert parse_range("bytes=-3", 10) == (7, 10)
    assert parse_range("bytes=-", 10) is None
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-1", 0)
