"""A gateway process killed (SIGKILL) in the middle of an asynchronous create: a retry
with the same ``Idempotency-Key`` on another process answers 409 ``request_in_progress``
only while the dead process could still have been waiting for the provider, and its final
job within the provider's read timeout + 10 s of the death, never sending the create
again.

Real processes (``tests/support/gateway_process.py``: the registry's providers, configured
from the environment) over one Redis, MusicGPT pointed at its simulator, which accepts the
create and holds its answer back far beyond the read timeout.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis

from gateway.store.store import JobRecord
from tests.conftest import TEST_KEY
from tests.support.gateway_process import spawn_gateway, stop_gateway, wait_ready
from tests.support.servers import free_port, serve
from tests.support.upstreams import UPSTREAMS
from tests.support.waiting import wait_until

URL = "/v1/music/generate"
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
READ_TIMEOUT = 4.0  # the provider's: the dead process would have given up by then
MARGIN = 10.0  # what the issue allows past it
SLACK = 3.0  # polling and a loaded machine's scheduling


@pytest.fixture
def musicgpt() -> Iterator[tuple[str, httpx.Client]]:
    up = UPSTREAMS["musicgpt"]
    with serve(up.app()) as url, httpx.Client(timeout=10) as http:
        up.configure(http, url, up.fast())
        yield url, http


def records(redis_url: str, prefix: str) -> list[JobRecord]:
    decoder = msgspec.msgpack.Decoder(JobRecord)
    with contextlib.closing(redis.Redis.from_url(redis_url)) as r:
        names = list(r.scan_iter(match=f"{prefix}job:*"))
        return [decoder.decode(raw) for raw in r.mget(names) if raw] if names else []


@pytest.mark.timeout(120)
def test_a_retry_after_the_creating_process_died_gets_the_final_job(
    redis_url: str, tmp_path: Path, musicgpt: tuple[str, httpx.Client]
) -> None:
    up = UPSTREAMS["musicgpt"]
    sim_url, sim = musicgpt
    up.configure(sim, sim_url, up.create_answer_late(3600, count=None))  # accepted, no answer
    prefix = f"t{secrets.token_hex(4)}:"
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env = {
        **base,
        **up.env(sim_url, read_timeout=READ_TIMEOUT),
        "REDIS_URL": redis_url,
        "GATEWAY_REDIS_PREFIX": prefix,
        "GATEWAY_API_KEYS": TEST_KEY,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_LOG_FORMAT": "json",
    }
    ports = [free_port(), free_port()]
    procs = [spawn_gateway(env, p, tmp_path / f"gateway-{p}.log") for p in ports]
    try:
        for proc, port in zip(procs, ports, strict=True):
            wait_ready(proc, port, tmp_path / f"gateway-{port}.log")
        doomed, survivor = (f"http://127.0.0.1:{p}{URL}" for p in ports)
        body = {"model": up.model, "prompt": "a song whose create outlives its process"}
        headers = {**AUTH, "Idempotency-Key": "dies-with-its-process"}

        answered: list[Any] = []

        def first_try() -> None:  # its connection dies with the process
            try:
                answered.append(httpx.post(doomed, json=body, headers=headers, timeout=60))
            except httpx.HTTPError as exc:
                answered.append(exc)

        sender = threading.Thread(target=first_try, daemon=True)
        sender.start()
        wait_until(lambda: up.stats(sim, sim_url)["create_calls"] == 1, what="create sent")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        died = time.time()
        sender.join(10)
        assert answered and isinstance(answered[0], httpx.HTTPError), answered
        [record] = records(redis_url, prefix)
        assert record.submitting and record.submit_until is not None  # died mid-create
        assert record.submit_until <= record.created_at + READ_TIMEOUT + 0.01

        def retry() -> httpx.Response:
            return httpx.post(survivor, json=body, headers=headers, timeout=10)

        early = retry()  # the dead process might still be waiting for its answer
        assert early.status_code == 409, early.text
        assert early.json()["error"] == "request_in_progress"

        def settled() -> httpx.Response | None:
            r = retry()
            return None if r.status_code == 409 else r

        final = wait_until(settled, timeout=READ_TIMEOUT + MARGIN + SLACK + 5, interval=0.2)
        waited = time.time() - died
        assert waited <= READ_TIMEOUT + MARGIN + SLACK, waited
        assert final.status_code == 200, final.text
        assert final.headers["idempotent-replayed"] == "true"
        job = final.json()
        assert job["id"] == record.id and job["status"] == "failed", job
        assert job["error"]["code"] == "upstream_outcome_unknown"
        polled = httpx.get(f"{survivor}/{record.id}", headers=AUTH, timeout=10).json()
        assert polled["status"] == "failed"
        stats = up.stats(sim, sim_url)
        assert stats["create_calls"] == 1 and up.jobs_made(stats) == 1  # never sent again
    finally:
        for proc in procs:
            stop_gateway(proc)
