"""The store's scripts and the steps around them: ``open_job`` (schedule, record, then the
owner's in-flight slot and Idempotency-Key, kept all or nothing), compare-and-set job
updates with the sorted-set changes that follow them, and ``begin_refresh`` (lease and
fresh read, then the budget). On a single Redis and on a Redis Cluster.

Two ``Store`` objects on one Redis stand for two gateway processes.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator

import msgspec
import pytest

from gateway.store.limits import Bucket, Limits
from gateway.store.redis_pool import RedisClient
from gateway.store.store import IdempotencyEntry, JobRecord, Store, decode_job
from tests.support.waiting import eventually

pytestmark = pytest.mark.both_redis


@pytest.fixture
async def pair(redis_client: RedisClient) -> AsyncIterator[tuple[Store, Store, Limits]]:
    prefix = f"s{secrets.token_hex(4)}:"
    stores = [Store(redis_client, prefix=prefix, retention_seconds=3600) for _ in range(2)]
    yield stores[0], stores[1], Limits(redis_client, prefix=prefix)


def job(job_id: str = "mus_a", status: str = "in_progress", progress: int = 0) -> JobRecord:
    now = time.time()
    return JobRecord(
        id=job_id,
        owner="key_owner",
        provider="echo",
        model="echo/v1",
        status=status,
        created_at=now,
        updated_at=now,
        native_id="n1",
        progress=progress,
    )


def bump(record: JobRecord) -> JobRecord:
    return msgspec.structs.replace(record, progress=(record.progress or 0) + 1)


async def test_put_keeps_the_record_for_the_retention_and_applies_sorted_set_ops(
    pair: tuple[Store, Store, Limits],
) -> None:
    store, _, limits = pair
    slots = limits.slot_key("key_owner")
    await store.put_job(job(), zsets=[(slots, "mus_a", 7.0), (store.due_key, "mus_a", 123.0)])
    redis = store.redis
    stored = decode_job(await redis.get(store.job_key("mus_a")))
    assert (stored.id, stored.status, stored.native_id) == ("mus_a", "in_progress", "n1")
    assert 3590 < await redis.ttl(store.job_key("mus_a")) <= 3600
    assert await redis.zscore(store.due_key, "mus_a") == 123.0
    assert await redis.zscore(limits.slot_key("key_owner"), "mus_a") == 7.0


async def test_update_applies_the_change_on_top_of_a_concurrent_write(
    pair: tuple[Store, Store, Limits],
) -> None:
    one, other, _ = pair
    await one.put_job(job())
    stale = await one.redis.get(one.job_key("mus_a"))
    await other.update_job("mus_a", bump)  # the other process writes first: progress 1
    seen: list[int | None] = []

    def change(record: JobRecord) -> JobRecord:
        seen.append(record.progress)
        return bump(record)

    done = await one.update_job("mus_a", change, raw=stale)  # computed from stale bytes
    assert done is not None
    assert seen == [0, 1]  # refused against the stale bytes, redone on the current ones
    assert done.before == "in_progress"
    assert done.record.progress == 2
    assert (await one.get_job("mus_a")).progress == 2  # type: ignore[union-attr]


async def test_update_keeps_the_ttl_and_writes_the_follow_ops_with_it(
    pair: tuple[Store, Store, Limits],
) -> None:
    store, _, limits = pair
    slots = limits.slot_key("key_owner")
    await store.put_job(job(), zsets=[(slots, "mus_a", 1.0), (store.due_key, "mus_a", 1.0)])
    await store.redis.expire(store.job_key("mus_a"), 500)

    def finish(record: JobRecord) -> JobRecord:
        return msgspec.structs.replace(record, status="completed")

    def follow(before: str, after: JobRecord) -> list[tuple[str, str, float | None]]:
        assert (before, after.status) == ("in_progress", "completed")
        return [(store.due_key, after.id, None), (slots, after.id, None)]

    done = await store.update_job("mus_a", finish, follow=follow)
    assert done is not None and done.record.status == "completed"
    assert 490 < await store.redis.ttl(store.job_key("mus_a")) <= 500
    assert await store.redis.zscore(store.due_key, "mus_a") is None
    assert await store.redis.zscore(slots, "mus_a") is None


async def test_update_skipped_or_missing(pair: tuple[Store, Store, Limits]) -> None:
    store, _, _ = pair
    assert await store.update_job("mus_nothing", bump) is None
    await store.put_job(job())
    done = await store.update_job("mus_a", lambda r: None)
    assert done is not None and done.record.progress == 0 and done.before == "in_progress"


async def test_begin_refresh_one_lease_holder_a_fresh_read_and_the_budget(
    pair: tuple[Store, Store, Limits],
) -> None:
    one, other, limits = pair
    await one.put_job(job())
    bucket = Bucket(limits.bucket_key("upstream:echo"), capacity=1, per_second=0.01, cost=1)

    first = await one.begin_refresh("mus_a", 5.0, bucket)
    assert first.leased and first.raw is not None and decode_job(first.raw).id == "mus_a"
    assert first.grant is not None and first.grant.allowed

    # The lease is held: the other process neither reads nor spends anything.
    assert await other.begin_refresh("mus_a", 5.0, bucket) == (False, None, None)

    # Another job: leased and read, but the budget (capacity 1) is spent.
    await one.put_job(job("mus_b"))
    second = await other.begin_refresh("mus_b", 5.0, bucket)
    assert second.leased and second.raw is not None
    assert second.grant is not None and not second.grant.allowed
    assert second.grant.retry_after > 50  # one token per 100 s

    # No budget: lease and read only; no job: leased, nothing read.
    await one.put_job(job("mus_c"))
    third = await one.begin_refresh("mus_c", 5.0)
    assert third.leased and third.raw is not None and third.grant is None
    assert await one.begin_refresh("mus_gone", 5.0, bucket) == (True, None, None)


async def test_a_tight_budget_books_turns_first_come_first_served(
    pair: tuple[Store, Store, Limits],
) -> None:
    """With ``reserve``, a refresh the budget cannot pay now books the next free turn:
    each later one queues behind it (waits one token apart), a job with a booking is
    not booked twice, and at its turn the booking pays (the bucket is not touched)."""
    one, other, limits = pair
    bucket = Bucket(limits.bucket_key("upstream:echo"), capacity=1, per_second=4, cost=1)
    waits = []
    for name in ("mus_a", "mus_b", "mus_c", "mus_d"):
        await one.put_job(job(name))
        begun = await one.begin_refresh(name, 0.05, bucket, reserve=True)
        assert begun.grant is not None
        waits.append(begun.grant.retry_after if not begun.grant.allowed else 0.0)
        if begun.grant.reserved:
            await one.reserve_for(name, begun.grant.retry_after, 5.0)
    assert waits[0] == 0.0  # the bucket's one token
    # then one turn each, 0.25 s apart, in the order they came
    assert [round(w / 0.25) for w in waits[1:]] == [1, 2, 3]
    level = (await limits.redis.hmget(bucket.key, "tokens"))[0]

    async def lease_free(name: str) -> bool:
        return await one.redis.pttl(one.lease_key(name)) < 0

    await eventually(lambda: lease_free("mus_d"), what="the lease lapsed")
    again = await other.begin_refresh("mus_d", 0.05, bucket, reserve=True)
    assert again.grant is not None and again.grant.reserved and not again.grant.allowed
    assert 0 < again.grant.retry_after <= waits[3]  # its booking, not a second one
    assert (await limits.redis.hmget(bucket.key, "tokens"))[0] == level  # nothing taken

    async def turn_came() -> bool:
        begun = await other.begin_refresh("mus_b", 0.05, bucket, reserve=True)
        return begun.leased and begun.grant is not None and begun.grant.allowed

    await eventually(turn_came, what="mus_b's turn")
    assert await one.redis.exists(one.paid_key("mus_b")) == 0  # the booking is spent


async def test_begin_refresh_lease_expires(pair: tuple[Store, Store, Limits]) -> None:
    one, other, _ = pair
    await one.put_job(job())
    assert (await one.begin_refresh("mus_a", 1.0)).leased  # a second: ample for the next call
    assert not (await other.begin_refresh("mus_a", 1.0)).leased
    assert 0 < await one.redis.pttl(one.lease_key("mus_a")) <= 1000  # Redis expires it

    async def leased() -> bool:
        return (await other.begin_refresh("mus_a", 1.0)).leased

    await eventually(leased, what="the lease taken again once it expired")


async def test_open_job_is_all_or_nothing(pair: tuple[Store, Store, Limits]) -> None:
    store, _, limits = pair
    slots = limits.slot_key("key_owner")
    redis = store.redis

    def entry(job_id: str) -> IdempotencyEntry:
        return IdempotencyEntry(fingerprint="f" * 64, job_id=job_id)

    opened = await store.open_job(
        job("mus_1"), due=50.0, slot=(slots, 2, 3600), idempotency=("order-1", entry("mus_1"), 60)
    )
    assert opened.created and opened.existing is None
    assert opened.raw == await redis.get(store.job_key("mus_1"))  # the bytes stored
    assert await redis.zscore(store.due_key, "mus_1") == 50.0
    assert await redis.zscore(slots, "mus_1") is not None
    assert await store.indexes.get_idempotency("key_owner", "order-1") == entry("mus_1")

    # The same Idempotency-Key again: its binding comes back, nothing else is written.
    again = await store.open_job(
        job("mus_2"), due=50.0, slot=(slots, 2, 3600), idempotency=("order-1", entry("mus_2"), 60)
    )
    assert again == (False, entry("mus_1"), None)
    assert await store.get_job("mus_2") is None
    assert await redis.zscore(slots, "mus_2") is None
    assert await redis.zscore(store.due_key, "mus_2") is None

    # Slots: the second fits, the third does not, and leaves no trace.
    assert (await store.open_job(job("mus_3"), due=1.0, slot=(slots, 2, 3600))).created
    full = await store.open_job(
        job("mus_4"), due=1.0, slot=(slots, 2, 3600), idempotency=("order-4", entry("mus_4"), 60)
    )
    assert full == (False, None, None)
    assert await store.get_job("mus_4") is None
    assert await store.indexes.get_idempotency("key_owner", "order-4") is None
    assert await redis.zscore(store.due_key, "mus_4") is None

    # Without a slot limit or a key: record and schedule only.
    assert (await store.open_job(job("mus_5"), due=2.0)).created
    assert await redis.zscore(store.due_key, "mus_5") == 2.0
