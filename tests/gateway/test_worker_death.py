"""A gateway process killed (SIGKILL) in the middle of synchronous generations leaves no
job hanging: the one whose request may have reached the provider fails
``upstream_outcome_unknown`` (never sent again); the one still waiting for its turn runs
on the surviving process."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_KEY
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
URL = "/v1/music/generate"
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


def _gateway(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    log = Path(env["GATEWAY_DATA_DIR"]) / f"gateway-{port}.log"  # kept for a failure's eyes
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.sync_gateway", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.05)


def _until_status(base: str, job_id: str, wanted: set[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = httpx.get(f"{base}{URL}/{job_id}", headers=AUTH, timeout=5).json()
        if job["status"] in wanted:
            return job
        assert time.monotonic() < deadline, f"still {job['status']}: {job}"
        time.sleep(0.05)


@pytest.fixture
def env(redis_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    yield {
        **base,
        "REDIS_URL": redis_url,
        "GATEWAY_REDIS_PREFIX": f"t{secrets.token_hex(4)}:",
        "GATEWAY_API_KEYS": TEST_KEY,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_WORKER_HEARTBEAT": "0.3",
        "GATEWAY_CONCURRENCY": "echo-sync=1",
        "PYTHONPATH": str(ROOT),
    }


@pytest.mark.timeout(90)
def test_a_killed_worker_leaves_no_job_hanging(env: dict[str, str]) -> None:
    port_a, port_b = free_port(), free_port()
    a = _gateway({**env, "SYNC_DELAY": "120"}, port_a)
    b = None
    try:
        base_a = f"http://127.0.0.1:{port_a}"
        body = {"model": "echo-sync/v1", "prompt": "x"}
        async_ = {**AUTH, "Prefer": "respond-async"}
        sent = httpx.post(f"{base_a}{URL}", json=body, headers=async_, timeout=5).json()
        _until_status(base_a, sent["id"], {"in_progress"}, 20)  # mid-call in process A
        waiting = httpx.post(f"{base_a}{URL}", json=body, headers=async_, timeout=5).json()
        assert waiting["status"] == "queued"  # the provider's one place is taken
        a.send_signal(signal.SIGKILL)
        a.wait(10)

        b = _gateway({**env, "SYNC_DELAY": "0"}, port_b)
        base_b = f"http://127.0.0.1:{port_b}"
        lost = _until_status(base_b, sent["id"], {"completed", "failed"}, 30)
        assert lost["status"] == "failed"
        assert lost["error"]["code"] == "upstream_outcome_unknown", lost
        ran = _until_status(base_b, waiting["id"], {"completed", "failed"}, 30)
        assert ran["status"] == "completed", ran  # it had never been sent: it ran on B
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
