"""Server-sent events for one job: one ``status`` event per status change, ending after
the final one.

Each stream reads the job through ``JobService.get``, so it shares the refresh policy
(lease, budget, singleflight) with every poller: a thousand open streams on one job still
cost one upstream call per refresh interval.

Usage::

    async for message in job_events(jobs, owner="key_...", record=record):
        ...   # ServerSentEventMessage(event="status", id="mus_....completed", data=<job>)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import msgspec
from litestar.response import ServerSentEventMessage

from gateway.jobs.service import JobService
from gateway.store.store import JobRecord
from providers.base import is_final

MAX_STREAM_SECONDS = 3600.0  # then the stream ends; the client reconnects
KEEPALIVE_SECONDS = 15.0

_encoder = msgspec.json.Encoder()


async def job_events(
    jobs: JobService, owner: str, record: JobRecord, base_url: str | None = None
) -> AsyncIterator[ServerSentEventMessage]:
    poll = min(max(jobs.settings.refresh_interval, 0.2), 1.0)
    started = last_sent = time.monotonic()
    status = None
    while True:
        if record.status != status:
            status = record.status
            last_sent = time.monotonic()
            yield ServerSentEventMessage(
                data=(await jobs.render(record, base_url)).decode(),
                event="status",
                id=f"{record.id}.{record.status}",
            )
            if is_final(record.status):
                return
        now = time.monotonic()
        if now - started > MAX_STREAM_SECONDS:
            return
        if now - last_sent > KEEPALIVE_SECONDS:
            last_sent = now
            yield ServerSentEventMessage(comment="keep-alive")
        await asyncio.sleep(poll)
        record, _ = await jobs.get(owner, record.id)
