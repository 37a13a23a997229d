"""The benchmark's stack and tools (``benchmarks/bench.py``): wrk, the servers it starts
under granian, a minimal HTTP/1.1 client, and the constants every part shares."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import redis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_apps import MUSICGPT_KEY, USEAPI_TOKEN  # noqa: E402
from gateway.cli.demo import free_port  # noqa: E402
from gateway.store.store import JobRecord  # noqa: E402

HARD_LIMIT = 540  # seconds: the whole run, whatever hangs
KEY = "sk-bench-client-000000000001"
PREFIX = "bench:"
URL = "/v1/music/generate"
REFRESH_INTERVAL = 2.0  # the gateway default
JOBS = 1000  # (c.1) concurrent polls, (c.2) in-flight jobs
POLL_SECONDS = 30  # (c.2)
QUEUE_S, RUN_S = 8.0, 16.0  # (c.2) simulator phases: IN_QUEUE, then IN_PROGRESS
BUDGET_PER_MIN = 36_000  # (c.2) 600 calls/s for 1,000 jobs needing 500/s (one per 2 s)
BURST_SECONDS = 5.0  # (c.2) the budget's bucket: 5 s of calls (the gateway's default)
TARGET_RATIO, TARGET_ADDED_P50_MS, TARGET_JOB_BYTES = 0.6, 1.0, 2048
STAGE = {"queued": 0, "in_progress": 1, "completed": 2, "failed": 2}


# ------------------------------------------------------------------------- tools


def ensure_wrk() -> str:
    """wrk from Debian's packages, installed non-interactively when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("installing wrk (apt-get) ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True, env=env
    )
    return shutil.which("wrk") or "wrk"


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50: float  # ms
    p99: float  # ms
    errors: int  # non-2xx answers and socket errors


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, seconds: float, conns: int, headers: Sequence[str] = ()) -> WrkResult:
    cmd = [ensure_wrk(), "-t2", f"-c{conns}", f"-d{seconds:g}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        return _ms(m.group(1), m.group(2)) if m else float("nan")

    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    return WrkResult(rps, pct("50"), pct("99"), errors)


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


# -------------------------------------------------------------------- processes


def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    return found


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += _children(p)
    return pids


def rss_bytes(pid: int) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Served:
    """One ASGI app under granian in its own process group."""

    def __init__(
        self,
        name: str,
        target: str,
        workers: int,
        env: dict[str, str],
        logs: Path,
        port: int | None = None,
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(logs / f"{name}.log", "wb")  # closed in stop()
        cmd = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            # granian serves at most backlog / workers connections per worker at once (the
            # rest wait, here until a 30 s timeout): (c.1) holds 1,000 open at once.
            "--backlog",
            "4096",
            "--log-level",
            "warning",
            target,
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log, stderr=self.log, start_new_session=True
        )

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=1).status_code < 500:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start; see {self.log.name}")

    def workers(self) -> list[int]:
        return [p for p in process_tree(self.proc.pid) if p != self.proc.pid]

    def rss(self) -> tuple[int, int]:
        """(all granian processes summed, the largest worker), bytes."""
        tree = process_tree(self.proc.pid)
        workers = [rss_bytes(p) for p in tree if p != self.proc.pid] or [0]
        return sum(rss_bytes(p) for p in tree), max(workers)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


class RssSampler:
    """Samples a served app's RSS every 0.25 s in a thread while the block runs."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.peak_total = self.peak_worker = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            total, worker = self.served.rss()
            self.peak_total = max(self.peak_total, total)
            self.peak_worker = max(self.peak_worker, worker)

    @contextlib.contextmanager
    def sampling(self) -> Iterator[None]:
        self._stop.clear()
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()


# ------------------------------------------------------------- a tiny HTTP client


_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


class Conn:
    """One HTTP/1.1 keep-alive connection on asyncio streams: a load generator that costs
    tens of microseconds per request (httpx costs ten times more)."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"Host: 127.0.0.1:{port}\r\n{extra}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Conn:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        length = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        head = f"{method} {path} HTTP/1.1\r\n{self._head}{length if body else ''}\r\n"
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        m = _CONTENT_LENGTH.search(raw)
        if m is None:
            raise RuntimeError(f"no Content-Length in {raw[:200]!r}")
        n = int(m.group(1))
        return int(raw[9:12]), (await self.reader.readexactly(n) if n else b"")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


class _Status(msgspec.Struct):
    status: str


class _Id(msgspec.Struct):
    id: str
    status: str


status_decoder = msgspec.json.Decoder(_Status)
created_decoder = msgspec.json.Decoder(_Id)
record_decoder = msgspec.msgpack.Decoder(JobRecord)
AUTH = {"Authorization": f"Bearer {KEY}"}


# -------------------------------------------------------------------- the stack


@dataclass
class Stack:
    redis_url: str
    gateway: Served
    bare: Served | None
    sims: dict[str, Served]
    rdb: redis.Redis
    sim_http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def sim_config(self, name: str, patch: dict[str, Any]) -> None:
        self.sim_http.post(f"{self.sims[name].url}/__sim__/config", json=patch).raise_for_status()

    def sim_stats(self, name: str) -> dict[str, Any]:
        r = self.sim_http.get(f"{self.sims[name].url}/__sim__/stats")
        r.raise_for_status()
        return r.json()

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until no job is on the refresh schedule (every job final)."""
        deadline = time.monotonic() + timeout
        while self.rdb.zcard(f"{PREFIX}due") and time.monotonic() < deadline:
            time.sleep(0.2)


def gateway_env(redis_url: str, sims: dict[str, Served], data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": redis_url,
        "GATEWAY_REDIS_PREFIX": PREFIX,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_API_KEYS": KEY,
        "GATEWAY_SIMULATORS": "off",
        "GATEWAY_RATE_LIMIT_RPM": "0",
        "GATEWAY_MAX_INFLIGHT_JOBS": "0",
        "GATEWAY_REFRESH_INTERVAL": str(REFRESH_INTERVAL),
        "GATEWAY_UPSTREAM_BUDGETS": f"musicgpt={BUDGET_PER_MIN},tempolor={BUDGET_PER_MIN}",
        "GATEWAY_UPSTREAM_BURST_SECONDS": str(BURST_SECONDS),
        "GATEWAY_LOG_LEVEL": "info",
        "GATEWAY_LOG_FORMAT": "json",
        "MUSICGPT_API_KEY": MUSICGPT_KEY,
        "MUSICGPT_BASE_URL": sims["musicgpt"].url,
        "USEAPI_TOKEN": USEAPI_TOKEN,
        "USEAPI_BASE_URL": sims["tempolor"].url + "/v1",
    }


def completed_job(stack: Stack) -> dict[str, Any]:
    stack.sim_config("musicgpt", {"queue_seconds": 0.05, "progress_seconds": 0.1})
    with httpx.Client(base_url=stack.gateway.url, headers=AUTH, timeout=10) as gw:
        body = {"model": "musicgpt/v7", "prompt": "bench: a calm lofi beat"}
        job = gw.post(URL, json={**body, "metadata": {"user": "bench"}}).json()
        deadline = time.monotonic() + 30
        while job["status"] != "completed":
            if time.monotonic() > deadline:
                raise RuntimeError(f"job never completed: {job}")
            time.sleep(0.3)
            job = gw.get(f"{URL}/{job['id']}").json()
        r = gw.get(f"{URL}/{job['id']}")
        return r.json()
