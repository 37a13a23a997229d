"""Scale: what in-flight jobs cost as their number grows (``benchmarks/bench_scale.py``).

For each backlog size N, on a Redis topology (``redis_topology.py``) emptied first:

1. N MusicGPT tasks made on the simulator at once (``POST /__sim__/tasks``, queued for an
   hour: they stay in flight), and N job records stored for them through the gateway's
   own ``Store.open_job``, built as a create builds them (the provider's create answer
   mapped by ``providers/musicgpt/mapping.py``, merged by ``merge_snapshot``), each with
   its place on the refresh schedule and its owner's in-flight slot (50 jobs per client
   key, the default limit). Redis memory per job: ``used_memory`` growth without client
   buffers, summed over the masters, divided by N.
2. Claims (``claim_costs``, once for all sizes): the gateway's ``Store.claim_due`` of 100
   due ids (the refresher's batch) on schedules of each size (sorted sets of due ids
   under their own prefixes; claim_seconds 0: every id stays due), ``CLAIMS`` claims a
   round, the sizes' rounds interleaved: this process's CPU and the servers' CPU per
   claim, the least of ``ROUNDS`` rounds.
3. Gateway processes (granian, one worker each, nothing but the background refresher at
   work: no client) refresh the N jobs with a refresh interval of 0.5 s (1,000 jobs ask
   for at most 2,000 refreshes a second, about what one process manages on a small
   machine; 100,000 keep it flat out) and a budget that never binds. Over a window, with
   1 process and then 2: refreshes (the simulator's status calls), the processes' CPU
   (``/proc``, user + system) and the servers' CPU, the refresher's claims
   (``/metrics``), and the jobs still due at the end (a backlog: the refresher ran flat
   out).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from redis.asyncio.cluster import RedisCluster

from benchmarks.bench_apps import MUSICGPT_KEY
from benchmarks.bench_stack import KEY, Served, process_tree
from benchmarks.redis_topology import Topology
from gateway.jobs import lost
from gateway.jobs.records import merge_snapshot, new_job_id
from gateway.store.limits import SLOT_MAX_AGE, Limits
from gateway.store.redis_pool import open_client
from gateway.store.store import JobRecord, Store
from providers.base import SubmitRequest
from providers.musicgpt import mapping
from providers.musicgpt.catalog import MODELS
from providers.musicgpt.schemas import CreateResponse

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "scale:"
INTERVAL = 0.5  # GATEWAY_REFRESH_INTERVAL: the shortest refresh period
JOBS_PER_OWNER = 50  # GATEWAY_MAX_INFLIGHT_JOBS' default
CLAIMS, ROUNDS = 200, 5
SEED_CHUNK = 20_000  # tasks per POST /__sim__/tasks
RETENTION = 30 * 86400
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Window:
    processes: int
    seconds: float
    refreshes: int  # upstream status calls the simulator answered
    claims: int  # the refreshers' claims (round trips)
    claimed: int  # jobs those claims took
    gateway_cpu: float  # s, every gateway process together
    sim_cpu: float  # s, the simulator
    redis_cpu: float  # s, every master together
    due_at_end: int  # jobs due and not yet refreshed when the window closed

    @property
    def rate(self) -> float:
        return self.refreshes / self.seconds

    def per_refresh(self, cpu: float) -> float:
        return cpu / self.refreshes if self.refreshes else float("nan")


@dataclass
class ScaleRun:
    jobs: int
    seed_seconds: float
    memory_per_job: float  # B, all-in
    record_bytes: float  # B, MEMORY USAGE of a job record (a sample's mean)
    windows: dict[int, Window] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def _store(topo: Topology) -> AsyncIterator[Store]:
    """The gateway's ``Store`` on ``topo``, through the gateway's own client."""
    client, close = open_client(topo.url, cluster=topo.cluster, timeout=30, max_connections=128)
    try:
        if isinstance(client, RedisCluster):  # before concurrent commands: the slot map
            await client.initialize()  # (redis-py's async cluster client races without it)
        yield Store(client, prefix=PREFIX, retention_seconds=RETENTION)
    finally:
        await close()


def _record(task: list[str], owner: str, now: float) -> JobRecord:
    """The record a create stores for a MusicGPT task once the create answered."""
    spec = next(m for m in MODELS if m.id == "musicgpt/v7")
    req = SubmitRequest(model=spec, prompt="scale: a slow ambient piece")
    answer = CreateResponse(
        success=True,
        message="Message published to queue",
        task_id=task[0],
        conversion_id_1=task[1],
        conversion_id_2=task[2],
        eta=3600,
        is_flagged=False,
        reason="",
        credit_estimate=1.25,
    )
    pending = mapping.from_create(answer, req, now)
    record = JobRecord(
        id=new_job_id(),
        owner=owner,
        provider="musicgpt",
        model=spec.id,
        status="queued",
        created_at=now,
        updated_at=now,
        callback_token=secrets.token_urlsafe(24),
        refreshed_at=now,
        origin="http://127.0.0.1:8000",
    )
    record.native_id = pending.native_id
    record.native_ids = pending.native_ids
    lost.settled(record)
    return merge_snapshot(record, pending.snapshot, now)


def _sim_tasks(sim: str, count: int) -> list[list[str]]:
    tasks: list[list[str]] = []
    with httpx.Client(timeout=120) as http:
        while len(tasks) < count:
            n = min(SEED_CHUNK, count - len(tasks))
            r = http.post(f"{sim}/__sim__/tasks", json={"count": n, "queue_seconds": 3600})
            r.raise_for_status()
            tasks += r.json()["tasks"]
    return tasks


async def _seed(topo: Topology, tasks: list[list[str]]) -> float:
    """Store a job for each task; returns the mean MEMORY USAGE of 100 of their records."""
    now = time.time()
    records = [_record(t, f"key_{i // JOBS_PER_OWNER:016x}", now) for i, t in enumerate(tasks)]
    todo = iter(records)
    async with _store(topo) as store:
        limits = Limits(store.redis, prefix=PREFIX)

        async def worker() -> None:
            for record in todo:
                slot = (limits.slot_key(record.owner), JOBS_PER_OWNER, SLOT_MAX_AGE)
                opened = await store.open_job(record, due=now, slot=slot)
                if not opened.created:
                    raise RuntimeError(f"seeding: {record.id} not admitted")

        await asyncio.gather(*(worker() for _ in range(64)))
        names = []
        async for name in store.redis.scan_iter(match=f"{PREFIX}job:*", count=1000):
            names.append(name)
            if len(names) == 100:
                break
        sizes = [int(await store.redis.memory_usage(name, samples=0) or 0) for name in names]
        return sum(sizes) / len(sizes)


async def _claim_costs(topo: Topology, sizes: tuple[int, ...]) -> dict[int, tuple[float, float]]:
    """Per size N: (this process's CPU, the servers' CPU) per ``claim_due`` of 100 due ids
    on a schedule of N jobs, the least of ``ROUNDS`` rounds of ``CLAIMS`` claims, the
    sizes' rounds interleaved (the machine's drift hits them alike, its noise only adds)."""
    best = {n: (float("inf"), float("inf")) for n in sizes}
    async with _store(topo) as base:
        stores = {
            n: Store(base.redis, prefix=f"claims{n}:", retention_seconds=RETENTION) for n in sizes
        }
        now = time.time()
        for n, store in stores.items():
            for first in range(0, n, 1000):
                members = {new_job_id(): now for _ in range(first, min(n, first + 1000))}
                await store.redis.zadd(store.due_key, members)
            for _ in range(10):  # warm: connections, the script cached
                await store.schedule.claim_due(100, 0.0, time.time())
        try:
            for _ in range(ROUNDS):
                for n, store in stores.items():
                    cpu0, redis0 = time.process_time(), topo.cpu()
                    for _ in range(CLAIMS):
                        claimed = await store.schedule.claim_due(100, 0.0, time.time())
                        if len(claimed.ids) != 100:
                            raise RuntimeError(f"claim took {len(claimed.ids)} ids, not 100")
                    cpu1, redis1 = time.process_time(), topo.cpu()
                    client = min(best[n][0], (cpu1 - cpu0) / CLAIMS)
                    best[n] = (client, min(best[n][1], (redis1 - redis0) / CLAIMS))
        finally:
            for store in stores.values():
                await store.redis.delete(store.due_key)
    return best


def claim_costs(topo: Topology, sizes: tuple[int, ...]) -> dict[int, tuple[float, float]]:
    gc.collect()
    return asyncio.run(_claim_costs(topo, sizes))


def settled_memory(topo: Topology) -> int:
    """``topo.memory()`` once it holds still: the buffers of the connections just closed
    are freed within a few hundred milliseconds (megabytes after a seeding)."""
    last = topo.memory()
    for _ in range(20):
        time.sleep(0.25)
        now = topo.memory()
        if now == last:
            return now
        last = now
    return last


def _due_now(topo: Topology) -> int:
    async def count() -> int:
        async with _store(topo) as store:
            return int(await store.redis.zcount(store.due_key, "-inf", time.time()))

    return asyncio.run(count())


# ------------------------------------------------------------------- processes


def cpu_seconds(served: Served) -> float:
    """User + system CPU of a served app's processes (granian and its workers)."""
    total = 0
    for pid in process_tree(served.proc.pid):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def refresher_counts(served: Served) -> tuple[float, float]:
    """(claims, jobs claimed) of a gateway process's refresher, from ``/metrics``."""
    text = httpx.get(f"{served.url}/metrics", timeout=10).text
    return (
        _metric(text, "gateway_refresher_claims_total"),
        _metric(text, "gateway_refresher_claimed_jobs_total"),
    )


