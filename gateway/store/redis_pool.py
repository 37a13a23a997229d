"""The gateway's Redis client: one server over redis-py's ``BlockingConnectionPool``
(``connect``), or a Redis Cluster over redis-py's cluster client (``connect_cluster``).

Usage::

    pool, redis = connect("redis://127.0.0.1:6379/0", timeout=2.0, max_connections=256)
    cluster = connect_cluster("redis://10.0.0.5:7000", timeout=2.0, max_connections=256)
    redis, close = open_client(url, cluster=settings.redis_cluster, timeout=2.0,
                               max_connections=256)      # either; ``await close()`` after

Both clients offer the same command interface (``RedisClient``), so one code path serves
both: every script's keys share one hash tag (one slot), and steps over several slots
go through ``in_order`` (one pipelined round trip on one server, one by one on a
cluster; see ``gateway/store/schedule.py``).

The pool is redis-py's own, configured through its public options only: every get and
release goes through its condition lock, timeout and health check. (A short path that
handed out idle connections by touching the pool's private lists saved about 17 µs per
command on the benchmark machine; it relied on redis-py internals and is gone.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

#: What the store, the limits and the outbox take: a single server or a cluster.
RedisClient = Redis | RedisCluster


def connect(
    url: str, *, timeout: float, max_connections: int
) -> tuple[BlockingConnectionPool, Redis]:
    """The gateway's Redis client and its pool (close both).

    Bounded outages: one immediate retry on a connection error only, never on a timeout.
    A pooled connection that died with the server (restart, failover) is replaced on the
    spot instead of costing a 503; a refused connection still fails in milliseconds; a
    frozen server costs one ``timeout`` per command, not the nested, jittered retries (up
    to 10) that redis-py's ``Redis()`` defaults allow. The pool reconnects by itself once
    Redis answers again. A blocking pool: a burst beyond ``max_connections`` waits (up to
    ``timeout``) for a free connection instead of failing at once."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
    )
    return pool, Redis(connection_pool=pool)


def connect_cluster(url: str, *, timeout: float, max_connections: int) -> RedisCluster:
    """redis-py's cluster client from a seed node's ``redis://`` / ``rediss://`` URL
    (``RedisCluster.from_url``); it finds the other nodes itself on its first command,
    so a cluster that is down at start costs 503s until it answers, as with one server.

    The same bounds as ``connect``: command and connect timeouts, one retry (the cluster
    client re-reads the slot map on a connection error or MOVED before it). Its pools
    are per node and do not wait: past ``max_connections`` to one node a command fails
    (``MaxConnectionsError``, a 503) instead of queueing."""
    return RedisCluster.from_url(
        url,
        max_connections=max_connections,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        retry=Retry(NoBackoff(), retries=1),
    )


def open_client(
    url: str, *, cluster: bool, timeout: float, max_connections: int
) -> tuple[RedisClient, Callable[[], Awaitable[None]]]:
    """``connect`` or ``connect_cluster``, and the one call that closes what it opened."""
    if cluster:
        client = connect_cluster(url, timeout=timeout, max_connections=max_connections)
        return client, client.aclose

    pool, redis = connect(url, timeout=timeout, max_connections=max_connections)

    async def close() -> None:
        await redis.aclose()
        await pool.aclose()

    return redis, close


async def in_order(redis: RedisClient, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """Run raw commands in this order, in one round trip where that keeps the order: one
    server runs a pipeline's commands one after another (and a connection lost midway
    leaves a prefix of them done), while a cluster's pipeline sends each node its share
    at once, so there they go one by one. Replies in order, an error as its exception;
    on a cluster the first error stops the run (the commands after it report it too)."""
    if isinstance(redis, RedisCluster):
        replies: list[Any] = []
        for command in commands:
            try:
                replies.append(await redis.execute_command(*command))
            except RedisError as exc:
                return replies + [exc] * (len(commands) - len(replies))
        return replies
    async with redis.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        return await pipe.execute(raise_on_error=False)
