"""The generation worker: a synchronous provider's jobs run off the request, on a SAQ queue
in Redis, with RFC 7240 waiting answers, per-provider concurrency and 429 requeues."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest

from gateway.api.app import create_app
from gateway.api.prefer import prefer_wait
from gateway.infra.settings import Settings
from gateway.store.store import JobRecord
from tests.conftest import app_client
from tests.support.echo import EchoProvider, SyncEchoProvider

pytestmark = pytest.mark.both_redis

URL = "/v1/music/generate"
SYNC = {"model": "echo-sync/v1", "prompt": "a song"}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], (None, None)),
        (["wait=10"], (10.0, "wait=10")),
        (["Wait = 2.5 ; x=1"], (2.5, "wait=2.5")),
        (["respond-async"], (0.0, "respond-async")),
        (["wait=10, respond-async"], (0.0, "respond-async")),
        (["handling=lenient", "wait=3"], (3.0, "wait=3")),
        (["wait=soon"], (None, None)),
        (["wait=-1"], (None, None)),
        (["wait=99999"], (3600.0, "wait=3600")),
    ],
)
def test_prefer_header(headers: list[str], expected: tuple[float | None, str | None]) -> None:
    assert prefer_wait(headers) == expected


@pytest.fixture
async def gateway(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[tuple[httpx.AsyncClient, SyncEchoProvider]]:
    sync = SyncEchoProvider()
    settings = make_settings(GATEWAY_REFRESH_INTERVAL="0", GATEWAY_CONCURRENCY="echo-sync=1")
    async with app_client(create_app(settings, providers=[EchoProvider(), sync])) as client:
        yield client, sync


async def _final(client: httpx.AsyncClient, job_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = (await client.get(f"{URL}/{job_id}")).json()
        if job["status"] in ("completed", "failed"):
            return job
        assert time.monotonic() < deadline, f"not final in time: {job}"
        await asyncio.sleep(0.02)


async def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_the_create_waits_for_the_generation_by_default(
    gateway: tuple[httpx.AsyncClient, SyncEchoProvider],
) -> None:
    client, sync = gateway
    r = await client.post(URL, json=SYNC)
    assert r.status_code == 200 and "preference-applied" not in r.headers
    job = r.json()
    assert job["status"] == "completed" and "/v1/artefacts/" in job["output"][0]["audio_url"]
    assert sync.calls["submit"] == 1


async def test_respond_async_answers_at_once_and_the_job_completes(
    gateway: tuple[httpx.AsyncClient, SyncEchoProvider],
) -> None:
    client, sync = gateway
    sync.gate = asyncio.Event()
    r = await client.post(URL, json=SYNC, headers={"Prefer": "respond-async"})
    assert r.headers["preference-applied"] == "respond-async"
    job = r.json()
    assert job["status"] == "queued" and job["output"] == []
    await _until(lambda: sync.in_flight == 1)
    assert (await client.get(f"{URL}/{job['id']}")).json()["status"] == "in_progress"
    sync.gate.set()
    assert (await _final(client, job["id"]))["status"] == "completed"


async def test_prefer_wait_bounds_the_answer(
    gateway: tuple[httpx.AsyncClient, SyncEchoProvider],
) -> None:
    client, sync = gateway
    sync.gate = asyncio.Event()
    began = time.monotonic()
    r = await client.post(URL, json=SYNC, headers={"Prefer": "wait=0.3"})
    assert time.monotonic() - began >= 0.3
    assert r.headers["preference-applied"] == "wait=0.3"
    assert r.json()["status"] in ("queued", "in_progress")
    sync.gate.set()
    assert (await _final(client, r.json()["id"]))["status"] == "completed"


async def test_prefer_wait_applies_to_an_async_provider_too(
    gateway: tuple[httpx.AsyncClient, SyncEchoProvider],
) -> None:
    client, _ = gateway
    r = await client.post(
        URL, json={"model": "echo/v1", "prompt": "x"}, headers={"Prefer": "wait=20"}
    )
    assert r.json()["status"] == "completed"  # polled (refresh interval 0) until final
    r = await client.post(URL, json={"model": "echo/v1", "prompt": "x"})
    assert r.json()["status"] == "queued"  # no wait by default for a provider that keeps jobs


async def test_a_rate_limited_generation_is_requeued_not_failed(
    gateway: tuple[httpx.AsyncClient, SyncEchoProvider],
) -> None:
    client, sync = gateway
    sync.rate_limited = 2
    r = await client.post(URL, json=SYNC, headers={"Prefer": "wait=20"})
    assert r.json()["status"] == "completed", r.json()
    assert sync.calls["submit"] == 3
    assert _requeued(client, "rate") == 2


async def test_concurrency_is_capped_by_a_shared_lease(
    gateway: tuple[httpx.AsyncClient, SyncEchoProvider],
) -> None:
    client, sync = gateway  # GATEWAY_CONCURRENCY=echo-sync=1
    sync.gate = asyncio.Event()
    ids = [
        (await client.post(URL, json=SYNC, headers={"Prefer": "respond-async"})).json()["id"]
        for _ in range(3)
    ]
    await _until(lambda: sync.in_flight == 1 and _requeued(client, "concurrency_busy") >= 2)
    sync.gate.set()
    jobs = [await _final(client, i) for i in ids]
    assert [j["status"] for j in jobs] == ["completed"] * 3
    assert sync.max_in_flight == 1


def _requeued(client: httpx.AsyncClient, reason: str) -> float:
    registry = client.app.state.metrics.registry  # type: ignore[attr-defined]
    labels = {"provider": "echo-sync", "reason": reason}
    return registry.get_sample_value("gateway_generations_requeued_total", labels) or 0.0


async def _stored(client: httpx.AsyncClient, **body: Any) -> JobRecord:
    r = await client.post(URL, json={**SYNC, **body}, headers={"Prefer": "respond-async"})
    return await client.app.state.store.get_job(r.json()["id"])  # type: ignore[attr-defined]


async def test_an_attempt_that_died_after_it_may_have_sent_is_never_run_again(
    gateway: tuple[httpx.AsyncClient, SyncEchoProvider],
) -> None:
    client, sync = gateway
    app: Any = client.app  # type: ignore[attr-defined]
    sync.gate = asyncio.Event()  # hold the worker's own attempt
    record = await _stored(client)
    await _until(lambda: sync.in_flight == 1)
    # As a worker that died mid-call leaves it: started, not final; its SAQ job swept
    # and tried again.
    died = msgspec.structs.replace(record, started_at=time.time() - 60)
    await app.state.store.put_job(died)
    calls = sync.calls["submit"]
    await app.state.jobs.generations.enqueue(record.id, attempt=7)
    job = await _final(client, record.id)
    assert job["status"] == "failed" and job["error"]["code"] == "upstream_outcome_unknown"
    assert sync.calls["submit"] == calls  # not sent again
    sync.gate.set()


async def test_an_attempt_that_died_before_the_call_runs_normally(
    gateway: tuple[httpx.AsyncClient, SyncEchoProvider],
) -> None:
    client, sync = gateway
    app: Any = client.app  # type: ignore[attr-defined]
    r = await client.post(URL, json=SYNC)  # the worker runs it; then pretend it never had
    record = await app.state.store.get_job(r.json()["id"])
    fresh = msgspec.structs.replace(
        record, status="queued", started_at=None, outputs=[], native_id=None, native_ids=[]
    )
    await app.state.store.put_job(fresh)
    await app.state.jobs.generations.enqueue(record.id, attempt=3)
    job = await _final(client, record.id)
    assert job["status"] == "completed" and sync.calls["submit"] == 2
