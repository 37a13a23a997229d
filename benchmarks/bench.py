"""The gateway's performance benchmark (issue 7): throughput, added latency, upstream
call economy and memory, measured in one run on this machine, each against its target.

Everything runs on loopback: a throwaway ``redis-server`` (no persistence), both provider
simulators, the gateway (``gateway.api.asgi:app``) and a bare Litestar app, each under
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
      evenly spread phases by a minimal asyncio HTTP/1.1 client on uvloop (64
      connections). A poll is queued at its scheduled time and sent as soon as a
      connection is free, so a gateway that cannot keep up shows as late answers
      (received - scheduled). Upstream
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
import contextlib
import faulthandler
import logging
import os
import sys
import tempfile
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import redis
import uvloop

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_parts import (  # noqa: E402
    Latency,
    PartA,
    PartC1,
    PartC2,
    part_a,
    part_b,
    part_c1,
    part_c2,
)
from benchmarks.bench_stack import (  # noqa: E402
    BUDGET_PER_MIN,
    BURST_SECONDS,
    HARD_LIMIT,
    JOBS,
    POLL_SECONDS,
    REFRESH_INTERVAL,
    TARGET_ADDED_P50_MS,
    TARGET_JOB_BYTES,
    TARGET_RATIO,
    URL,
    Served,
    Stack,
    completed_job,
    ensure_wrk,
    gateway_env,
    percentile,
)
from gateway.cli.demo import free_port  # noqa: E402
from gateway.store.embedded import EmbeddedRedis  # noqa: E402

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


# ------------------------------------------------------------------------ stack


def start_simulators(tmp: Path, served: list[Served]) -> dict[str, Served]:
    """Both provider simulators under granian (one process each), ready; each is added
    to ``served`` (the caller stops them)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sims = {
        n: Served(n, f"benchmarks.bench_apps:{n}", 1, env, tmp) for n in ("musicgpt", "tempolor")
    }
    served += sims.values()
    for sim in sims.values():
        sim.wait_ready("/__sim__/stats")
    return sims


def start_gateway_and_bare(
    redis_url: str, sims: dict[str, Served], workers: int, tmp: Path, served: list[Served]
) -> tuple[Stack, str]:
    """The gateway (``gateway_env``) and the bare app answering one of its completed jobs,
    each with ``workers`` granian workers, ready: (the stack, that job's id). Both are
    added to ``served``."""
    gateway = Served(
        "gateway", "gateway.api.asgi:app", workers, gateway_env(redis_url, sims, tmp), tmp
    )
    served.append(gateway)
    gateway.wait_ready("/health")
    stack = Stack(redis_url, gateway, None, sims, redis.Redis.from_url(redis_url))
    job = completed_job(stack)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BENCH_BARE_JOB": msgspec.json.encode(job).decode(),
    }
    stack.bare = Served("bare", "benchmarks.bench_apps:bare", workers, env, tmp)
    served.append(stack.bare)
    stack.bare.wait_ready(f"{URL}/{job['id']}")
    print(
        f"stack up: gateway {gateway.url}, bare {stack.bare.url}, redis {redis_url}",
        flush=True,
    )
    return stack, job["id"]


# ------------------------------------------------------------------------- main


def run(coro: Coroutine[Any, Any, T]) -> T:
    """The load generator's own loop: uvloop, so that it is not what runs out of CPU."""
    return uvloop.run(coro)


def overhead(
    stack: Stack, job_id: str, args: argparse.Namespace
) -> tuple[PartA | None, list[Latency] | None]:
    """Parts (a) and (b), those of ``args.parts``."""
    a = b = None
    if "a" in args.parts:
        a = part_a(stack, job_id, args)
        print("a done", flush=True)
    if "b" in args.parts:
        stack.sim_config("musicgpt", {"queue_seconds": 0.1, "progress_seconds": 0.2})
        stack.sim_config("tempolor", {"queue_seconds": 0.1, "generate_seconds": 0.2})
        b = run(part_b(stack, args.creates))
        print("b done", flush=True)
    return a, b


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

    c1 = c2 = None
    keep = contextlib.nullcontext(args.logs) if args.logs else None
    with keep or tempfile.TemporaryDirectory(prefix="bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        tmp.mkdir(parents=True, exist_ok=True)
        embedded = EmbeddedRedis(tmp / "redis", persist=False, port=free_port())
        redis_url = embedded.start()
        served: list[Served] = []
        try:
            sims = start_simulators(tmp, served)
            stack, job_id = start_gateway_and_bare(redis_url, sims, args.workers, tmp, served)
            a, b = overhead(stack, job_id, args)
            if "c" in args.parts:
                stack.wait_idle()
                c1 = run(part_c1(stack))
                print("c1 done", flush=True)
                c2 = run(part_c2(stack))
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