def gateway_env(topo: Topology, sim: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        **topo.gateway_env(),
        "PYTHONPATH": str(ROOT),
        "GATEWAY_REDIS_PREFIX": PREFIX,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_API_KEYS": KEY,
        "GATEWAY_SIMULATORS": "off",
        "GATEWAY_REFRESH_INTERVAL": str(INTERVAL),
        "GATEWAY_UPSTREAM_BUDGETS": "musicgpt=100000000",
        "GATEWAY_LOG_LEVEL": "info",
        "GATEWAY_LOG_FORMAT": "json",
        "MUSICGPT_API_KEY": MUSICGPT_KEY,
        "MUSICGPT_BASE_URL": sim,
    }


@contextlib.contextmanager
def gateways() -> Iterator[list[Served]]:
    """A list to start gateway processes into; every one is stopped after."""
    started: list[Served] = []
    try:
        yield started
    finally:
        for served in reversed(started):
            served.stop()


def _window(
    topo: Topology, sim: Served, procs: list[Served], warm: float, seconds: float
) -> Window:
    def status_calls() -> int:
        return int(httpx.get(f"{sim.url}/__sim__/stats", timeout=30).json()["status_calls"])

    time.sleep(warm)
    calls0, redis0 = status_calls(), topo.cpu()
    counts0 = [refresher_counts(p) for p in procs]
    cpu0, sim0 = [cpu_seconds(p) for p in procs], cpu_seconds(sim)
    t0 = time.monotonic()
    time.sleep(seconds)
    cpu1, sim1 = [cpu_seconds(p) for p in procs], cpu_seconds(sim)
    counts1 = [refresher_counts(p) for p in procs]
    elapsed = time.monotonic() - t0
    calls1, redis1 = status_calls(), topo.cpu()
    return Window(
        processes=len(procs),
        seconds=elapsed,
        refreshes=calls1 - calls0,
        claims=round(sum(b[0] - a[0] for a, b in zip(counts0, counts1, strict=True))),
        claimed=round(sum(b[1] - a[1] for a, b in zip(counts0, counts1, strict=True))),
        gateway_cpu=sum(b - a for a, b in zip(cpu0, cpu1, strict=True)),
        sim_cpu=sim1 - sim0,
        redis_cpu=redis1 - redis0,
        due_at_end=_due_now(topo),
    )


