"""Upstream faults, end to end, for every provider: client -> gateway -> simulator.

The gateway and each provider's simulator are served over real HTTP on loopback; the
simulator's knobs (``tests/support/upstreams.py``) produce one fault class per test and
the assertions read both sides: the client's answers, ``/ready`` and ``/metrics``, the
simulator's counters and the job records in Redis.

Usage::

    python3 -m uv run --frozen pytest tests/providers/test_fault_injection.py -q
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from gateway.jobs.sending import CREATE_RETRIES
from gateway.store.store import JobRecord
from tests.conftest import TEST_KEY
from tests.support.clock import FakeClock, use_breaker_clock
from tests.support.servers import free_port, serve
from tests.support.upstreams import UPSTREAMS, Upstream
from tests.support.waiting import wait_until

URL = "/v1/music/generate"
# The provider's read timeout where a create answer is held back: every other answer of
# the simulator comes within milliseconds, well within it even on a loaded machine.
READ_TIMEOUT = 1.5
LATE = 5.0  # how late the simulator answers such a create (well past READ_TIMEOUT)
POLL_RETRIES = 2


class Sim:
    """One provider's simulator served for the module, and its control endpoints."""

    def __init__(self, up: Upstream, url: str, http: httpx.Client) -> None:
        self.up, self.url, self.http = up, url, http

    def set(self, patch: dict[str, Any]) -> None:
        self.up.configure(self.http, self.url, patch)

    def stats(self) -> dict[str, Any]:
        return self.up.stats(self.http, self.url)


class Gateway:
    """A served gateway: an authenticated client, its settings and its Redis records
    (``app``: the app itself, served in a thread)."""

    def __init__(self, client: httpx.Client, settings: Settings, app: Any) -> None:
        self.client, self.settings, self.app = client, settings, app

    def create(self, up: Upstream, key: str | None = None, **body: Any) -> httpx.Response:
        body = {"model": up.model, "prompt": "a calm lo-fi beat for fault drills", **body}
        headers = {"Idempotency-Key": key} if key else {}
        return self.client.post(URL, json=body, headers=headers)

    def get(self, job_id: str) -> httpx.Response:
        return self.client.get(f"{URL}/{job_id}")

    def wait(self, job_id: str, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        def polled() -> dict[str, Any] | None:
            r = self.get(job_id)
            assert r.status_code == 200, r.text
            return r.json() if until(r.json()) else None

        return wait_until(polled, interval=0.05, what=f"{job_id} {until.__name__}")

    def circuit(self, provider: str) -> str:
        r = self.client.get("/ready")
        assert r.status_code == 200, r.text
        return r.json()["providers"][provider]["circuit"]

    def upstream_calls(self, provider: str, operation: str, outcome: str) -> float:
        text = self.client.get("/metrics").text
        for family in text_string_to_metric_families(text):
            if family.name != "gateway_upstream_calls":
                continue
            for sample in family.samples:
                labels = sample.labels
                if sample.name.endswith("_total") and labels == {
                    "provider": provider,
                    "operation": operation,
                    "outcome": outcome,
                }:
                    return sample.value
        return 0.0

    def records(self) -> list[JobRecord]:
        """Every job record this gateway stored (its Redis key prefix is its own)."""
        decoder = msgspec.msgpack.Decoder(JobRecord)
        url = self.settings.redis_url
        assert url is not None
        with contextlib.closing(redis.Redis.from_url(url)) as r:
            names = list(r.scan_iter(match=f"{self.settings.redis_prefix}job:*", count=500))
            return [decoder.decode(raw) for raw in r.mget(names) if raw] if names else []


def final(job: dict[str, Any]) -> bool:
    return job["status"] in ("completed", "failed")


@pytest.fixture(scope="module", params=sorted(UPSTREAMS))
def sim_server(request: pytest.FixtureRequest) -> Iterator[Sim]:
    up = UPSTREAMS[request.param]
    with serve(up.app()) as url, httpx.Client(timeout=10) as http:
        yield Sim(up, url, http)


@pytest.fixture
def sim(sim_server: Sim) -> Sim:
    """The simulator with no faults, short timings, callbacks on and zeroed counters."""
    sim_server.up.reset(sim_server.http, sim_server.url)
    sim_server.set(sim_server.up.fast())
    return sim_server


@pytest.fixture
def up(sim: Sim) -> Upstream:
    return sim.up


@pytest.fixture
def gateway(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Gateway]]:
    """``gateway(env, callbacks=False)``: serve a gateway built from ``env`` on loopback;
    with ``callbacks`` its ``GATEWAY_PUBLIC_URL`` is its own address."""
    with contextlib.ExitStack() as stack:

        def start(env: dict[str, str], *, callbacks: bool = False) -> Gateway:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            public = {"GATEWAY_PUBLIC_URL": base} if callbacks else {}
            settings = make_settings(
                GATEWAY_REFRESH_INTERVAL="0",
                GATEWAY_POLL_RETRIES=str(POLL_RETRIES),
                GATEWAY_RATE_LIMIT_RPM="0",
                **public,
                **env,
            )
            app = create_app(settings)
            stack.enter_context(serve(app, port))
            client = stack.enter_context(
                httpx.Client(
                    base_url=base, headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=20
                )
            )
            return Gateway(client, settings, app)

        yield start


