"""The gateway's performance benchmark (issue 7): throughput, added latency, upstream
call economy and memory, measured in one run on this machine, each against its target.

Everything runs on loopback: a throwaway ``redis-server`` (no persistence), both provider
simulators, the gateway (``gateway.asgi:app``) and a bare Litestar app, each under
granian in its own process (``--workers N`` for the gateway and the bare app alike, by
default one per core). The gateway runs as deployed (JSON canonical log line per
request at ``info``, metrics, background refresher) with per-key limits off
(``GATEWAY_RATE_LIMIT_RPM=0``, ``GATEWAY_MAX_INFLIGHT_JOBS=0``: the client is one key
hammering), simulator callbacks off, and a MusicGPT status budget large enough for (c.2).

a. ``GET`` of a completed job through the gateway against the bare app answering the same
   job object on the same route: wrk (installed with apt-get when missing), 2 threads,
   ``--connections`` connections; best of ``--rounds`` interleaved runs of ``--duration``
   seconds each. Requests/s, p50/p99 and the ratio (target >= 0.6).
b. Creates, one at a time on one keep-alive connection, straight to the MusicGPT and
   TemPolor simulators and through the gateway (same native body), interleaved: p50/p99
   of each and the added latency (difference of the percentiles; target p50 <= 1 ms).
c. Upstream status calls, read from the simulator's ``/__sim__/stats``.
   1. One in-flight job; 1,000 connections poll it at once as soon as a refresh is due;
      calls counted over a window holding exactly one due moment (target: 1).
   2. 1,000 in-flight jobs (simulator timings fixed: ``IN_QUEUE`` for 8 s, then
      ``IN_PROGRESS`` for 16 s, then ``COMPLETED``), each polled once a second for 30 s at
      evenly spread phases by a minimal asyncio HTTP/1.1 client (64 connections). A poll
      is queued at its scheduled time and sent as soon as a connection is free, so a
      gateway that cannot keep up shows as late answers (received - scheduled). Upstream
      calls are sampled every second. The budget is a token bucket (600 calls/s holding
      5 s of them, ``GATEWAY_UPSTREAM_BURST_SECONDS``): no run of consecutive samples may
      hold more calls than a full bucket plus its refill over that run (target: never
      above; one call per poll, 1,000/s, breaks it within 8 s).
      Staleness of an answer: when it still shows a stage the job had already left
      upstream, ``received - transition``, the transition taken at its earliest possible
      moment (the create request's send time plus the fixed phase lengths): an upper
      bound of the true staleness. Also shown: how long after a transition the first
      answer showed it. Target: no answer staler than one refresh interval, with the
      polls answered on time (p99 lateness <= 1 s).
d. Redis memory per stored job: ``MEMORY USAGE`` of each of the 1,000 job records of
   (c.2) once completed, what a job keeps for the retention period (target <= 2 KB), and
   all-in ``used_memory`` growth (client buffers excluded) over them once their leases
   expired; gateway RSS (granian processes, summed) sampled during the gateway's runs of
   (a).

``--profile OUT`` also records the gateway worker with py-spy during (a) (run with
``python3 -m uv run --with py-spy ...``) and prints the top frames (collapsed stacks in
``OUT``). The run is bounded: it aborts with a traceback after ``HARD_LIMIT`` seconds.

Usage::

    python3 -m uv run python benchmarks/bench.py [--workers 2] [--duration 8] [--rounds 2]
    python3 -m uv run python benchmarks/bench.py --parts a --profile /tmp/gw.txt
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import faulthandler
import logging
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
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
sys.path.insert(0, str(ROOT))

from benchmarks.bench_apps import MUSICGPT_KEY, USEAPI_TOKEN  # noqa: E402
from gateway.demo import free_port  # noqa: E402
from gateway.redis_embedded import EmbeddedRedis  # noqa: E402
from gateway.store import JobRecord  # noqa: E402
from providers.base import SubmitRequest  # noqa: E402
from providers.musicgpt import mapping as musicgpt_mapping  # noqa: E402
from providers.musicgpt.catalog import MODELS as MUSICGPT_MODELS  # noqa: E402
from providers.tempolor import mapping as tempolor_mapping  # noqa: E402
from providers.tempolor.catalog import MODELS as TEMPOLOR_MODELS  # noqa: E402

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
        self, name: str, target: str, workers: int, env: dict[str, str], logs: Path
    ) -> None:
        self.name = name
        self.port = free_port()
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


_status = msgspec.json.Decoder(_Status)
_created = msgspec.json.Decoder(_Id)
_record = msgspec.msgpack.Decoder(JobRecord)
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


# --------------------------------------------------------------------------- (a)


@dataclass
class PartA:
    gateway: WrkResult
    bare: WrkResult
    rss_total: int
    rss_worker: int
    rss_idle: int
    profile: list[str] = field(default_factory=list)


def part_a(stack: Stack, job_id: str, args: argparse.Namespace) -> PartA:
    assert stack.bare is not None
    path = f"{URL}/{job_id}"
    headers = [f"Authorization: Bearer {KEY}"]
    conns = args.connections
    rss_idle = stack.gateway.rss()[0]
    for served in (stack.bare, stack.gateway):  # warm-up
        wrk(served.url + path, 2, conns, headers)
    sampler = RssSampler(stack.gateway)
    best: dict[str, WrkResult] = {}
    profiler = None
    for i in range(args.rounds):
        for name, served in (("bare", stack.bare), ("gateway", stack.gateway)):
            if name == "gateway" and args.profile and i == args.rounds - 1:
                profiler = start_profiler(stack.gateway, args.duration, args.profile)
            with sampler.sampling() if name == "gateway" else contextlib.nullcontext():
                result = wrk(served.url + path, args.duration, conns, headers)
            if result.errors:
                raise RuntimeError(f"{name}: {result.errors} errors under load")
            if name not in best or result.rps > best[name].rps:
                best[name] = result
    top = finish_profiler(profiler, args.profile) if profiler is not None else []
    return PartA(
        best["gateway"], best["bare"], sampler.peak_total, sampler.peak_worker, rss_idle, top
    )


def start_profiler(gateway: Served, seconds: float, out: str) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy")
    workers = gateway.workers()
    if spy is None or not workers:
        print("profile: py-spy not found (python3 -m uv run --with py-spy ...)", flush=True)
        return None
    cmd = [spy, "record", "--pid", str(workers[0]), "--duration", str(int(seconds) - 1)]
    cmd += ["--rate", "250", "--format", "raw", "--output", out, "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish_profiler(proc: subprocess.Popen[bytes], out: str) -> list[str]:
    proc.wait(60)
    return summarize_profile(Path(out).read_text().splitlines())


def summarize_profile(lines: list[str], top: int = 18) -> list[str]:
    """Top frames of py-spy's collapsed stacks: own time and time including callees."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack.strip() or not count.isdigit():
            continue  # no Python frame (the server's own threads)
        n = int(count)
        total += n
        frames = [re.sub(r"\s*\(.*?([^/]+/[^/]+\.py):\d+\)", r" (\1)", f) for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    out = [f"{total} samples; own time:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    out.append("including callees (frames under 90% of the samples):")
    shown = [(f, n) for f, n in incl.most_common() if n < 0.9 * total][: top + 12]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in shown]
    return out


# --------------------------------------------------------------------------- (b)


@dataclass
class Latency:
    name: str
    direct: list[float]  # ms
    gateway: list[float]  # ms


def _native_create(provider: str) -> tuple[str, bytes, dict[str, str], dict[str, Any]]:
    """(direct path, native body, direct headers, the gateway request) for one create."""
    prompt = "bench: warm synthwave with a slow build"
    if provider == "musicgpt":
        spec = next(m for m in MUSICGPT_MODELS if m.id == "musicgpt/v7")
        body = musicgpt_mapping.encode(
            musicgpt_mapping.to_native(SubmitRequest(model=spec, prompt=prompt))
        )
        return "/v2/MusicAI", body, {"Authorization": MUSICGPT_KEY}, {"model": spec.id}
    spec = next(m for m in TEMPOLOR_MODELS if m.id == "tempolor/v4.8")
    endpoint, native = tempolor_mapping.to_native(SubmitRequest(model=spec, prompt=prompt))
    body = tempolor_mapping.encode(native)
    path = f"/v1/tempolor/music/{endpoint}"
    return path, body, {"Authorization": f"Bearer {USEAPI_TOKEN}"}, {"model": spec.id}


async def part_b(stack: Stack, n: int) -> list[Latency]:
    results = []
    for provider in ("musicgpt", "tempolor"):
        path, native, headers, request = _native_create(provider)
        request["prompt"] = "bench: warm synthwave with a slow build"
        gw_body = msgspec.json.encode(request)
        direct = await Conn(stack.sims[provider].port, headers).open()
        via = await Conn(stack.gateway.port, AUTH).open()
        lat = Latency(provider, [], [])
        try:
            for i in range(n + 20):  # the first 20 warm up
                order = ((direct, path, native, lat.direct), (via, URL, gw_body, lat.gateway))
                for conn, target, body, into in order if i % 2 else reversed(order):
                    t = time.perf_counter()
                    status, answer = await conn.request("POST", target, body)
                    elapsed = (time.perf_counter() - t) * 1000
                    if status != 200:
                        raise RuntimeError(f"create via {target}: {status} {answer[:300]!r}")
                    if i >= 20:
                        into.append(elapsed)
        finally:
            await direct.close()
            await via.close()
        results.append(lat)
    return results


# --------------------------------------------------------------------------- (c)


@dataclass
class PartC1:
    calls: int
    polls: int
    answers: collections.Counter[str]
    burst_ms: float
    one_window: bool


async def part_c1(stack: Stack) -> PartC1:
    # Queued for 3 s, final at 3.5 s: in flight during the burst, off the schedule after.
    stack.sim_config("musicgpt", {"queue_seconds": 3.0, "progress_seconds": 0.5})
    async with httpx.AsyncClient(base_url=stack.gateway.url, headers=AUTH) as gw:
        job = (await gw.post(URL, json={"model": "musicgpt/v7", "prompt": "bench c1"})).json()
    path = f"{URL}/{job['id']}"
    conns = []
    for i in range(0, JOBS, 100):
        conns += await asyncio.gather(
            *(Conn(stack.gateway.port, AUTH).open() for _ in range(i, min(JOBS, i + 100)))
        )
    try:
        record = _record.decode(stack.rdb.get(f"{PREFIX}job:{job['id']}"))
        before = stack.sim_stats("musicgpt")["status_calls"]
        due = record.refreshed_at + REFRESH_INTERVAL
        if time.time() >= due:
            raise RuntimeError("(c.1) setup too slow: the refresh was due before the burst")
        await asyncio.sleep(due - time.time() + 0.02)
        started = time.monotonic()
        answers = await asyncio.gather(*(c.request("GET", path) for c in conns))
        burst = time.monotonic() - started
        ended_at = time.time()
        calls = stack.sim_stats("musicgpt")["status_calls"] - before
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    seen = collections.Counter(
        _status.decode(body).status if code == 200 else str(code) for code, body in answers
    )
    # The window [before, after] must hold one due moment only: it ends before the next.
    one_window = ended_at < due + REFRESH_INTERVAL
    return PartC1(calls, len(answers), seen, burst * 1000, one_window)


@dataclass
class PartC2:
    create_seconds: float
    polls: int
    errors: int
    late_p50: float  # s: answer received - the poll's scheduled time
    late_p99: float
    late_max: float
    per_second: list[int]
    sampled_at: list[float]  # s: when each per-second count began, and when the last ended
    total_calls: int
    window: float
    stale_max: float  # s: answers still showing a stage the job had left upstream
    stale_p99: float
    stale_answers: int
    seen_p50: float  # s: first answer showing a new stage - the transition
    seen_max: float
    transitions_seen: int
    transitions_expected: int
    mem_per_job: float  # B: Redis used_memory (client buffers excluded) growth per job
    record_bytes_mean: float
    record_bytes_max: int
    final: int


def _memory(rdb: redis.Redis) -> int:
    """Redis memory without client buffers (those follow connections, not jobs)."""
    info = rdb.info("memory")
    return int(info["used_memory"]) - int(info.get("mem_clients_normal", 0))


async def part_c2(stack: Stack) -> PartC2:
    stack.sim_config("musicgpt", {"queue_seconds": QUEUE_S, "progress_seconds": RUN_S})
    stack.wait_idle()
    mem_before = _memory(stack.rdb)
    body = msgspec.json.encode({"model": "musicgpt/v7", "prompt": "bench c2: a slow waltz"})
    sent: list[float] = [0.0] * JOBS
    ids: list[str] = [""] * JOBS
    todo = iter(range(JOBS))

    async def creator() -> None:
        conn = await Conn(stack.gateway.port, AUTH).open()
        try:
            for i in todo:
                sent[i] = time.monotonic()
                code, answer = await conn.request("POST", URL, body)
                if code != 200:
                    raise RuntimeError(f"create: {code} {answer[:300]!r}")
                ids[i] = _created.decode(answer).id
        finally:
            await conn.close()

    t0 = time.monotonic()
    await asyncio.gather(*(creator() for _ in range(32)))
    create_seconds = time.monotonic() - t0

    answers: list[tuple[int, float, int]] = []  # (job, received, stage)
    late: list[float] = []
    errors = 0
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()

    async def poller() -> None:
        nonlocal errors
        conn = await Conn(stack.gateway.port, AUTH).open()
        try:
            while (item := await queue.get()) is not None:
                i, due = item
                code, answer = await conn.request("GET", f"{URL}/{ids[i]}")
                now = time.monotonic()
                late.append(now - due)
                if code != 200:
                    errors += 1
                    continue
                answers.append((i, now, STAGE[_status.decode(answer).status]))
        finally:
            await conn.close()

    per_second: list[int] = []
    sim = await Conn(stack.sims["musicgpt"].port, {}).open()

    async def status_calls() -> int:
        _, raw = await sim.request("GET", "/__sim__/stats")
        return int(msgspec.json.decode(raw)["status_calls"])

    pollers = [asyncio.create_task(poller()) for _ in range(64)]
    start = time.monotonic()
    last = await status_calls()
    sampled_at = [time.monotonic()]
    next_sample = start + 1
    for k in range(POLL_SECONDS):
        for i in range(JOBS):
            due = start + k + i / JOBS
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            queue.put_nowait((i, due))
            if time.monotonic() >= next_sample:
                now_calls = await status_calls()
                sampled_at.append(time.monotonic())
                per_second.append(now_calls - last)
                last, next_sample = now_calls, next_sample + 1
    for _ in pollers:
        queue.put_nowait(None)
    await asyncio.gather(*pollers)  # late answers still count (and show as lateness)
    window = time.monotonic() - start
    now_calls = await status_calls()
    sampled_at.append(time.monotonic())
    per_second.append(now_calls - last)
    await sim.close()

    # Transitions at their earliest possible moment: create sent + the fixed phase lengths.
    stale: list[float] = []
    first_seen: dict[tuple[int, int], float] = {}
    for i, received, stage in answers:
        for target, at in ((1, sent[i] + QUEUE_S), (2, sent[i] + QUEUE_S + RUN_S)):
            if stage >= target:
                first_seen[(i, target)] = min(first_seen.get((i, target), received), received)
            elif received > at:
                stale.append(received - at)
    seen = [
        first_seen[(i, target)] - (sent[i] + QUEUE_S + (RUN_S if target == 2 else 0.0))
        for (i, target) in first_seen
    ]
    expected = sum(
        1
        for i in range(JOBS)
        for at in (sent[i] + QUEUE_S, sent[i] + QUEUE_S + RUN_S)
        if at + REFRESH_INTERVAL + 1.5 < start + POLL_SECONDS  # polled long enough after it
    )

    stack.wait_idle(timeout=20)
    time.sleep(REFRESH_INTERVAL + 0.5)  # refresh leases expire
    for _ in stack.rdb.scan_iter(match=f"{PREFIX}lease:*", count=1000):
        pass  # SCAN drops expired keys it meets
    mem_after = _memory(stack.rdb)
    pipe = stack.rdb.pipeline(transaction=False)
    for job_id in ids:
        pipe.memory_usage(f"{PREFIX}job:{job_id}", samples=0)
    sizes = [int(s or 0) for s in pipe.execute()]
    pipe = stack.rdb.pipeline(transaction=False)
    for job_id in ids:
        pipe.get(f"{PREFIX}job:{job_id}")
    final = sum(1 for raw in pipe.execute() if raw and _record.decode(raw).status == "completed")
    return PartC2(
        create_seconds=create_seconds,
        polls=len(late),
        errors=errors,
        late_p50=percentile(late, 50),
        late_p99=percentile(late, 99),
        late_max=max(late, default=0.0),
        per_second=per_second,
        sampled_at=sampled_at,
        total_calls=sum(per_second),
        window=window,
        stale_max=max(stale, default=0.0),
        stale_p99=percentile(stale, 99) if stale else 0.0,
        stale_answers=len(stale),
        seen_p50=percentile(seen, 50),
        seen_max=max(seen, default=float("nan")),
        transitions_seen=len(first_seen),
        transitions_expected=expected,
        mem_per_job=(mem_after - mem_before) / JOBS,
        record_bytes_mean=statistics.fmean(sizes),
        record_bytes_max=max(sizes),
        final=final,
    )


# ------------------------------------------------------------------------ report


def worst_window(
    counts: Sequence[int], at: Sequence[float], bucket: float, rate: float
) -> tuple[int, float, float]:
    """The run of consecutive samples that used the largest share of what the token
    bucket allows over it (a full bucket plus the refill): (calls, allowed, seconds)."""
    best = (0, bucket, 0.0)
    for i in range(len(counts)):
        calls = 0
        for j in range(i, len(counts)):
            calls += counts[j]
            span = at[j + 1] - at[i]
            allowed = bucket + rate * span
            if calls / allowed > best[0] / best[1]:
                best = (calls, allowed, span)
    return best


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(
    args: argparse.Namespace,
    a: PartA | None,
    b: list[Latency] | None,
    c1: PartC1 | None,
    c2: PartC2 | None,
    load: tuple[tuple[float, ...], tuple[float, ...]],
) -> list[str]:
    from importlib.metadata import version

    lines = [
        f"music-gateway benchmark: {os.cpu_count()} cores, granian {version('granian')}, "
        f"{args.workers} worker(s) for gateway and bare app, wrk -t2 -c{args.connections} "
        f"-d{args.duration:g}s best of {args.rounds}; load average before "
        f"{load[0][0]:.2f}, after {load[1][0]:.2f}",
    ]
    if a is not None:
        ratio = a.gateway.rps / a.bare.rps
        lines += [
            "a. GET completed job      req/s      p50       p99",
            f"   bare Litestar        {a.bare.rps:8,.0f}  {a.bare.p50:6.2f} ms  "
            f"{a.bare.p99:6.2f} ms",
            f"   gateway              {a.gateway.rps:8,.0f}  {a.gateway.p50:6.2f} ms  "
            f"{a.gateway.p99:6.2f} ms",
            f"   ratio {ratio:.2f} (target >= {TARGET_RATIO})  {verdict(ratio >= TARGET_RATIO)}",
        ]
    if b is not None:
        lines.append(
            "b. create, one at a time    direct p50/p99     gateway p50/p99    added p50/p99"
        )
        for lat in b:
            d50, d99 = percentile(lat.direct, 50), percentile(lat.direct, 99)
            g50, g99 = percentile(lat.gateway, 50), percentile(lat.gateway, 99)
            ok = g50 - d50 <= TARGET_ADDED_P50_MS
            lines.append(
                f"   {lat.name:9s} n={len(lat.gateway):<4d}  {d50:6.2f} / {d99:6.2f} ms  "
                f"{g50:6.2f} / {g99:6.2f} ms  {g50 - d50:+6.2f} / {g99 - d99:+6.2f} ms  "
                f"(target p50 <= {TARGET_ADDED_P50_MS:g} ms) {verdict(ok)}"
            )
    if c1 is not None:
        in_flight = set(c1.answers) <= {"queued", "in_progress"}  # every answer a 200
        ok = c1.calls == 1 and c1.one_window and in_flight
        lines.append(
            f"c1. {c1.polls} concurrent polls of one in-flight job, all answered in "
            f"{c1.burst_ms:.0f} ms ({dict(c1.answers)}): {c1.calls} upstream status call(s) "
            f"in one {REFRESH_INTERVAL:g} s refresh interval (target 1)  {verdict(ok)}"
        )
    if c2 is not None:
        rate = BUDGET_PER_MIN / 60
        bucket = rate * BURST_SECONDS
        calls, allowed, span = worst_window(c2.per_second, c2.sampled_at, bucket, rate)
        budget_ok = calls <= allowed
        on_time = c2.late_p99 <= 1.0
        stale_ok = c2.stale_max <= REFRESH_INTERVAL and c2.errors == 0 and on_time
        lines += [
            f"c2. {JOBS} in-flight jobs (created in {c2.create_seconds:.1f} s), each polled "
            f"every second for {POLL_SECONDS} s: {c2.polls} polls, {c2.errors} errors; answers "
            f"late (received - scheduled) p50 {c2.late_p50:.2f} s, p99 {c2.late_p99:.2f} s, "
            f"max {c2.late_max:.1f} s; all answered {c2.window:.1f} s after the first",
            f"    budget musicgpt={BUDGET_PER_MIN}/min ({rate:.0f}/s, a bucket of "
            f"{BURST_SECONDS:g} s: at most {bucket:.0f} + {rate:.0f}/s x T calls in any T "
            f"seconds; one call per job per {REFRESH_INTERVAL:g} s needs "
            f"{JOBS / REFRESH_INTERVAL:.0f}/s): the busiest run, {calls} calls in "
            f"{span:.1f} s, used {calls / allowed:.0%} of the {allowed:.0f} allowed (target: "
            f"never above)  {verdict(budget_ok)}",
            f"    upstream status calls per second (peak {max(c2.per_second)}, mean "
            f"{c2.total_calls / c2.window:.0f}, total {c2.total_calls}): "
            f"{' '.join(str(n) for n in c2.per_second)}",
            f"    staleness (upper bounds): {c2.stale_answers} answers showed a stage the job "
            f"had left, by at most {c2.stale_max:.2f} s (p99 {c2.stale_p99:.2f} s); a "
            f"transition was first seen {c2.seen_p50:.2f} s (p50) / {c2.seen_max:.2f} s (max) "
            f"after it, {c2.transitions_seen} of {c2.transitions_expected} seen (target: no "
            f"answer staler than {REFRESH_INTERVAL:g} s, polls on time)  {verdict(stale_ok)}",
        ]
    if c2 is not None or a is not None:
        lines.append("d.")
    if c2 is not None:
        ok = c2.record_bytes_mean <= TARGET_JOB_BYTES
        lines.append(
            f"   Redis per stored job ({c2.final} of {JOBS} completed): job record "
            f"{c2.record_bytes_mean:,.0f} B mean / {c2.record_bytes_max:,} B max (MEMORY USAGE;"
            f" target <= {TARGET_JOB_BYTES:,} B)  {verdict(ok)}; all-in "
            f"{c2.mem_per_job:,.0f} B per job (used_memory growth without client buffers, "
            "allocator included: it moves by a few hundred bytes from run to run)"
        )
    if a is not None:
        lines.append(
            f"   gateway RSS under (a): {a.rss_total / 2**20:.0f} MiB peak, all granian "
            f"processes ({a.rss_worker / 2**20:.0f} MiB the worker); "
            f"{a.rss_idle / 2**20:.0f} MiB before"
        )
        lines += a.profile
    return lines


# ------------------------------------------------------------------------- main


def main() -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="granian workers, gateway and bare app alike (default: one per core)",
    )
    parser.add_argument("--duration", type=float, default=8, help="seconds per wrk run (a)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved wrk runs (a)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (a)")
    parser.add_argument("--creates", type=int, default=300, help="creates per path (b)")
    parser.add_argument("--parts", default="abcd", help="which of a, b, c (c1+c2+d) to run")
    parser.add_argument("--profile", default="", help="py-spy the gateway during (a) to OUT")
    parser.add_argument("--logs", default="", help="keep the servers' logs in this directory")
    args = parser.parse_args()
    args.duration = max(2.0, min(args.duration, 30.0))
    args.rounds = max(1, min(args.rounds, 5))
    faulthandler.dump_traceback_later(HARD_LIMIT, exit=True)
    load_before = os.getloadavg()
    if "a" in args.parts:
        ensure_wrk()

    a = b = c1 = c2 = None
    keep = contextlib.nullcontext(args.logs) if args.logs else None
    with keep or tempfile.TemporaryDirectory(prefix="bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        tmp.mkdir(parents=True, exist_ok=True)
        embedded = EmbeddedRedis(tmp / "redis", persist=False, port=free_port())
        redis_url = embedded.start()
        served: list[Served] = []
        try:
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            sims = {
                n: Served(n, f"benchmarks.bench_apps:{n}", 1, env, tmp)
                for n in ("musicgpt", "tempolor")
            }
            served += sims.values()
            gateway = Served(
                "gateway", "gateway.asgi:app", args.workers, gateway_env(redis_url, sims, tmp), tmp
            )
            served.append(gateway)
            for sim in sims.values():
                sim.wait_ready("/__sim__/stats")
            gateway.wait_ready("/health")
            stack = Stack(redis_url, gateway, None, sims, redis.Redis.from_url(redis_url))
            job = completed_job(stack)
            bare_env = {**env, "BENCH_BARE_JOB": msgspec.json.encode(job).decode()}
            stack.bare = Served("bare", "benchmarks.bench_apps:bare", args.workers, bare_env, tmp)
            served.append(stack.bare)
            stack.bare.wait_ready(f"{URL}/{job['id']}")
            print(
                f"stack up: gateway {gateway.url}, bare {stack.bare.url}, redis {redis_url}",
                flush=True,
            )
            if "a" in args.parts:
                a = part_a(stack, job["id"], args)
                print("a done", flush=True)
            if "b" in args.parts:
                stack.sim_config("musicgpt", {"queue_seconds": 0.1, "progress_seconds": 0.2})
                stack.sim_config("tempolor", {"queue_seconds": 0.1, "generate_seconds": 0.2})
                b = asyncio.run(part_b(stack, args.creates))
                print("b done", flush=True)
            if "c" in args.parts:
                stack.wait_idle()
                c1 = asyncio.run(part_c1(stack))
                print("c1 done", flush=True)
                c2 = asyncio.run(part_c2(stack))
                print("c2 done", flush=True)
        finally:
            for s in reversed(served):
                s.stop()
            embedded.stop()
    for line in report(args, a, b, c1, c2, (load_before, os.getloadavg())):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
