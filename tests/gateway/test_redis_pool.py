"""``connect``'s pool: redis-py's ``BlockingConnectionPool``, bounded and self-healing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.store.redis_pool import connect


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[tuple[BlockingConnectionPool, Redis]]:
    pool, redis = connect(redis_url, timeout=0.5, max_connections=2)  # as the app makes it
    yield pool, redis
    await redis.aclose()
    await pool.aclose()


@pytest.fixture
def pool(client: tuple[BlockingConnectionPool, Redis]) -> BlockingConnectionPool:
    return client[0]


def test_is_redis_pys_own_blocking_pool(pool: BlockingConnectionPool) -> None:
    assert type(pool) is BlockingConnectionPool
    assert pool.max_connections == 2


async def test_exhausted_pool_waits_and_is_woken_by_a_release(
    pool: BlockingConnectionPool,
) -> None:
    a = await pool.get_connection()
    b = await pool.get_connection()
    waiter = asyncio.create_task(pool.get_connection())
    for _ in range(10):  # let it run up to its wait
        await asyncio.sleep(0)
    assert not waiter.done()  # both taken: it waits
    await pool.release(a)
    got = await asyncio.wait_for(waiter, 0.3)
    assert got is a
    await pool.release(got)
    await pool.release(b)
    again = [await pool.get_connection(), await pool.get_connection()]  # both free again
    for connection in again:
        await pool.release(connection)


async def test_exhausted_pool_times_out(pool: BlockingConnectionPool) -> None:
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
        assert await redis.ping()  # the dead socket is noticed and a new one made
        assert await redis.client_getname() != name
    finally:
        await admin.aclose()
