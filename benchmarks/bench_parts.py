"""The benchmark's parts (a) to (c), each returning its measurements; ``bench.py`` runs
them on one stack and reports (see its docstring for what each part measures)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import redis

from benchmarks.bench_stack import (
    AUTH,
    JOBS,
    KEY,
    MUSICGPT_KEY,
    POLL_SECONDS,
    PREFIX,
    QUEUE_S,
    REFRESH_INTERVAL,
    RUN_S,
    STAGE,
    URL,
    USEAPI_TOKEN,
    Conn,
    RssSampler,
    Served,
    Stack,
    WrkResult,
    created_decoder,
    percentile,
    record_decoder,
    status_decoder,
    wrk,
)
from providers.base import SubmitRequest
from providers.musicgpt import mapping as musicgpt_mapping
from providers.musicgpt.catalog import MODELS as MUSICGPT_MODELS
from providers.tempolor import mapping as tempolor_mapping
from providers.tempolor.catalog import MODELS as TEMPOLOR_MODELS

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
        record = record_decoder.decode(stack.rdb.get(f"{PREFIX}job:{{{job['id']}}}"))
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
        status_decoder.decode(body).status if code == 200 else str(code) for code, body in answers
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
                ids[i] = created_decoder.decode(answer).id
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
                answers.append((i, now, STAGE[status_decoder.decode(answer).status]))
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
        pipe.memory_usage(f"{PREFIX}job:{{{job_id}}}", samples=0)
    sizes = [int(s or 0) for s in pipe.execute()]
    pipe = stack.rdb.pipeline(transaction=False)
    for job_id in ids:
        pipe.get(f"{PREFIX}job:{{{job_id}}}")
    records = [record_decoder.decode(raw) for raw in pipe.execute() if raw]
    final = sum(1 for r in records if r.status == "completed")
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
