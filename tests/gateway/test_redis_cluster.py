"""Redis Cluster: the settings that choose it, the startup check for the queue's own
Redis, and the rule every script keeps: all the keys it is called with hash to one slot
(redis-py's public ``key_slot``, the cluster's CRC16 with hash tags)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from gateway.notify.webhooks import WebhookOutbox, encode_event
from gateway.store.keys import new_signing_secret
from gateway.store.limits import Limits
from gateway.store.redis_pool import RedisClient
from gateway.store.store import JobRecord, Store
from tests.conftest import app_client
from tests.support.echo import EchoProvider, SyncEchoProvider
from tests.support.receiver import Receiver
from tests.support.waiting import eventually

URL = "/v1/music/generate"
JOB_IDS = ["mus_01m8s6z515m3cjzky8fc96g125", "mus_00000000000000000000000000", "mus_zz"]
OWNERS = ["key_178ea61e753a78d6", "key_0000000000000000"]


# ------------------------------------------------------------------------------ settings


def test_a_cluster_url_or_redis_cluster_chooses_the_cluster_client() -> None:
    s = Settings.from_env({"REDIS_URL": "redis+cluster://10.0.0.5:7000"})
    assert (s.redis_url, s.redis_cluster) == ("redis://10.0.0.5:7000", True)
    s = Settings.from_env({"REDIS_URL": "rediss+cluster://u:p@h:7000/0"})
    assert (s.redis_url, s.redis_cluster) == ("rediss://u:p@h:7000/0", True)
    s = Settings.from_env({"REDIS_URL": "redis://h:7000", "REDIS_CLUSTER": "true"})
    assert (s.redis_url, s.redis_cluster) == ("redis://h:7000", True)
    s = Settings.from_env({"REDIS_URL": "redis://h:6379/0"})
    assert (s.redis_cluster, s.queue_redis_url) == (False, None)
    s = Settings.from_env({"REDIS_CLUSTER": "1", "REDIS_URL": "redis://h:1", **_QUEUE})
    assert s.queue_redis_url == "redis://q:6379/0"


_QUEUE = {"GATEWAY_QUEUE_REDIS_URL": "redis://q:6379/0"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_CLUSTER": "true"}, "seed node"),  # the embedded Redis is a single server
        ({"REDIS_CLUSTER": "true", "REDIS_URL": "unix:///tmp/r.sock"}, "seed node"),
        ({"REDIS_URL": "redis+cluster://h:7000/2"}, "database 0 only"),
        ({"REDIS_URL": "redis://h:1", "GATEWAY_QUEUE_REDIS_URL": "redis+cluster://h:2"}, "single"),
        ({"GATEWAY_REDIS_PREFIX": "{mgw}:"}, "must not contain"),
        ({"REDIS_CLUSTER": "maybe"}, "true or false"),
    ],
)
def test_cluster_settings_that_cannot_work_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


async def test_a_cluster_without_a_queue_redis_does_not_start_when_the_queue_is_needed(
    make_settings: Callable[..., Settings], redis_cluster: Any
) -> None:
    cluster = {"REDIS_URL": redis_cluster.url, "REDIS_CLUSTER": "true"}
    settings = make_settings(**cluster, GATEWAY_QUEUE_REDIS_URL="")
    app = create_app(settings, providers=[EchoProvider(), SyncEchoProvider()])
    with pytest.raises(Exception) as failed:
        async with app_client(app):
            pass
    assert "set GATEWAY_QUEUE_REDIS_URL" in "".join(traceback.format_exception(failed.value))
    # No synchronous provider and no mirror: no queue, and the gateway runs on the cluster.
    app = create_app(settings, providers=[EchoProvider()])
    async with app_client(app) as client:
        r = await client.post(URL, json={"model": "echo/v1", "prompt": "a song"})
        assert r.status_code == 200, r.text
        assert (await client.get("/ready")).status_code == 200


# ---------------------------------------------------------------------------- hash tags


def test_the_keys_used_together_share_a_slot_for_representative_ids() -> None:
    redis = Redis()  # never connected: naming keys needs no server
    store = Store(redis, prefix="mgw:", retention_seconds=60)
    limits = Limits(redis, prefix="mgw:")
    for job_id in JOB_IDS:
        assert key_slot(store.job_key(job_id).encode()) == key_slot(
            store.lease_key(job_id).encode()
        )
    for owner in OWNERS:
        slots = key_slot(limits.slot_key(owner).encode())
        for idem in ("order-1", "{x}", "a" * 300):
            assert key_slot(store.indexes.idempotency_key(owner, idem).encode()) == slots
    # Spread: jobs are not all in one slot (the tag is the job's own id).
    assert len({key_slot(store.job_key(f"mus_{i:026d}").encode()) for i in range(50)}) > 40


async def test_every_script_is_called_with_keys_of_one_slot(
    make_settings: Callable[..., Settings], receiver: Receiver
) -> None:
    """A gateway's whole round trip (create with an Idempotency-Key, refreshes within the
    budget, the background refresher, a webhook delivered, a generation lease), with every
    EVALSHA recorded: the keys of each call hash to one slot."""
    settings = make_settings(
        GATEWAY_REFRESH_INTERVAL="0.01",
        GATEWAY_WEBHOOK_ALLOW_PRIVATE="true",
        GATEWAY_MAX_INFLIGHT_JOBS="5",
    )
    async with app_client(create_app(settings, providers=[EchoProvider()])) as client:
        store: Store = client.app.state.store  # type: ignore[attr-defined]
        calls: list[tuple[Any, ...]] = []
        record(store.redis, calls)
        url, rec = receiver.add()
        body = {"model": "echo/v1", "prompt": "a song", "webhook_url": url}
        r = await client.post(URL, json=body, headers={"Idempotency-Key": "k-1"})
        job_id = r.json()["id"]

        async def completed() -> bool:
            got = await client.get(f"{URL}/{job_id}")
            return got.json()["status"] == "completed"

        await eventually(completed, what="the job completed")
        await eventually(lambda: len(rec.calls) >= 1, what="a webhook delivered")
        limits = Limits(store.redis, prefix=settings.redis_prefix)
        assert (await limits.lease("echo", job_id, limit=1, ttl=5))[0]
    checked = 0
    for args in calls:
        keys = args[3 : 3 + int(args[2])]
        assert len({key_slot(_bytes(k)) for k in keys}) <= 1, args[: 3 + int(args[2])]
        checked += 1
    shas = {args[1] for args in calls}
    assert len(shas) >= 9, shas  # admit, swap, begin, take, claim, lease, outbox x3 at least


def record(redis: RedisClient, calls: list[tuple[Any, ...]]) -> None:
    """Record every script call, sent alone or in a pipeline (EVALSHA and EVAL)."""

    def recorder(send: Callable[..., Any]) -> Callable[..., Any]:
        def recording(*args: Any, **options: Any) -> Any:
            if args and args[0] in ("EVALSHA", "EVAL"):
                calls.append(args)
            return send(*args, **options)

        return recording

    make_pipeline = redis.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        pipe.execute_command = recorder(pipe.execute_command)  # type: ignore[method-assign]
        return pipe

    redis.execute_command = recorder(redis.execute_command)  # type: ignore[method-assign]
    redis.pipeline = pipeline  # type: ignore[method-assign]


def _bytes(key: Any) -> bytes:
    return key if isinstance(key, bytes) else str(key).encode()


# ---------------------------------------------------- steps across slots, on the cluster


@pytest.mark.both_redis
async def test_a_final_job_left_on_the_schedule_is_released_by_the_refresher(
    make_settings: Callable[..., Settings],
) -> None:
    """A process that died after writing a final record, before freeing the owner's slot
    and the schedule: the refresher finds the job final and does both."""
    settings = make_settings(GATEWAY_REFRESH_INTERVAL="0.05")
    async with app_client(create_app(settings, providers=[EchoProvider()])) as client:
        store: Store = client.app.state.store  # type: ignore[attr-defined]
        limits = Limits(store.redis, prefix=settings.redis_prefix)
        now = time.time()
        final = JobRecord(
            id="mus_died",
            owner="key_somebody",
            provider="echo",
            model="echo/v1",
            status="completed",
            created_at=now,
            updated_at=now,
            native_id="n1",
        )
        await store.redis.zadd(limits.slot_key("key_somebody"), {"mus_died": now})
        await store.put_job(final, zsets=[(store.due_key, "mus_died", now - 1)])

        async def released() -> bool:
            in_slot = await store.redis.zscore(limits.slot_key("key_somebody"), "mus_died")
            scheduled = await store.redis.zscore(store.due_key, "mus_died")
            return in_slot is None and scheduled is None

        await eventually(released, what="slot and schedule released")


@pytest.mark.both_redis
async def test_client_keys_are_listed_from_every_node(redis_client: RedisClient) -> None:
    store = Store(redis_client, prefix=f"k{time.monotonic_ns()}:", retention_seconds=60)
    made = [(await store.keys.create_key(f"key {i}"))[1].id for i in range(12)]
    assert sorted(k.id for k in await store.keys.list_keys()) == sorted(made)
    assert await store.keys.revoke_key(made[0])
    assert (await store.keys.get_key(made[0])).revoked  # type: ignore[union-attr]


@pytest.mark.both_redis
async def test_the_outbox_delivers_a_batch_in_one_slot(
    redis_client: RedisClient, receiver: Receiver
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        prefix = f"o{time.monotonic_ns()}:"
        outbox = WebhookOutbox(redis_client, prefix=prefix, http=http, schedule=(0, 0.05))
        url, rec = receiver.add(500)  # the first attempt fails: one retry, one delivery
        secret = new_signing_secret()
        for i in range(5):
            payload = encode_event("music.completed", {"i": i}, time.time())
            await outbox.enqueue(
                msg_id=f"m{i}", url=url, secret=secret, event_type="x", payload=payload
            )
        assert await outbox.deliver_due() == 5  # one batch: claimed, sent, recorded

        async def drained() -> bool:
            await outbox.deliver_due()  # the retry, once due
            return await outbox.pending() == 0

        await eventually(drained, what="the outbox drained")
        assert sorted(set(rec.ids())) == [f"m{i}" for i in range(5)]