# ------------------------------------------------------------------ create faults


def test_create_5xx_is_a_502_stored_failed_and_replayed_without_a_second_create(
    gateway: Callable[..., Gateway], sim: Sim, up: Upstream
) -> None:
    sim.set(up.create_error(503))
    gw = gateway(up.env(sim.url))
    first = gw.create(up, key="order-5xx")
    assert first.status_code == 502, first.text
    assert first.json()["error"] == "upstream_error"
    (record,) = gw.records()
    assert record.status == "failed" and record.answer_status == 502
    assert record.error is not None and record.error.code == "upstream_error"
    again = gw.create(up, key="order-5xx")
    assert again.status_code == 502 and again.json()["error"] == "upstream_error"
    stats = sim.stats()
    assert stats["create_calls"] == 1  # the 5xx came from upstream: never re-sent
    assert up.jobs_made(stats) == 0
    assert len(gw.records()) == 1


def test_create_429_is_upstream_rate_limited_with_the_upstream_retry_after(
    gateway: Callable[..., Gateway], sim: Sim, up: Upstream
) -> None:
    sim.set(up.create_error(429, retry_after=7))
    gw = gateway(up.env(sim.url))
    r = gw.create(up)
    assert r.status_code == 429, r.text
    assert r.json()["error"] == "upstream_rate_limited"
    assert r.headers["Retry-After"] == "7"
    assert sim.stats()["create_calls"] == 1


def test_create_429_without_an_upstream_retry_after_still_says_when_to_retry(
    gateway: Callable[..., Gateway], sim: Sim, up: Upstream
) -> None:
    """MusicGPT documents no Retry-After on its 429s: the client still gets one."""
    sim.set(up.create_error(429))
    gw = gateway(up.env(sim.url))
    r = gw.create(up)
    assert r.status_code == 429, r.text
    assert r.json()["error"] == "upstream_rate_limited"
    assert int(r.headers.get("Retry-After", "0")) >= 1, dict(r.headers)


def test_create_answer_lost_with_callbacks_is_reconciled_not_resent(
    gateway: Callable[..., Gateway], sim: Sim, up: Upstream
) -> None:
    sim.set(up.create_answer_late(LATE, count=1))
    gw = gateway(up.env(sim.url, read_timeout=READ_TIMEOUT), callbacks=True)
    r = gw.create(up, key="order-late")
    assert r.status_code == 200, r.text
    job = r.json()
    # Usually queued; the provider's callbacks may even have completed it while the
    # gateway still waited for the lost answer. Never failed.
    assert job["status"] in ("queued", "in_progress", "completed"), job
    stats = sim.stats()
    assert stats["create_calls"] == 1 and up.jobs_made(stats) == 1  # sent once, accepted
    done = gw.wait(job["id"], final)
    assert done["status"] == "completed", done
    assert done["nativeResponseId"]  # adopted from the provider's callback
    assert all(o["audio_url"] for o in done["output"])
    replay = gw.create(up, key="order-late")
    assert replay.status_code == 200 and replay.json()["id"] == job["id"]
    stats = sim.stats()
    assert stats["create_calls"] == 1 and up.jobs_made(stats) == 1
    assert stats["callbacks_sent"] >= 1  # the reconciling callback was answered 2xx


def test_create_answer_lost_without_callbacks_is_a_504_outcome_unknown(
    gateway: Callable[..., Gateway], sim: Sim, up: Upstream
) -> None:
    sim.set(up.create_answer_late(LATE, count=None))
    gw = gateway(up.env(sim.url, read_timeout=READ_TIMEOUT))
    r = gw.create(up, key="order-unknown")
    assert r.status_code == 504, r.text
    assert r.json()["error"] == "upstream_outcome_unknown"
    again = gw.create(up, key="order-unknown")  # a retry with the key: the same answer
    assert again.status_code == 504 and again.json()["error"] == "upstream_outcome_unknown"
    (record,) = gw.records()
    assert record.status == "failed" and record.native_id is None
    stats = sim.stats()
    assert stats["create_calls"] == 1 and up.jobs_made(stats) == 1  # never sent again


