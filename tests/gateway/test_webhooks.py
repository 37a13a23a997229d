"""Client webhooks: signed per Standard Webhooks, retried, deduplicated, durable in Redis.

A real Redis (the suite's single Redis, and its Redis Cluster) and a real loopback HTTP
receiver answering scripted statuses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import standardwebhooks
from redis.asyncio import Redis

from gateway.infra.log import configure_logging
from gateway.infra.settings import Settings
from gateway.notify.webhooks import WebhookOutbox, encode_event
from gateway.store.keys import new_signing_secret
from gateway.store.redis_pool import RedisClient, open_client
from tests.support.clock import FakeClock
from tests.support.receiver import Receiver
from tests.support.waiting import eventually

PAYLOAD = b'{"id":"mus_01","object":"music","status":"completed"}'


pytestmark = pytest.mark.both_redis


@pytest.fixture
def redis(redis_client: RedisClient) -> RedisClient:
    return redis_client


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture
def prefix() -> str:
    return f"t{secrets.token_hex(4)}:"


@pytest.fixture
def make_outbox(
    redis: RedisClient, http: httpx.AsyncClient, prefix: str
) -> Callable[..., WebhookOutbox]:
    def make(**kwargs: Any) -> WebhookOutbox:
        return WebhookOutbox(redis, prefix=prefix, http=http, **kwargs)

    return make


def drained(outbox: WebhookOutbox) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await outbox.pending() == 0

    return check


async def drive(outbox: WebhookOutbox, done: Callable[[], Awaitable[bool]]) -> None:
    """Call deliver_due until ``done`` (the retry delays make some calls find nothing)."""

    async def step() -> bool:
        await outbox.deliver_due()
        return await done()

    await eventually(step, what="delivered")


async def enqueue(outbox: WebhookOutbox, url: str, secret: str, msg_id: str = "") -> str:
    msg_id = msg_id or "msg_" + secrets.token_hex(8)
    assert await outbox.enqueue(
        msg_id=msg_id, url=url, secret=secret, event_type="music.completed", payload=PAYLOAD
    )
    return msg_id


def test_new_signing_secret_format() -> None:
    a, b = new_signing_secret(), new_signing_secret()
    assert a != b and a.startswith("whsec_")
    assert 24 <= len(base64.b64decode(a.removeprefix("whsec_"))) <= 32
    standardwebhooks.Webhook(a)  # accepted as is


def test_encode_event_shape() -> None:
    body = json.loads(encode_event("music.completed", {"id": "mus_1"}, 1_700_000_000.5))
    assert body == {
        "type": "music.completed",
        "timestamp": "2023-11-14T22:13:20.500000Z",
        "data": {"id": "mus_1"},
    }


async def test_delivery_is_signed_and_verifiable(
    receiver: Receiver,
    make_outbox: Callable[..., WebhookOutbox],
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(level="info", fmt="json")
    outcomes: list[str] = []
    outbox = make_outbox(on_delivery=outcomes.append)
    url, rec = receiver.add()
    secret = new_signing_secret()
    msg_id = await enqueue(outbox, url, secret)
    assert await outbox.deliver_due() == 1
    assert outcomes == ["delivered"] and len(rec.calls) == 1
    headers, body = rec.calls[0]
    assert body == PAYLOAD
    assert headers["webhook-id"] == msg_id
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "music-gateway-webhooks"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 300
    assert standardwebhooks.Webhook(secret).verify(body, headers) == json.loads(PAYLOAD)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body.replace(b"completed", b"failed"), headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_signing_secret()).verify(body, headers)
    assert await outbox.pending() == 0
    logged = capsys.readouterr().err
    assert secret not in logged and secret.removeprefix("whsec_") not in logged
    line = next(json.loads(x) for x in logged.splitlines() if x.startswith("{") and msg_id in x)
    assert line["host"] == "127.0.0.1" and line["outcome"] == "delivered"


async def test_retried_after_failing_receiver_with_same_id(
    receiver: Receiver, make_outbox: Callable[..., WebhookOutbox]
) -> None:
    outcomes: list[str] = []
    outbox = make_outbox(schedule=(0, 0.05, 0.1), on_delivery=outcomes.append)
    url, rec = receiver.add(500, 500)
    secret = new_signing_secret()
    msg_id = await enqueue(outbox, url, secret)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop, idle=0.01))
    try:
        await eventually(drained(outbox), what="the outbox drained")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert rec.ids() == [msg_id] * 3
    assert outcomes == ["retry", "retry", "delivered"]
    for headers, body in rec.calls:  # every attempt is signed afresh and verifies
        standardwebhooks.Webhook(secret).verify(body, headers)
    assert await outbox.dead_letters() == []


async def test_same_msg_id_is_delivered_once(
    receiver: Receiver, make_outbox: Callable[..., WebhookOutbox]
) -> None:
    outbox = make_outbox()
    url, rec = receiver.add()
    secret = new_signing_secret()
    msg_id = await enqueue(outbox, url, secret)
    again = dict(msg_id=msg_id, url=url, secret=secret, event_type="x", payload=b"{}")
    assert await outbox.enqueue(**again) is False
    assert await outbox.pending() == 1
    await drive(outbox, drained(outbox))
    assert await outbox.enqueue(**again) is False  # still deduplicated after delivery
    assert await outbox.deliver_due() == 0
    assert rec.ids() == [msg_id]


async def test_queue_survives_the_outbox(
    receiver: Receiver, redis_env: dict[str, str], prefix: str, http: httpx.AsyncClient
) -> None:
    url, rec = receiver.add()
    secret = new_signing_secret()
    settings = Settings.from_env(redis_env)
    assert settings.redis_url is not None

    def client() -> tuple[RedisClient, Callable[[], Awaitable[None]]]:
        return open_client(
            settings.redis_url or "", cluster=settings.redis_cluster, timeout=5, max_connections=4
        )

    first, close = client()
    msg_id = await enqueue(WebhookOutbox(first, prefix=prefix, http=http), url, secret)
    await close()
    second, close = client()
    try:
        outbox = WebhookOutbox(second, prefix=prefix, http=http)
        assert await outbox.pending() == 1
        assert await outbox.deliver_due() == 1
    finally:
        await close()
    assert rec.ids() == [msg_id]
    standardwebhooks.Webhook(secret).verify(rec.calls[0][1], rec.calls[0][0])


async def test_crashed_workers_claim_comes_back(
    receiver: Receiver, make_outbox: Callable[..., WebhookOutbox]
) -> None:
    entered, never = asyncio.Event(), asyncio.Event()

    async def hang(url: str) -> None:
        entered.set()
        await never.wait()

    clock = FakeClock(start=time.time())  # both workers' clock: claims age when told
    crashing = make_outbox(url_check=hang, claim_seconds=60.0, clock=clock)
    url, rec = receiver.add()
    msg_id = await enqueue(crashing, url, new_signing_secret())
    worker = asyncio.create_task(crashing.deliver_due())
    await asyncio.wait_for(entered.wait(), 10)
    worker.cancel()  # the worker dies holding the claim
    with pytest.raises(asyncio.CancelledError):
        await worker
    other = make_outbox(schedule=(0, 0.05), clock=clock)
    assert await other.deliver_due() == 0  # still claimed
    clock.advance(60.0)  # claim_seconds later it is due again
    await drive(other, drained(other))
    assert rec.ids() == [msg_id]


async def test_two_workers_deliver_each_message_once(
    receiver: Receiver, make_outbox: Callable[..., WebhookOutbox]
) -> None:
    a, b = make_outbox(), make_outbox()
    url, rec = receiver.add()
    secret = new_signing_secret()
    ids = {await enqueue(a if i % 2 else b, url, secret) for i in range(150)}
    stop = asyncio.Event()
    tasks = [asyncio.create_task(o.run(stop, idle=0.01)) for o in (a, b)]
    try:
        await eventually(drained(a), what="the outbox drained")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
    delivered = rec.ids()
    assert len(delivered) == len(ids) and set(delivered) == ids


async def test_exhausted_schedule_goes_to_dead_letters(
    receiver: Receiver, make_outbox: Callable[..., WebhookOutbox]
) -> None:
    outcomes: list[str] = []
    outbox = make_outbox(schedule=(0, 0.05), on_delivery=outcomes.append)
    url, rec = receiver.add(500, 503, 500)
    secret = new_signing_secret()
    msg_id = await enqueue(outbox, url, secret)
    await drive(outbox, drained(outbox))
    assert rec.ids() == [msg_id] * 2
    assert outcomes == ["retry", "failed"]
    [dead] = await outbox.dead_letters()
    assert dead["id"] == msg_id and dead["url"] == url
    assert dead["attempts"] == 2 and dead["last_error"] == "http 503"
    assert secret not in json.dumps(dead)


async def test_gone_gives_up_at_once(
    receiver: Receiver, make_outbox: Callable[..., WebhookOutbox]
) -> None:
    outcomes: list[str] = []
    outbox = make_outbox(schedule=(0, 0.01, 0.01), on_delivery=outcomes.append)
    url, rec = receiver.add(410)
    msg_id = await enqueue(outbox, url, new_signing_secret())
    assert await outbox.deliver_due() == 1
    assert outcomes == ["failed"] and rec.ids() == [msg_id]
    assert await outbox.pending() == 0
    [dead] = await outbox.dead_letters()
    assert dead["attempts"] == 1 and dead["last_error"] == "http 410"


async def test_rejected_url_is_a_failed_attempt_and_nothing_is_sent(
    receiver: Receiver, make_outbox: Callable[..., WebhookOutbox]
) -> None:
    checked: list[str] = []
    verdicts = [ValueError("resolves to a private address"), None]

    async def check(url: str) -> None:
        checked.append(url)
        verdict = verdicts.pop(0) if verdicts else None
        if verdict is not None:
            raise verdict

    outcomes: list[str] = []
    outbox = make_outbox(schedule=(0, 0.05), url_check=check, on_delivery=outcomes.append)
    url, rec = receiver.add()
    msg_id = await enqueue(outbox, url, new_signing_secret())
    assert await outbox.deliver_due() == 1
    assert outcomes == ["retry"] and rec.calls == [] and checked == [url]
    await drive(outbox, drained(outbox))  # the check passes next time
    assert outcomes == ["retry", "delivered"] and rec.ids() == [msg_id]

    always_no = make_outbox(schedule=(0,), url_check=_reject, on_delivery=outcomes.append)
    blocked_url, blocked = receiver.add()
    blocked_id = await enqueue(always_no, blocked_url, new_signing_secret())
    assert await always_no.deliver_due() == 1
    assert blocked.calls == [] and outcomes[-1] == "failed"
    [dead] = await always_no.dead_letters()
    assert dead["id"] == blocked_id and dead["last_error"].startswith("url_rejected")


async def test_run_survives_a_broken_redis(
    http: httpx.AsyncClient, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(level="info", fmt="json")
    dead_redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    outbox = WebhookOutbox(dead_redis, prefix=prefix, http=http)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop, idle=0.01))
    logged: list[str] = []

    async def failed_twice() -> bool:
        logged.extend(capsys.readouterr().err.splitlines())
        assert not task.done()  # the loop never crashes
        return sum('"webhook_loop_error"' in line for line in logged) >= 2

    try:
        await eventually(failed_twice, what="two loop errors logged")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await dead_redis.aclose()
    assert all("ConnectionError" in ln for ln in logged if "webhook_loop_error" in ln)


async def _reject(url: str) -> bool:
    return False
