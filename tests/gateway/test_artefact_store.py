"""The artefact store against a folder and against a real S3-protocol server (rclone).

Every test runs on both backends: streaming round trips, range reads, deletion by job,
download URLs fetched with plain httpx (the gateway's signed route over real HTTP for a
folder, S3's presigned URL for S3), and copies from a local HTTP server through the URL
check (trusted provider host, SSRF guard for any other host).
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from gateway.notify.ssrf import UnsafeURL, check_webhook_url
from gateway.store.artefacts import (
    ArtefactFetchError,
    ArtefactNotFound,
    ArtefactStore,
    ArtefactTooLarge,
    artefact_key,
    trusting,
)
from gateway.store.signing import UrlSigner
from tests.support.files import FileServer
from tests.support.servers import serve

SECRET = "artefact-test-secret-0001"
guard = functools.partial(check_webhook_url, allow_private=False)


async def chunked(
    data: bytes, sizes: tuple[int, ...] = (1, 7_000, 65_536, 300_001)
) -> AsyncIterator[bytes]:
    """``data`` in chunks of uneven sizes (cycling through ``sizes``)."""
    at, i = 0, 0
    while at < len(data):
        step = sizes[i % len(sizes)]
        yield data[at : at + step]
        at, i = at + step, i + 1


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


@pytest.fixture(params=["file", "s3"])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "file":
        return {"GATEWAY_ARTEFACT_STORE": f"file://{tmp_path}/store"}
    s3 = request.getfixturevalue("s3_server")
    return {**s3.env(), "GATEWAY_ARTEFACT_STORE": f"s3://artefacts/t{secrets.token_hex(4)}"}


@pytest.fixture
def settings(make_settings: Callable[..., Settings], store_env: dict[str, str]) -> Settings:
    return make_settings(GATEWAY_ARTEFACT_SECRET=SECRET, **store_env)


@pytest.fixture
async def artefacts(settings: Settings) -> AsyncIterator[ArtefactStore]:
    async with httpx.AsyncClient() as http:
        yield ArtefactStore.from_settings(settings, signer=UrlSigner(SECRET), http=http)


@pytest.fixture(scope="module")
def files() -> Iterator[FileServer]:
    app = FileServer()
    with serve(app) as base:
        app.base = base
        yield app


async def test_streaming_round_trip_of_a_few_megabytes(artefacts: ArtefactStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 12_345)
    key = artefact_key("mus_rt", 0, "mp3")
    stored = await artefacts.put(key, chunked(data), "audio/mpeg")
    assert (stored.key, stored.size) == (key, len(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    info = await artefacts.head(key)
    assert info is not None and (info.size, info.content_type) == (len(data), "audio/mpeg")
    opened = await artefacts.open(key)
    assert (opened.size, opened.start, opened.end) == (len(data), 0, len(data))
    assert hashlib.sha256(await read_all(opened.chunks)).hexdigest() == stored.sha256
    assert await artefacts.exists(key)


async def test_an_empty_stream_stores_an_empty_object(artefacts: ArtefactStore) -> None:
    stored = await artefacts.put("mus_empty/0.wav", chunked(b""), "audio/wav")
    assert stored.size == 0
    info = await artefacts.head("mus_empty/0.wav")
    assert info is not None and info.size == 0


async def test_range_reads(artefacts: ArtefactStore) -> None:
    data = bytes(range(256)) * 40
    await artefacts.put("mus_rng/0.wav", chunked(data), "audio/wav")
    for start, end in ((0, 1), (10, 20), (1000, len(data)), (len(data) - 1, len(data))):
        opened = await artefacts.open("mus_rng/0.wav", start, end)
        assert (opened.start, opened.end, opened.size) == (start, end, len(data))
        assert await read_all(opened.chunks) == data[start:end]
    tail = await artefacts.open("mus_rng/0.wav", start=9000)
    assert await read_all(tail.chunks) == data[9000:]
    assert tail.content_type == "audio/wav"


async def test_missing_objects(artefacts: ArtefactStore) -> None:
    assert await artefacts.head("mus_none/0.mp3") is None
    assert not await artefacts.exists("mus_none/0.mp3")
    with pytest.raises(ArtefactNotFound):
        await artefacts.open("mus_none/0.mp3")
    await artefacts.delete("mus_none/0.mp3")  # no error


async def test_delete_and_delete_prefix_remove_one_job_only(artefacts: ArtefactStore) -> None:
    for key in ("mus_1/0.mp3", "mus_1/1.wav", "mus_10/0.mp3", "mus_2/0.mp3"):
        await artefacts.put(key, chunked(b"x" * 100), "audio/mpeg")
    await artefacts.delete("mus_2/0.mp3")
    assert not await artefacts.exists("mus_2/0.mp3")
    assert await artefacts.delete_prefix("mus_1") == 2
    assert not await artefacts.exists("mus_1/0.mp3")
    assert not await artefacts.exists("mus_1/1.wav")
    assert await artefacts.exists("mus_10/0.mp3")
    assert await artefacts.delete_prefix("mus_1") == 0


@pytest.mark.parametrize("key", ["../x.mp3", "/abs.mp3", "a//b.mp3", ".hidden/x", "a/../b", ""])
async def test_unsafe_keys_are_refused(artefacts: ArtefactStore, key: str) -> None:
    with pytest.raises(ValueError):
        await artefacts.put(key, chunked(b"x"), "audio/mpeg")


async def test_download_url_is_fetchable_with_plain_httpx(
    artefacts: ArtefactStore, settings: Settings
) -> None:
    data = os.urandom(300_000)
    await artefacts.put("mus_url/0.mp3", chunked(data), "audio/mpeg")
    if artefacts.presigned:
        url = await artefacts.url("mus_url/0.mp3", ttl=120)
        assert "X-Amz-Signature=" in url
        await _fetch_and_check(url, data)
    else:  # the gateway's own signed route, over real HTTP, no API key
        with serve(create_app(settings)) as base:
            url = await artefacts.url("mus_url/0.mp3", base_url=base, ttl=120)
            assert url.startswith(f"{base}/v1/artefacts/mus_url/0.mp3?exp=")
            await _fetch_and_check(url, data)


async def _fetch_and_check(url: str, data: bytes) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.content == data
    assert response.headers["content-type"].startswith("audio/mpeg")


async def test_put_url_copies_from_the_trusted_provider_host(
    artefacts: ArtefactStore, files: FileServer
) -> None:
    data = os.urandom(2 * 1024 * 1024 + 3)
    url = files.add(data, "audio/wav")
    check = trusting([files.base + "/api/v1"], guard)  # the provider's base URL
    stored = await artefacts.put_url("mus_copy/0.wav", url, check=check)
    assert (stored.size, stored.content_type) == (len(data), "audio/wav")
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    opened = await artefacts.open("mus_copy/0.wav")
    assert await read_all(opened.chunks) == data


async def test_put_url_checks_every_redirect(artefacts: ArtefactStore, files: FileServer) -> None:
    seen: list[str] = []

    async def check(url: str) -> None:
        seen.append(url)

    target = files.add(b"abc" * 1000, "audio/mpeg")
    hop = files.redirect(target)
    stored = await artefacts.put_url("mus_hop/0.mp3", hop, "audio/mpeg", check=check)
    assert stored.size == 3000
    assert seen == [hop, target]


async def test_put_url_refuses_a_private_address_on_an_untrusted_host(
    artefacts: ArtefactStore, files: FileServer
) -> None:
    check = trusting(["https://api.provider.example"], guard)
    private = files.add(b"secret", "audio/mpeg").replace("http://", "https://")
    before = len(files.requests)
    with pytest.raises(UnsafeURL, match="loopback"):
        await artefacts.put_url("mus_ssrf/0.mp3", private, check=check)
    # a trusted host redirecting to a private address: refused at the hop
    trusted = trusting([files.base], guard)
    hop = files.redirect("https://10.1.2.3/internal.mp3")
    with pytest.raises(UnsafeURL, match="private"):
        await artefacts.put_url("mus_ssrf/1.mp3", hop, check=trusted)
    assert len(files.requests) == before + 1  # only the trusted hop was requested
    assert not await artefacts.exists("mus_ssrf/0.mp3")
    assert not await artefacts.exists("mus_ssrf/1.mp3")


async def test_put_url_failures(artefacts: ArtefactStore, files: FileServer) -> None:
    check = trusting([files.base], guard)
    with pytest.raises(ArtefactFetchError, match="404"):
        await artefacts.put_url("mus_bad/0.mp3", files.base + "/f/missing", check=check)
    big = files.add(b"y" * 100_000, "audio/mpeg")
    with pytest.raises(ArtefactTooLarge):
        await artefacts.put_url("mus_bad/1.mp3", big, check=check, max_bytes=50_000)
    assert not await artefacts.exists("mus_bad/1.mp3")


def test_store_settings() -> None:
    assert Settings.from_env({}).artefact_store is None
    assert Settings.from_env({"GATEWAY_ARTEFACT_STORE": "file:///srv/a/"}).artefact_store == (
        "file:///srv/a"
    )
    assert Settings.from_env({"GATEWAY_ARTEFACT_STORE": "S3://bucket/p/"}).artefact_store == (
        "s3://bucket/p"
    )
    for bad in ("relative/dir", "file://relative", "s3://", "gs://bucket"):
        with pytest.raises(ValueError, match="GATEWAY_ARTEFACT_STORE"):
            Settings.from_env({"GATEWAY_ARTEFACT_STORE": bad})
    assert Settings.from_env({}).artefact_url_ttl == 3600
    with pytest.raises(ValueError, match="GATEWAY_ARTEFACT_URL_TTL"):
        Settings.from_env({"GATEWAY_ARTEFACT_URL_TTL": "0"})
    env = {"AWS_SECRET_ACCESS_KEY": "aws-secret-value", "GATEWAY_ARTEFACT_SECRET": "signing-key"}
    assert set(Settings.from_env(env).secrets()) == set(env.values())


async def test_default_store_is_a_folder_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"GATEWAY_DATA_DIR": f"{tmp_path}/data"})
    store = ArtefactStore.from_settings(settings, signer=UrlSigner(SECRET))
    assert not store.presigned
    await store.put("mus_d/0.mp3", chunked(b"abc"), "audio/mpeg")
    assert (tmp_path / "data" / "artefacts" / "mus_d" / "0.mp3").read_bytes() == b"abc"
    with pytest.raises(ValueError, match="GATEWAY_PUBLIC_URL"):
        await store.url("mus_d/0.mp3")
