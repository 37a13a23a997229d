"""Chaos: three gateway processes sharing a Redis Cluster (three masters, append-only
files fsynced on every write; the generation queue on its own Redis) and one S3 artefact
store, a load of creates and polls over all five providers' simulators with faults on;
one process killed (SIGKILL) in the middle of creates and of synchronous generations;
one cluster master killed (SIGKILL) and started again on its files; then calm.

Loopback only: the gateway processes (``tests/support/gateway_process.py``), the
simulators, each behind a ``Door`` that records which process sent what
(``tests/support/door.py``), a webhook receiver, ``rclone serve s3`` and the redis-servers
(``tests/support/chaos_redis.py``: the ``chaos_redis`` fixture is the one place that says
which topology; ``SingleRedis`` runs the same test on one server). The client side is
``tests/support/chaos_load.py``, the checks and figures ``tests/support/chaos_checks.py``.

Asserted, once everything has settled:

* every accepted create (2xx) ends ``completed`` or ``failed`` with a reason; none is
  unknown (``lost``); none is still in flight (``stuck``) once the bounds the gateway
  keeps have passed since the calm (``GATEWAY_UNKNOWN_OUTCOME_SECONDS``, a create's
  deadline + 10 s);
* no create reaches its provider twice (``doubled``: per marker, the calls at the door
  that may have created something), and a synchronous generation cut off by the kill
  fails ``upstream_outcome_unknown``;
* every completed output's ``audio_url`` serves audio (fetched and decoded);
* every status change a client saw after its create, and every final status, was
  delivered to the job's webhook, under one ``webhook-id`` (``{job id}.{status}``) per
  change (a message the killed process had claimed comes back after the outbox's claim,
  ``WEBHOOK_CLAIM``);
* an ``Idempotency-Key`` whose create died with its process answers its final job
  within the provider's read timeout + 10 s of the death, not 409
  ``request_in_progress`` for long; no key answered 409 longer;
* no answer is a 500 but for a known redis-py race (``unhandled_errors``).

The figures (accepted, final, lost, doubled, stuck, the longest 409 window, and more:
refusals, failure codes, webhook delays, status regressions seen) are printed
(``pytest -s``) and written to ``chaos-figures.json`` in the test's tmp dir, every
create's story to ``chaos-details.json``, each gateway's log to ``gateway-{a,b,c}.log``.

Usage::

    python3 -m uv run --frozen pytest tests/chaos -q -s
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.registry import SIMULATORS
from tests.conftest import TEST_KEY
from tests.support.chaos_checks import (
    audio_problems,
    figures,
    unhandled_errors,
    webhook_delays,
    webhook_problems,
)
from tests.support.chaos_load import MODELS, SYNC, Load, Order, Replicas
from tests.support.chaos_redis import ChaosRedis, ClusterRedis
from tests.support.door import Door
from tests.support.gateway_process import spawn_gateway, stop_gateway, wait_ready
from tests.support.receiver import Receiver, Recorder
from tests.support.s3 import RcloneS3
from tests.support.servers import free_port, serve
from tests.support.upstreams import Upstream
from tests.support.waiting import wait_until

READ_TIMEOUT = 3.0  # the asynchronous providers': their create deadline
SYNC_READ_TIMEOUT = 10.0  # the synchronous providers' (a generation takes SYNC_LATENCY)
SYNC_LATENCY = 2.0  # seconds a synchronous simulator "generates" while faults are on
MARGIN = 10.0  # what the issue allows past the read timeout for a dead create's key
UNKNOWN_OUTCOME = 12.0  # GATEWAY_UNKNOWN_OUTCOME_SECONDS
SLACK = 3.0  # polling and a loaded 2-core machine's scheduling
SETTLE = UNKNOWN_OUTCOME + READ_TIMEOUT + MARGIN + 10.0  # hang detector past the calm
#: The webhook outbox's claim (``WebhookOutbox``, 60 s): a message claimed by the killed
#: process, or whose claim a Redis failure interrupted, is delivered that much later.
WEBHOOK_CLAIM = 60.0
WORKERS = 5

#: Faults on, per simulator (``POST /__sim__/config`` patches); each counted rule hits
#: the next N matching requests.
FAULTS: dict[str, dict[str, Any]] = {
    "musicgpt": {
        "queue_seconds": 0.3,
        "progress_seconds": 0.6,
        "callback_duplicates": 1,
        "faults": [
            {"status": 503, "endpoints": ["create"], "count": 2},
            {"status": 500, "endpoints": ["status"], "count": 8},
            {"malformed": True, "endpoints": ["status"], "count": 3},
        ],
    },
    "tempolor": {
        "queue_seconds": 0.2,
        "generate_seconds": 0.6,
        "fault_status": 500,
        "fault_endpoints": ["status"],
        "fault_count": 8,
    },
    "suno": {
        "text_seconds": 0.2,
        "first_seconds": 0.5,
        "complete_seconds": 0.8,
        "callback_duplicates": 1,
        "faults": [
            {"code": 430, "endpoints": ["create"], "count": 2},
            {"code": 500, "endpoints": ["status"], "count": 6},
            {"malformed": True, "endpoints": ["status"], "count": 3},
        ],
    },
    "elevenlabs": {
        "latency": SYNC_LATENCY,
        "default_length_ms": 2000,
        "faults": [
            {"kind": "too_many_concurrent_requests", "count": 3, "retry_after": 0.5},
            {"kind": "server_error", "count": 1},
            {"kind": "disconnect", "count": 1, "after_bytes": 4000},
        ],
    },
    "minimax": {
        "latency": SYNC_LATENCY,
        "length_ms": 2000,
        "faults": [
            {"kind": "rate_limited", "count": 2, "retry_after": 0.5},
            {"kind": "http_error", "count": 1},
            {"kind": "disconnect", "count": 1, "after_bytes": 2000},
        ],
    },
}
#: Around the kill, MusicGPT takes every create (the job exists upstream) and answers it
#: 15 s late; such jobs call back only after a minute (nothing reconciles them here).
CREATES_DIE: dict[str, Any] = {
    "queue_seconds": 60.0,
    "faults": [{"latency": 15.0, "endpoints": ["create"], "count": None, "after_create": True}],
}
#: Faults off: the state everything settles in.
CALM: dict[str, dict[str, Any]] = {
    "musicgpt": {"faults": [], "queue_seconds": 0.3},
    "tempolor": {"fault_status": None, "fault_count": None},
    "suno": {"faults": []},
    "elevenlabs": {"faults": [], "latency": 0.2},
    "minimax": {"faults": [], "latency": 0.2},
}


@pytest.fixture
def chaos_redis(tmp_path: Path) -> Iterator[ChaosRedis]:
    """The Redis topology every gateway process shares, and whose one server restarts
    (``SingleRedis`` here runs the same test on one Redis)."""
    with ClusterRedis(tmp_path / "redis") as redis:
        yield redis


@pytest.fixture
def doors() -> Iterator[dict[str, tuple[str, Door]]]:
    """Every registered provider's simulator behind its door: name -> (URL, door)."""
    with contextlib.ExitStack() as stack:
        found = {}
        for name in MODELS:
            door = Door(SIMULATORS[name].create_app())
            found[name] = (stack.enter_context(serve(door)), door)
        yield found