def test_create_never_confirmed_fails_with_outcome_unknown_after_the_bound(
    gateway: Callable[..., Gateway], sim: Sim, up: Upstream
) -> None:
    sim.set({**up.create_answer_late(LATE, count=1), **up.callbacks(False)})
    # The bound is counted from the job's creation; it never ends a create still waiting
    # for its answer (tests/gateway/test_lost_creates.py), but one beyond the read timeout
    # lets the create answer "queued" first. (The create is the only upstream call here:
    # a short read timeout cuts nothing else.)
    gw = gateway(
        {**up.env(sim.url, read_timeout=0.5), "GATEWAY_UNKNOWN_OUTCOME_SECONDS": "3"},
        callbacks=True,
    )
    r = gw.create(up)
    assert r.status_code == 200 and r.json()["status"] == "queued", r.text
    done = gw.wait(r.json()["id"], final)
    assert done["status"] == "failed" and done["nativeResponseId"] is None
    assert done["error"]["code"] == "upstream_outcome_unknown"
    stats = sim.stats()
    assert stats["create_calls"] == 1 and up.jobs_made(stats) == 1


def test_connect_failure_is_retried_then_the_circuit_opens_and_recovers(
    gateway: Callable[..., Gateway], up: Upstream
) -> None:
    port = free_port()  # nothing listens here until the simulator is started below
    url = f"http://127.0.0.1:{port}"
    gw = gateway(
        {
            **up.env(url, connect_timeout=2.0),
            "GATEWAY_BREAKER_FAILURES": "4",
            "GATEWAY_BREAKER_COOLDOWN": "2",
        }
    )
    clock = FakeClock()  # the cooldown passes when the test says so, after its checks
    breaker = use_breaker_clock(gw.app, up.name, clock)
    first = gw.create(up)
    assert first.status_code in (502, 504), first.text
    # No request can have left: the create was tried again, up to the retry budget.
    tries = sum(
        gw.upstream_calls(up.name, "submit", c) for c in ("upstream_error", "upstream_timeout")
    )
    assert tries == CREATE_RETRIES + 1
    answers = [first.status_code]
    for _ in range(4):
        r = gw.create(up)
        answers.append(r.status_code)
        if r.status_code == 503:
            break
        assert r.status_code in (502, 504), r.text
    assert r.status_code == 503, answers
    assert r.json()["error"] == "provider_unavailable"
    assert int(r.headers["Retry-After"]) >= 1
    assert gw.circuit(up.name) == "open"
    before = gw.upstream_calls(up.name, "submit", "upstream_error")
    assert gw.create(up).status_code == 503  # fails fast: nothing sent upstream
    assert gw.upstream_calls(up.name, "submit", "upstream_error") == before
    with serve(up.app(), port), httpx.Client() as http:
        up.configure(http, url, up.fast())
        assert gw.circuit(up.name) == "open"
        clock.advance(breaker.cooldown)  # the cooldown passes
        assert gw.circuit(up.name) == "half_open"
        r = gw.create(up)
        assert r.status_code == 200, r.text
        assert gw.circuit(up.name) == "closed"
        assert gw.wait(r.json()["id"], final)["status"] == "completed"
        assert up.stats(http, url)["create_calls"] == 1


# ------------------------------------------------------------------- poll faults


@pytest.fixture
def polled(gateway: Callable[..., Gateway], sim: Sim, up: Upstream) -> tuple[Gateway, str]:
    """A gateway (breaker out of the way) and a fresh job on it, not yet polled."""
    sim.set(up.fast(queue=0.2, run=0.4))
    gw = gateway({**up.env(sim.url), "GATEWAY_BREAKER_FAILURES": "100"})
    r = gw.create(up)
    assert r.status_code == 200 and r.json()["status"] == "queued", r.text
    return gw, r.json()["id"]


def test_status_5xx_fewer_times_than_the_retries_is_absorbed(
    polled: tuple[Gateway, str], sim: Sim, up: Upstream
) -> None:
    gw, job_id = polled
    sim.set(up.status_error(502, count=POLL_RETRIES))
    r = gw.get(job_id)
    assert r.status_code == 200, r.text
    assert "X-Gateway-Stale" not in r.headers  # the last retry got through
    assert sim.stats()["faults_injected"] == POLL_RETRIES
    assert gw.wait(job_id, final)["status"] == "completed"


@pytest.mark.parametrize("fault", ["5xx", "malformed"])
def test_status_failing_beyond_the_retries_answers_the_cached_job_as_stale(
    polled: tuple[Gateway, str], sim: Sim, up: Upstream, fault: str
) -> None:
    gw, job_id = polled
    sim.set(up.status_error(500) if fault == "5xx" else up.status_malformed())
    r = gw.get(job_id)
    assert r.status_code == 200, r.text
    assert r.headers.get("X-Gateway-Stale") == "true"
    assert r.json()["id"] == job_id and r.json()["status"] == "queued"
    assert sim.stats()["faults_injected"] == POLL_RETRIES + 1  # bounded retries
    sim.set(up.fast())
    done = gw.wait(job_id, final)
    assert done["status"] == "completed"
    r = gw.get(job_id)
    assert r.status_code == 200 and "X-Gateway-Stale" not in r.headers
