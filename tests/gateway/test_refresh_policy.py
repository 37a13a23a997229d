"""Upstream quotas shielded from client polling: singleflight and the Redis lease, the
shared budget, the background refresher, and the schedule a callback pushes back."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from gateway.api import app as app_module
from gateway.api.app import create_app
from gateway.jobs.refresher import Refresher
from tests.conftest import app_client
from tests.support.clock import age_job, rewind_bucket
from tests.support.echo import EchoProvider
from tests.support.waiting import eventually

pytestmark = pytest.mark.both_redis

URL = "/v1/music/generate"
BODY = {"model": "echo/v1", "prompt": "lofi beat"}


async def _create(client: httpx.AsyncClient, **extra: Any) -> dict:
    r = await client.post(URL, json={**BODY, **extra})
    assert r.status_code == 200, r.text
    return r.json()


async def _completed(store: Any, job_id: str, timeout: float | None = None) -> None:
    """Wait until the stored job is completed (no one polls: the refresher advances it)."""

    async def done() -> bool:
        return (await store.get_job(job_id)).status == "completed"

    kw = {} if timeout is None else {"timeout": timeout}
    await eventually(done, what=f"{job_id} completed by the refresher", **kw)


async def _refresher_went_past(client: httpx.AsyncClient, echo: EchoProvider) -> None:
    """A barrier for "the refresher leaves that job alone": a job created now, which
    nobody polls, completed by the refresher (two refreshes, one period apart). Any job
    due before this one was created has been refreshed by then, if it was due at all."""
    sentinel = await _create(client)
    await _completed(client.app.state.store, sentinel["id"])  # type: ignore[attr-defined]
    assert echo.fetched[sentinel["id"]] == 2


def _quiet(make_settings: Any, **env: str) -> Any:
    """Settings where only the test's own polls reach upstream."""
    return make_settings(GATEWAY_BACKGROUND_REFRESH="off", **env)


async def test_n_concurrent_polls_make_exactly_one_upstream_call(
    make_settings: Any, echo: EchoProvider
) -> None:
    # An interval far longer than the polls take, however slow the machine: every poll
    # falls within the one interval (a fresh refresh would otherwise be due again).
    app = create_app(_quiet(make_settings, GATEWAY_REFRESH_INTERVAL="60"), providers=[echo])
    async with app_client(app) as client:
        job = await _create(client)
        store = client.app.state.store  # type: ignore[attr-defined]
        await age_job(store, job["id"], 60)  # the create counts as a refresh: one interval on
        answers = await asyncio.gather(*(client.get(f"{URL}/{job['id']}") for _ in range(200)))
    assert {r.status_code for r in answers} == {200}
    assert echo.calls["fetch"] == 1


async def test_the_lease_holds_across_two_gateway_processes(make_settings: Any) -> None:
    settings = _quiet(make_settings, GATEWAY_REFRESH_INTERVAL="60")
    one, two = EchoProvider(), EchoProvider()
    async with (
        app_client(create_app(settings, providers=[one])) as a,
        app_client(create_app(settings, providers=[two])) as b,
    ):
        job = await _create(a)
        store = a.app.state.store  # type: ignore[attr-defined]
        await age_job(store, job["id"], 60)  # one interval on: due
        polls = [c.get(f"{URL}/{job['id']}") for c in (a, b) for _ in range(50)]
        answers = await asyncio.gather(*polls)
        assert {r.status_code for r in answers} == {200}
        assert one.calls["fetch"] + two.calls["fetch"] == 1
        await age_job(store, job["id"], 60)  # next interval: one more call, from either process
        await asyncio.gather(*(c.get(f"{URL}/{job['id']}") for c in (a, b) for _ in range(20)))
        assert one.calls["fetch"] + two.calls["fetch"] == 2


