"""Redis outage against a dedicated, real redis-server: killed, then frozen, mid-traffic.

While Redis is down every request answers 503 ``store_unavailable`` within a bound (a hang
detector, not a speed target), ``/ready`` says not ready, no create is accepted, and the
same app serves again by itself once Redis is back; every job ever accepted is still
there (the server persists with an fsynced append-only file).

Usage::

    python3 -m uv run --frozen pytest tests/gateway/test_redis_outage.py -q
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from gateway.store.embedded import EmbeddedRedis
from gateway.store.keys import hash_key, key_id_for
from tests.conftest import TEST_KEY, app_client
from tests.support.echo import EchoProvider
from tests.support.servers import free_port
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(120)

URL = "/v1/music/generate"
BODY = {"model": "echo/v1", "prompt": "lofi beat"}
# The gateway's Redis timeout here: short, yet no stall of a loaded machine reaches it
# while Redis is up (a 503 once Redis is back fails the test).
REDIS_TIMEOUT = 1.0
# A hang detector, not a speed target: five times REDIS_TIMEOUT (a request answers in
# about one timeout), yet half the ~10 s that redis-py's default retry policy (10
# jittered retries, timeouts included) would spend on one frozen-server request.
HANG_BOUND = 5.0
LOOPS = 4


class Outcome(msgspec.Struct, frozen=True):
    """One request of the background traffic, tagged with the phase it started/ended in."""

    kind: str  # "create" | "get"
    start: str  # "up" | "down" | "restarting" | "back"
    end: str
    status: int
    error: str | None
    retry_after: str | None
    job_id: str | None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server for this test only: TCP, appendonly yes, appendfsync always."""
    server = EmbeddedRedis(tmp_path / "outage-redis", persist=True, port=free_port())
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.send_signal(signal.SIGCONT)  # a stopped server ignores SIGTERM
        server.stop()


def outage_settings(make_settings: Callable[..., Settings], server: EmbeddedRedis) -> Settings:
    return make_settings(
        REDIS_URL=server.url,
        GATEWAY_REDIS_TIMEOUT=str(REDIS_TIMEOUT),
        GATEWAY_REFRESH_INTERVAL="0",
    )


async def bounded(request: Awaitable[httpx.Response]) -> httpx.Response:
    """The answer, failing the test when it takes longer than HANG_BOUND."""
    try:
        return await asyncio.wait_for(request, HANG_BOUND)
    except TimeoutError:
        pytest.fail(f"a request hung for more than {HANG_BOUND} s while Redis was unavailable")


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until ``check`` is true; fail (naming ``what``) after the helper's deadline."""
    await eventually(check, what=what)


def error_code(r: httpx.Response) -> str | None:
    if r.status_code < 400:
        return None
    return r.json()["error"]


def assert_store_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["error"] == "store_unavailable" and body["status_code"] == 503
    assert body["request_id"] == r.headers["X-Request-ID"]
    assert r.headers["Retry-After"] == "2"


