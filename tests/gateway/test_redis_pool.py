"""``connect``'s pool: redis-py's ``BlockingConnectionPool``, bounded and self-healing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.store.redis_pool import GatewayPool, connect
from tests.support.waiting import eventually

HANG = 10.0  # seconds: a hang detector for what should take microseconds


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[tuple[BlockingConnectionPool, Redis]]:
    pool, redis = connect(redis_url, timeout=0.5, max_connections=2)  # as the app makes it
    yield pool, redis
    await redis.aclose()
    await pool.aclose()


@pytest.fixture
def pool(client: tuple[BlockingConnectionPool, Redis]) -> BlockingConnectionPool:
    return client[0]


@pytest.fixture
async def patient_pool(redis_url: str) -> AsyncIterator[GatewayPool]:
    """The app's pool, but a waiter gives up only after 30 s (not the app's 0.5 s): for
    tests where a waiter must still be waiting when the test releases a connection."""
    pool, redis = connect(redis_url, timeout=30, max_connections=2)
    yield pool
    await redis.aclose()
    await pool.aclose()


async def _waiting(pool: GatewayPool) -> None:
    """Until someone waits for a connection of ``pool``."""
    await eventually(lambda: bool(pool._condition._waiters), what="a waiter on the pool")


async def test_short_path_reuses_one_idle_connection(
    client: tuple[GatewayPool, Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, redis = client
    await redis.ping()
    first = pool._available_connections[0]

    async def not_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("the short path should have served this")

    monkeypatch.setattr(BlockingConnectionPool, "get_connection", not_here)
    monkeypatch.setattr(BlockingConnectionPool, "release", not_here)
    for _ in range(5):
        assert await redis.ping()
    assert pool._available_connections == [first] and not pool._in_use_connections


async def test_exhausted_pool_waits_and_is_woken_by_a_release(patient_pool: GatewayPool) -> None:
    pool = patient_pool
    a = await pool.get_connection()
    b = await pool.get_connection()
    waiter = asyncio.create_task(pool.get_connection())
    await _waiting(pool)
    assert not waiter.done()  # both taken: it waits, as the blocking pool does
    await pool.release(a)
    got = await asyncio.wait_for(waiter, HANG)
    assert got is a
    await pool.release(got)
    await pool.release(b)
    again = [await pool.get_connection(), await pool.get_connection()]  # both free again
    for connection in again:
        await pool.release(connection)


async def test_short_path_stands_aside_while_anyone_waits(
    patient_pool: GatewayPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle connection seen while someone waits (the moment after a release) is left
    to the pool's own code, which hands it out under its lock."""
    pool = patient_pool
    a = await pool.get_connection()
    b = await pool.get_connection()
    waiter = asyncio.create_task(pool.get_connection())
    await _waiting(pool)
    pool._in_use_connections.remove(a)  # released, the waiter not yet woken
    pool._available_connections.append(a)
    through_pool = []
    original = BlockingConnectionPool.get_connection

    async def spy(self: BlockingConnectionPool, *args: object, **kwargs: object) -> object:
        through_pool.append(1)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(BlockingConnectionPool, "get_connection", spy)
    got = await asyncio.wait_for(pool.get_connection(), HANG)
    assert through_pool == [1] and got is a
    await pool.release(got)
    assert await asyncio.wait_for(waiter, HANG) is a
    await pool.release(a)
    await pool.release(b)


async def test_exhausted_pool_times_out_like_the_blocking_pool(pool: GatewayPool) -> None:
    held = [await pool.get_connection(), await pool.get_connection()]
    with pytest.raises(RedisConnectionError, match="No connection available"):
        await pool.get_connection()
    for connection in held:
        await pool.release(connection)


async def test_closed_connection_is_replaced(
    client: tuple[BlockingConnectionPool, Redis], redis_url: str
) -> None:
    _, redis = client
    name = "gw-pool-test-victim"
    await redis.client_setname(name)
    admin = Redis.from_url(redis_url)
    try:
        clients = await admin.client_list()
        victim = next(c for c in clients if c["name"] == name)
        await admin.client_kill_filter(_id=victim["id"])

        async def gone() -> bool:
            return all(c["name"] != name for c in await admin.client_list())

        await eventually(gone, what="the server dropped the connection")
        assert await redis.ping()  # the dead socket is noticed and a new one made
        assert await redis.client_getname() != name
    finally:
        await admin.aclose()
