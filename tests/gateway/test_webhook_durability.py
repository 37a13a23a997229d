"""No status change goes without its webhook when queuing it fails: the change is stored
first, its webhook queued after (two writes). Found by the chaos test
(``tests/chaos``): a provider callback that completed a job while Redis restarted stored
the change, then failed to queue its webhook (503 to the provider); the provider's retry
changed nothing, so no ``completed`` webhook was ever sent.

Now a webhook Redis refuses is queued again in the background; for a process that died
between the two writes, the next change of the job queues the webhook of the status it
replaces again, and a job turned final stays on the refresh schedule one more period,
when the refresher queues its final webhook again. Queuing is deduplicated per
``webhook-id``: each change is delivered under one id, once to a receiver that answers
2xx. (The chaos test once lost an ``in_progress`` webhook so: its process was killed
between the two writes.)
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.api.app import create_app
from tests.conftest import app_client
from tests.support.echo import EchoProvider
from tests.support.receiver import Receiver
from tests.support.waiting import eventually

URL = "/v1/music/generate"


def _settings(make_settings: Any) -> Any:
    return make_settings(
        GATEWAY_REFRESH_INTERVAL="0.2",
        GATEWAY_WEBHOOK_ALLOW_PRIVATE="true",  # the receiver is on loopback
        GATEWAY_WEBHOOK_RETRY_SCHEDULE="0,0.2,0.2,0.2",
    )


async def _settled(client: Any, job_id: str) -> bool:
    """The job is final and off the refresh schedule (its last turn taken)."""
    store = client.app.state.store
    job = await store.get_job(job_id)
    scheduled = await store.redis.zscore(store.due_key, job_id)
    return job is not None and job.status == "completed" and scheduled is None


async def test_a_webhook_redis_refused_is_queued_again(
    make_settings: Any, receiver: Receiver, echo: EchoProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook, rec = receiver.add()
    async with app_client(create_app(_settings(make_settings), providers=[echo])) as client:
        outbox = client.app.state.jobs.outbox  # type: ignore[attr-defined]
        enqueue, refused = outbox.enqueue, []

        async def flaky(**message: Any) -> bool:  # Redis restarting: every first try fails
            if message["msg_id"] not in refused:
                refused.append(message["msg_id"])
                raise RedisConnectionError("Connection refused")
            return await enqueue(**message)

        monkeypatch.setattr(outbox, "enqueue", flaky)
        body = {"model": "echo/v1", "prompt": "p", "webhook_url": hook}
        job = (await client.post(URL, json=body)).json()
        wanted = sorted(f"{job['id']}.{s}" for s in ("in_progress", "completed"))
        await eventually(lambda: sorted(rec.ids()) == wanted, what="both webhooks")
        await eventually(lambda: _settled(client, job["id"]), what="the job's last turn")
    assert sorted(refused) == wanted  # each was refused once, then queued
    assert sorted(rec.ids()) == wanted  # and delivered once


async def test_webhooks_never_queued_are_queued_by_the_next_change_and_the_refresher(
    make_settings: Any, receiver: Receiver, echo: EchoProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook, rec = receiver.add()
    async with app_client(create_app(_settings(make_settings), providers=[echo])) as client:
        notifier = client.app.state.jobs.notifier  # type: ignore[attr-defined]
        notify, skipped = notifier.notify, []

        async def died_first(record: Any) -> None:  # the change's own process stops
            if record.status not in skipped:  # between its two writes
                skipped.append(record.status)
                return
            await notify(record)

        monkeypatch.setattr(notifier, "notify", died_first)
        body = {"model": "echo/v1", "prompt": "p", "webhook_url": hook}
        job = (await client.post(URL, json=body)).json()
        await eventually(lambda: _settled(client, job["id"]), what="the job's last turn")
        await eventually(lambda: len(rec.ids()) >= 2, what="both webhooks")
    assert skipped == ["in_progress", "completed"]
    # in_progress by the change to completed (before its own), completed by the refresher
    assert rec.ids() == [f"{job['id']}.in_progress", f"{job['id']}.completed"]


async def test_a_final_job_without_webhook_leaves_the_schedule_at_once(
    make_settings: Any, echo: EchoProvider
) -> None:
    async with app_client(create_app(_settings(make_settings), providers=[echo])) as client:
        job = (await client.post(URL, json={"model": "echo/v1", "prompt": "p"})).json()
        store = client.app.state.store  # type: ignore[attr-defined]

        async def final_and_unscheduled() -> bool:
            record = await store.get_job(job["id"])
            scheduled = await store.redis.zscore(store.due_key, job["id"])
            return record.status == "completed" and scheduled is None

        async def final() -> bool:
            return (await store.get_job(job["id"])).status == "completed"

        await eventually(final, what="completed")
        assert await final_and_unscheduled()  # in the same write as the final status