def scale_run(
    topo: Topology, sim: Served, jobs: int, warm: float, seconds: float, tmp: Path
) -> ScaleRun:
    topo.flush()
    httpx.post(f"{sim.url}/__sim__/reset", timeout=60).raise_for_status()
    memory0 = topo.memory()
    began = time.monotonic()
    record_bytes = asyncio.run(_seed(topo, _sim_tasks(sim.url, jobs)))
    seed_seconds = time.monotonic() - began
    memory_per_job = (settled_memory(topo) - memory0) / jobs
    run = ScaleRun(jobs, seed_seconds, memory_per_job, record_bytes)
    print(f"  {jobs:,} jobs seeded in {seed_seconds:.1f} s", flush=True)
    env = gateway_env(topo, sim.url, tmp)
    with gateways() as procs:
        for n in (1, 2):
            served = Served(f"scale-gateway-{jobs}-{n}", "gateway.api.asgi:app", 1, env, tmp)
            procs.append(served)
            served.wait_ready("/health")
            run.windows[n] = _window(topo, sim, procs, warm, seconds)
            print(f"  {jobs:,} jobs, {n} process(es): {run.windows[n].rate:,.0f}/s", flush=True)
    return run


def rate_ratio(run: ScaleRun) -> float:
    return run.windows[2].rate / run.windows[1].rate