async def test_a_poll_waits_for_the_refresh_another_process_has_under_way(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Process B's poll finds the lease held by A's refresh: it answers A's fresh
    snapshot (not the one older than the interval), and makes no call of its own."""
    settings = _quiet(make_settings, GATEWAY_REFRESH_INTERVAL="60")
    one, two = EchoProvider(), EchoProvider()
    one.fetch_gate = asyncio.Event()  # A's upstream call lasts until the test says so
    async with (
        app_client(create_app(settings, providers=[one])) as a,
        app_client(create_app(settings, providers=[two])) as b,
    ):
        job = await _create(a)
        assert job["status"] == "queued"
        await age_job(a.app.state.store, job["id"], 60)  # type: ignore[attr-defined]
        first = asyncio.ensure_future(a.get(f"{URL}/{job['id']}"))
        await eventually(lambda: one.calls["fetch"] == 1, what="A's upstream call under way")

        b_store = b.app.state.store  # type: ignore[attr-defined]
        begin, lease_refused = b_store.begin_refresh, asyncio.Event()

        async def watched(*args: Any, **kwargs: Any) -> Any:
            begun = await begin(*args, **kwargs)
            if not begun.leased:
                lease_refused.set()
            return begun

        monkeypatch.setattr(b_store, "begin_refresh", watched)
        second = asyncio.ensure_future(b.get(f"{URL}/{job['id']}"))
        await asyncio.wait_for(lease_refused.wait(), 30)  # B found A's lease: B waits
        one.fetch_gate.set()  # A's call answers; B sees A's snapshot within its wait
        answer = await second
        assert answer.json()["status"] == "in_progress"  # A's snapshot, not the old one
        assert "x-gateway-stale" not in answer.headers
        assert (await first).json()["status"] == "in_progress"
        assert (one.calls["fetch"], two.calls["fetch"]) == (1, 0)


async def test_a_final_job_costs_zero_upstream_calls(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    job = await _create(echo_client)
    while job["status"] != "completed":
        job = (await echo_client.get(f"{URL}/{job['id']}")).json()
    calls = echo.calls["fetch"]
    for _ in range(20):
        assert (await echo_client.get(f"{URL}/{job['id']}")).json()["status"] == "completed"
    assert echo.calls["fetch"] == calls
    store = echo_client.app.state.store  # type: ignore[attr-defined]
    assert await store.redis.zscore(store.due_key, job["id"]) is None


async def test_spent_budget_answers_the_cached_snapshot_never_an_error(
    make_settings: Any, echo: EchoProvider
) -> None:
    settings = _quiet(
        make_settings,
        GATEWAY_REFRESH_INTERVAL="0",
        GATEWAY_UPSTREAM_BUDGETS="echo=6",
        GATEWAY_UPSTREAM_BURST_SECONDS="30",
    )  # 6 a minute, a bucket of 30 s: 3 calls, then one per 10 s (no refill during the test)
    async with app_client(create_app(settings, providers=[echo])) as client:
        jobs = [await _create(client) for _ in range(5)]
        answers = [await client.get(f"{URL}/{j['id']}") for j in jobs]
        assert {r.status_code for r in answers} == {200}
        assert echo.calls["fetch"] == 3  # the bucket held three calls
        fresh = [r for r in answers if r.json()["status"] == "in_progress"]
        cached = [r for r in answers if r.json()["status"] == "queued"]
        assert len(fresh) == 3 and len(cached) == 2
        assert all(r.headers["x-gateway-stale"] == "true" for r in cached)
        metrics = (await client.get("/metrics")).text
        assert 'gateway_upstream_budget_denied_total{provider="echo"} 2.0' in metrics


async def test_the_burst_bounds_the_bucket(make_settings: Any, echo: EchoProvider) -> None:
    """6 a minute with a 20 s burst: two calls at once, then one every 10 s, not a whole
    minute's budget in one go (which would be twice the budget within a minute)."""
    settings = _quiet(
        make_settings,
        GATEWAY_REFRESH_INTERVAL="0",
        GATEWAY_UPSTREAM_BUDGETS="echo=6",
        GATEWAY_UPSTREAM_BURST_SECONDS="20",
    )
    async with app_client(create_app(settings, providers=[echo])) as client:
        jobs = [await _create(client) for _ in range(6)]
        answers = [await client.get(f"{URL}/{j['id']}") for j in jobs]
        assert echo.calls["fetch"] == 2
        assert sum(r.headers.get("x-gateway-stale") == "true" for r in answers) == 4
        bucket = client.app.state.jobs.limits.bucket_key("upstream:echo")  # type: ignore[attr-defined]
        await rewind_bucket(client.app.state.store.redis, bucket, 10)  # type: ignore[attr-defined]
        await client.get(f"{URL}/{jobs[-1]['id']}")
        assert echo.calls["fetch"] == 3


async def test_budget_is_shared_by_two_processes(make_settings: Any) -> None:
    settings = _quiet(
        make_settings,
        GATEWAY_REFRESH_INTERVAL="0",
        GATEWAY_UPSTREAM_BUDGETS="echo=8",
        GATEWAY_UPSTREAM_BURST_SECONDS="30",
    )  # a bucket of 4 calls, one more per 7.5 s (none during the test)
    one, two = EchoProvider(), EchoProvider()
    async with (
        app_client(create_app(settings, providers=[one])) as a,
        app_client(create_app(settings, providers=[two])) as b,
    ):
        jobs = [await _create(c) for c in (a, b) for _ in range(4)]
        clients = [a] * 4 + [b] * 4
        await asyncio.gather(
            *(c.get(f"{URL}/{j['id']}") for c, j in zip(clients, jobs, strict=True))
        )
    assert one.calls["fetch"] + two.calls["fetch"] == 4


async def test_the_refresher_advances_a_job_nobody_polls(
    make_settings: Any, echo: EchoProvider
) -> None:
    settings = make_settings(GATEWAY_REFRESH_INTERVAL="0.2")
    async with app_client(create_app(settings, providers=[echo])) as client:
        job = await _create(client)
        store = client.app.state.store  # type: ignore[attr-defined]
        await _completed(store, job["id"])
        assert echo.calls["fetch"] == 2  # WAITING -> RUNNING -> DONE, then nothing more
        assert await store.redis.zscore(store.due_key, job["id"]) is None
        await _refresher_went_past(client, echo)
        assert echo.fetched[job["id"]] == 2  # final: off the schedule for good


async def test_a_callback_updates_at_once_and_pushes_the_next_refresh_back(
    make_settings: Any, echo: EchoProvider
) -> None:
    settings = make_settings(GATEWAY_REFRESH_INTERVAL="0.2", GATEWAY_CALLBACK_DEFER="60")
    async with app_client(create_app(settings, providers=[echo])) as client:
        job = await _create(client, echo={"steps": 3})
        store = client.app.state.store  # type: ignore[attr-defined]
        token = (await store.get_job(job["id"])).callback_token
        r = await client.post(f"/v1/callbacks/echo/{job['id']}/{token}", json={"step": 1})
        assert r.json()["status"] == "in_progress"
        due = await store.redis.zscore(store.due_key, job["id"])
        assert due > time.time() + 50
        calls = echo.fetched[job["id"]]
        await _refresher_went_past(client, echo)  # intervals on: the refresher leaves it alone
        assert echo.fetched[job["id"]] == calls


async def test_a_refresh_costs_the_status_calls_its_fetch_makes(
    make_settings: Any, redis_url: str
) -> None:
    """MusicGPT asks byId once per task, however many conversions (native ids) it has;
    TemPolor asks once per native job. The budget is charged accordingly."""
    import msgspec
    from redis.asyncio import Redis

    from gateway.jobs.service import JobService
    from gateway.store.store import JobRecord, Store
    from providers import musicgpt, tempolor

    settings = make_settings(GATEWAY_UPSTREAM_BUDGETS="musicgpt=600,tempolor=600")
    providers = [musicgpt.create({}), tempolor.create({})]
    redis = Redis.from_url(redis_url)
    store = Store(redis, prefix="cost:", retention_seconds=60)
    jobs = JobService(store, providers, settings)
    now = time.time()
    record = JobRecord(
        id="mus_x",
        owner="key_x",
        provider="musicgpt",
        model="musicgpt/v7",
        status="in_progress",
        created_at=now,
        updated_at=now,
        native_ids=["task", "conversion-1", "conversion-2"],
    )
    bucket = jobs.refreshes.bucket(record)
    assert bucket is not None and bucket.cost == 1
    assert (bucket.capacity, bucket.per_second) == (50, 10)  # 5 s of 600 a minute
    other = msgspec.structs.replace(record, provider="tempolor", model="tempolor/v4.8")
    assert jobs.refreshes.bucket(other).cost == 3  # type: ignore[union-attr]
    await redis.aclose()


async def test_the_refresher_wakes_when_the_next_job_is_due(
    make_settings: Any, echo: EchoProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between claims the refresher sleeps until the next due time, not its whole idle
    period: with an idle period of 30 s, a job due every 0.2 s still advances."""

    class Off:
        def __init__(self, jobs: Any) -> None:
            pass

        async def run(self, stop: asyncio.Event) -> None:
            await stop.wait()

    monkeypatch.setattr(app_module, "Refresher", Off)  # only the test's own refresher runs
    settings = make_settings(GATEWAY_REFRESH_INTERVAL="0.2")
    async with app_client(create_app(settings, providers=[echo])) as client:
        job = await _create(client)
        store = client.app.state.store  # type: ignore[attr-defined]
        stop = asyncio.Event()
        refresher = Refresher(client.app.state.jobs, idle=30.0)  # type: ignore[attr-defined]
        task = asyncio.create_task(refresher.run(stop))
        try:
            # Well within the idle period: a refresher that slept it out would miss this.
            await _completed(store, job["id"], timeout=10)
            assert echo.calls["fetch"] == 2
        finally:
            stop.set()
            await task
        # its claims are counted: two took the job (one refresh each), the rest none
        metrics = (await client.get("/metrics")).text
        assert "gateway_refresher_claimed_jobs_total 2.0" in metrics
        claims = next(
            float(line.split()[1])
            for line in metrics.splitlines()
            if line.startswith("gateway_refresher_claims_total ")
        )
        assert claims >= 2


async def test_claim_due_says_when_the_next_job_is_due(make_settings: Any) -> None:
    app = create_app(_quiet(make_settings), providers=[EchoProvider()])
    async with app_client(app) as client:
        store = client.app.state.store  # type: ignore[attr-defined]
        assert await store.schedule.claim_due(10, 30.0, 1000.0) == ([], None)
        await store.schedule.add("mus_a", 900.0)
        await store.schedule.add("mus_b", 1005.5)
        claimed = await store.schedule.claim_due(10, 30.0, 1000.0)
        assert claimed.ids == ["mus_a"] and claimed.next_due == 1005.5
        assert await store.redis.zscore(store.due_key, "mus_a") == 1030.0  # pushed ahead
        assert await store.schedule.claim_due(10, 30.0, 1010.0) == (["mus_b"], 1030.0)