@pytest.fixture
def hooks() -> Iterator[tuple[str, Recorder]]:
    receiver = Receiver()
    with serve(receiver) as base:
        receiver.base = base
        yield receiver.add()


def gateway_env(
    tmp: Path, redis: ChaosRedis, s3: RcloneS3, doors: dict[str, tuple[str, Door]], public: str
) -> dict[str, dict[str, str]]:
    """The environment of each of the three processes, ``a``, ``b`` and ``c``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    shared = {
        **base,
        **redis.env(),
        **s3.env(),
        "GATEWAY_REDIS_PREFIX": "chaos:",
        "GATEWAY_API_KEYS": TEST_KEY,
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_PUBLIC_URL": public,  # the provider callbacks' way in
        "GATEWAY_ARTEFACT_STORE": f"s3://artefacts/chaos{secrets.token_hex(4)}",
        "GATEWAY_ARTEFACT_MIRROR": "true",
        "GATEWAY_WEBHOOK_ALLOW_PRIVATE": "true",
        "GATEWAY_WEBHOOK_RETRY_SCHEDULE": "0,0.5,1,2,2,2,2,2",
        "GATEWAY_WORKER_HEARTBEAT": "0.5",
        "GATEWAY_UNKNOWN_OUTCOME_SECONDS": str(UNKNOWN_OUTCOME),
        "GATEWAY_REFRESH_INTERVAL": "0.5",
        "GATEWAY_CALLBACK_DEFER": "2",
        "GATEWAY_UPSTREAM_BUDGETS": "musicgpt=60000,tempolor=60000,suno=60000",
        "GATEWAY_RATE_LIMIT_RPM": "0",
        "GATEWAY_MAX_INFLIGHT_JOBS": "0",
        "GATEWAY_BREAKER_FAILURES": "10",
        "GATEWAY_BREAKER_COOLDOWN": "2",
        "GATEWAY_REDIS_TIMEOUT": "5",
        "GATEWAY_CONCURRENCY": "elevenlabs=3,minimax=3",
    }
    timeouts = {}
    for prefix in ("MUSICGPT", "USEAPI", "SUNO", "ELEVENLABS", "MINIMAX"):
        read = SYNC_READ_TIMEOUT if prefix in ("ELEVENLABS", "MINIMAX") else READ_TIMEOUT
        timeouts[f"{prefix}_READ_TIMEOUT"] = str(read)
        timeouts[f"{prefix}_CONNECT_TIMEOUT"] = "1"
    envs = {}
    for name in ("a", "b", "c"):
        providers: dict[str, str] = {}
        for provider, (url, _) in doors.items():
            providers.update(SIMULATORS[provider].env_for(f"{url}/via/{name}"))
        data = tmp / f"gateway-{name}"
        data.mkdir()
        envs[name] = {**shared, **timeouts, **providers, "GATEWAY_DATA_DIR": str(data)}
    return envs


def configure(doors: dict[str, tuple[str, Door]], patches: dict[str, dict[str, Any]]) -> None:
    with httpx.Client(timeout=10) as http:
        for name, patch in patches.items():
            Upstream.configure(http, doors[name][0], patch)


def kill_mid_flight(
    proc: Any, load: Load, doors: dict[str, tuple[str, Door]]
) -> tuple[Order, float, threading.Thread, list[str]]:
    """SIGKILL process ``a`` while one of its synchronous generations has just begun
    upstream and a MusicGPT create it sent (with an Idempotency-Key) waits for its
    answer. Answers that create's order, the moment of death, the thread retrying its
    key on the other processes, and the markers of the generations cut off."""

    def fresh_generation() -> bool:
        now = time.monotonic()
        return any(
            now - call.started < SYNC_LATENCY / 2
            for name in SYNC
            for call in doors[name][1].in_flight("a")
        )

    wait_until(fresh_generation, timeout=30, what="a generation under way on a")
    configure(doors, {"musicgpt": CREATES_DIE})
    doomed = load.order("musicgpt")
    retrying = threading.Thread(target=load.submit, args=(doomed,), kwargs={"first": "a"})
    retrying.start()
    wait_until(lambda: doors["musicgpt"][1].calls_for(doomed.marker), what="its create sent")
    wait_until(fresh_generation, timeout=30, what="a generation under way on a")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    died = time.monotonic()
    load.replicas.kill("a")
    cut = [c.marker for name in SYNC for c in doors[name][1].in_flight("a")]
    configure(doors, {"musicgpt": FAULTS["musicgpt"]})
    return doomed, died, retrying, cut


@pytest.mark.timeout(240)
def test_chaos(
    tmp_path: Path,
    chaos_redis: ChaosRedis,
    s3_server: RcloneS3,
    doors: dict[str, tuple[str, Door]],
    hooks: tuple[str, Recorder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="httpx")  # a line per request is too many
    caplog.set_level(logging.CRITICAL, logger="uvicorn.error")  # the faults' own tracebacks
    began = time.monotonic()
    ports = {name: free_port() for name in ("a", "b", "c")}
    bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    envs = gateway_env(tmp_path, chaos_redis, s3_server, doors, public=bases["c"])
    logs = {name: tmp_path / f"gateway-{name}.log" for name in ports}
    procs = {name: spawn_gateway(envs[name], ports[name], logs[name]) for name in ports}
    hook_url, delivered = hooks
    load = Load(Replicas(bases), webhook_url=hook_url, token=TEST_KEY)
    stop = threading.Event()
    try:
        for name, proc in procs.items():
            wait_ready(proc, ports[name], logs[name], timeout=60)
        configure(doors, FAULTS)
        workers = load.start(stop, WORKERS)
        wait_until(lambda: load.accepted_since(began) >= 20, timeout=60, what="a load")

        doomed, died, retrying, cut = kill_mid_flight(procs["a"], load, doors)
        wait_until(lambda: load.accepted_since(died) >= 10, timeout=60, what="creates after a")
        redis_down = chaos_redis.restart_one()
        back = time.monotonic()
        wait_until(lambda: load.accepted_since(back) >= 15, timeout=60, what="creates after Redis")
        stop.set()
        configure(doors, CALM)
        calm = time.monotonic()
        for thread in [*workers, retrying]:
            thread.join(timeout=90)
        assert not any(t.is_alive() for t in [*workers, retrying]), "a client never finished"

        jobs = load.settle(deadline=calm + SETTLE)
        missing: list[str] = []

        def all_delivered() -> bool:
            missing[:] = webhook_problems(load.orders, jobs, delivered)
            return not missing

        with contextlib.suppress(AssertionError):  # what is missing is asserted below
            wait_until(all_delivered, timeout=WEBHOOK_CLAIM + 15, what="webhooks delivered")
        served, sounds = audio_problems(load, jobs, tmp_path)
        numbers = figures(load, jobs, doors, doomed, died, cut, redis_down)
        numbers["webhook_problems"] = len(missing)
        numbers["webhooks_delivered"] = len(delivered.calls)
        delays = webhook_delays(load.orders, jobs, delivered)
        numbers["slowest_final_webhook_seconds"] = round(max(delays, default=0.0), 2)
        numbers["audio_outputs_served"] = served
        numbers["unhandled_errors"] = errors = unhandled_errors(list(logs.values()))
        numbers["seconds"] = round(time.monotonic() - began, 1)
        (tmp_path / "chaos-figures.json").write_text(json.dumps(numbers, indent=2))
        orders = [
            {k: v for k, v in vars(o).items() if k != "body"} | {"last": jobs.get(o.job_id or "")}
            for o in load.orders
        ]
        details = {"webhook_problems": missing, "audio_problems": sounds, "orders": orders}
        (tmp_path / "chaos-details.json").write_text(json.dumps(details, indent=1, default=str))
        print("\nchaos figures:", json.dumps(numbers, indent=2))

        assert not load.crashes, load.crashes
        assert not load.unexpected, load.unexpected[:5]
        assert numbers["accepted"] >= 45, numbers
        assert numbers["lost"] == 0 and numbers["stuck"] == 0, numbers
        assert numbers["final"] == numbers["accepted"], numbers
        assert numbers["failed_without_reason"] == 0, numbers
        assert numbers["doubled"] == 0, numbers
        assert errors["other"] == 0, errors  # 500s: only the known redis-py race
        assert missing == [], missing[:5]
        assert sounds == [], sounds[:5]
        # the generations cut off by the kill: failed, never sent again
        assert cut and numbers["cut_generations_not_unknown"] == 0, numbers
        # the key whose create died with its process
        assert doomed.first_409 is not None and doomed.accepted, vars(doomed)
        settled = jobs[doomed.job_id or ""] or {}
        assert (settled.get("error") or {}).get("code") == "upstream_outcome_unknown", settled
        assert numbers["dead_key_409_after_death"] <= READ_TIMEOUT + MARGIN + SLACK, numbers
        assert numbers["longest_409_window"] <= READ_TIMEOUT + MARGIN + SLACK, numbers
    finally:
        stop.set()
        load.close()
        for proc in procs.values():
            stop_gateway(proc)