async def test_redis_killed_mid_traffic_answers_503_then_recovers_with_every_job(
    own_redis: EmbeddedRedis, make_settings: Callable[..., Settings], echo: EchoProvider
) -> None:
    app = create_app(outage_settings(make_settings, own_redis), providers=[echo])
    phase = "up"
    outcomes: list[Outcome] = []
    stop = asyncio.Event()

    async def call(kind: str, request: Awaitable[httpx.Response]) -> httpx.Response:
        started = phase
        r = await bounded(request)
        job_id = r.json()["id"] if kind == "create" and r.status_code == 200 else None
        outcomes.append(
            Outcome(
                kind=kind,
                start=started,
                end=phase,
                status=r.status_code,
                error=error_code(r),
                retry_after=r.headers.get("Retry-After"),
                job_id=job_id,
            )
        )
        return r

    async def traffic(client: httpx.AsyncClient) -> None:
        mine: list[str] = []
        while not stop.is_set():
            r = await call("create", client.post(URL, json=BODY))
            if r.status_code == 200:
                mine.append(r.json()["id"])
            if mine:
                await call("get", client.get(f"{URL}/{mine[-1]}"))
            await asyncio.sleep(0.01)

    def count(kind: str, start: str, status: int | None = None) -> int:
        return sum(
            1
            for o in outcomes
            if o.kind == kind and o.start == start and (status is None or o.status == status)
        )

    async def some(kind: str, start: str, n: int, status: int | None = None) -> bool:
        return count(kind, start, status) >= n

    async with app_client(app) as client:
        loops = [asyncio.create_task(traffic(client)) for _ in range(LOOPS)]
        try:
            await until(lambda: some("create", "up", 12, 200), "creates before the kill")
            await until(lambda: some("get", "up", 4, 200), "polls before the kill")

            assert own_redis.process is not None
            own_redis.process.kill()  # SIGKILL: no shutdown, no final flush
            own_redis.process.wait(timeout=10)
            phase = "down"

            await until(lambda: some("create", "down", 4 * LOOPS), "creates during the outage")
            await until(lambda: some("get", "down", 2 * LOOPS), "polls during the outage")
            r = await bounded(client.get("/ready"))
            assert r.status_code == 503
            assert r.json()["status"] == "not_ready" and r.json()["redis"] is False

            phase = "restarting"
            own_redis.start()  # same port, same directory: the AOF is replayed
            phase = "back"

            await until(lambda: some("create", "back", 1, 200), "a create after the restart")
            await until(lambda: some("get", "back", LOOPS, 200), "polls after the restart")
        finally:
            stop.set()
            await asyncio.gather(*loops)

        # While down (started and answered before the restart): 503 store_unavailable only.
        down = [o for o in outcomes if o.start == "down" and o.end == "down"]
        assert len(down) >= 6 * LOOPS
        for o in down:
            assert (o.status, o.error, o.retry_after) == (503, "store_unavailable", "2"), o
        # Once Redis is back, dead pooled connections are replaced without a single 503.
        back = [o for o in outcomes if o.start == "back"]
        assert back and all(o.status == 200 for o in back), back
        # In flight across the kill or the restart: either answer, nothing else.
        for o in outcomes:
            assert o.status == 200 or (o.status, o.error) == (503, "store_unavailable"), o

        r = await bounded(client.get("/ready"))
        assert r.status_code == 200 and r.json()["redis"] is True

        # Every job ever answered 200 is still stored, with its owner and a native job.
        accepted = [o.job_id for o in outcomes if o.job_id is not None]
        assert len(accepted) == len(set(accepted))
        assert sum(1 for o in outcomes if o.job_id and o.start == "up") >= 12
        owner = key_id_for(hash_key(TEST_KEY))
        store = client.app.state.store
        native_ids = set()
        for job_id in accepted:
            record = await store.get_job(job_id)
            assert record is not None, f"{job_id} was answered 200 but is not stored"
            assert record.owner == owner
            assert record.status in {"queued", "in_progress", "completed"}
            assert record.native_id is not None
            native_ids.add(record.native_id)
            r = await client.get(f"{URL}/{job_id}")
            assert r.status_code == 200 and r.json()["id"] == job_id
            assert r.json()["status"] in {"in_progress", "completed"}
        # Nothing was accepted without an upstream submit of its own.
        assert len(native_ids) == len(accepted)
        assert echo.calls["submit"] >= len(accepted)


async def test_redis_frozen_answers_503_within_the_bound_then_recovers(
    own_redis: EmbeddedRedis, make_settings: Callable[..., Settings], echo: EchoProvider
) -> None:
    app = create_app(outage_settings(make_settings, own_redis), providers=[echo])
    async with app_client(app) as client:
        r = await client.post(URL, json=BODY)
        assert r.status_code == 200, r.text
        job_id = r.json()["id"]
        submits = echo.calls["submit"]

        assert own_redis.process is not None
        own_redis.process.send_signal(signal.SIGSTOP)  # accepts connections, never answers
        try:
            assert_store_unavailable(await bounded(client.get(f"{URL}/{job_id}")))
            assert_store_unavailable(await bounded(client.post(URL, json=BODY)))
            r = await bounded(client.get("/ready"))
            assert r.status_code == 503 and r.json()["redis"] is False
            assert echo.calls["submit"] == submits  # nothing sent upstream unstored
        finally:
            own_redis.process.send_signal(signal.SIGCONT)

        async def served() -> bool:
            return (await bounded(client.get(f"{URL}/{job_id}"))).status_code == 200

        await until(served, "a poll after SIGCONT")
        r = await bounded(client.post(URL, json=BODY))
        assert r.status_code == 200, r.text
        assert (await client.get("/ready")).status_code == 200


async def test_redis_restart_between_requests_costs_no_503(
    own_redis: EmbeddedRedis, make_settings: Callable[..., Settings], echo: EchoProvider
) -> None:
    app = create_app(outage_settings(make_settings, own_redis), providers=[echo])
    async with app_client(app) as client:
        created = await asyncio.gather(*(client.post(URL, json=BODY) for _ in range(LOOPS)))
        assert [r.status_code for r in created] == [200] * LOOPS  # several pooled connections
        assert own_redis.process is not None
        own_redis.process.kill()
        own_redis.process.wait(timeout=10)
        own_redis.start()  # every pooled connection now points at a dead server

        polls = await asyncio.gather(
            *(bounded(client.get(f"{URL}/{r.json()['id']}")) for r in created)
        )
        assert [r.status_code for r in polls] == [200] * LOOPS, [r.text for r in polls]
        assert (await bounded(client.get("/ready"))).status_code == 200
