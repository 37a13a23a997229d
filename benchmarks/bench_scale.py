"""Time-to-know and scale (issue 17): how soon a client knows a job completed, what
in-flight jobs cost as their number grows, and the gateway's overhead, measured in one
run on this machine, each figure against its target.

Everything runs on loopback, each server under granian in its own process: both provider
simulators, a throwaway ``redis-server`` for (o) and (k), and the Redis of ``--redis``
for (s): a Redis Cluster of three masters (default) or one server.

o. Overhead, as ``benchmarks/bench.py --parts ab`` measures it (its functions, same
   stack): a cached GET of a completed job against a bare Litestar app (target ratio
   >= 0.6), and the latency a create adds to the provider's own (target p50 <= 1 ms).
k. Time-to-know (``know_parts.py``): from the simulator's completion of a task to the
   first client GET showing the job ``completed``, refresh interval 2 s (the default):
   1. with callbacks (target p99 <= 100 ms);
   2. polling only (target: every job within one interval + 0.1 s);
   3. polling only, under a tight budget of B calls a minute with N jobs in flight,
      polled by their clients every 0.5 s, completing together and then spread over
      2 x N x 60 / B s (target: every job within N x 60 / B s + one interval: fair
      shares, no starvation).
s. Scale (``scale_parts.py``): 1,000 and 100,000 in-flight jobs stored through the
   gateway's own store: Redis memory per job (target <= 2 KB), a claim of 100 due jobs
   (the refresher's CPU, and the servers'), and the background refresher flat out with 1
   and 2 gateway processes (refreshes a second, and CPU per refresh of the gateway, the
   simulator and Redis). Targets: the refresher's CPU per refresh and per claim at
   100,000 over 1,000 stays near 1 (0.8 to 1.25): scheduling does not grow with the
   backlog.

``--quick``: smaller sizes and shorter windows (a smoke run of a minute or two, whose
figures mean little). The run is bounded: it aborts with a traceback after
``HARD_LIMIT`` seconds.

Usage::

    python3 -m uv run python benchmarks/bench_scale.py [--quick] [--parts oks]
        [--redis cluster|single] [--workers N] [--logs DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench import overhead, report, run, start_gateway_and_bare  # noqa: E402
from benchmarks.bench import start_simulators as start_sims  # noqa: E402
from benchmarks.bench_stack import (  # noqa: E402
    REFRESH_INTERVAL,
    Served,
    ensure_wrk,
    gateway_env,
    percentile,
)
from benchmarks.know_parts import Known, fair_share, one_by_one  # noqa: E402
from benchmarks.redis_topology import KINDS, redis_topology  # noqa: E402
from benchmarks.scale_parts import INTERVAL, ScaleRun, claim_costs, rate_ratio, scale_run  # noqa: E402
from gateway.cli.demo import free_port  # noqa: E402
from gateway.store.embedded import EmbeddedRedis  # noqa: E402

HARD_LIMIT = 900  # seconds: the whole run, whatever hangs
TARGET_CALLBACK_P99 = 0.100  # s
TARGET_POLL_SLACK = 0.1  # s over one refresh interval
TARGET_JOB_BYTES = 2048
NEAR = (0.8, 1.25)  # "near 1" for the 100k / 1k ratios
FULL = {
    "o": {"duration": 8.0, "rounds": 2, "creates": 300},
    "k": {"callbacks": 100, "polling": 60, "fair": 100, "budget": 600},
    "s": {"sizes": (1_000, 100_000), "warm": 2.0, "window": 8.0},
}
QUICK = {
    "o": {"duration": 3.0, "rounds": 1, "creates": 100},
    "k": {"callbacks": 20, "polling": 20, "fair": 20, "budget": 600},
    "s": {"sizes": (1_000, 10_000), "warm": 1.0, "window": 3.0},
}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# --------------------------------------------------------------------------- (k)


def know(sims: dict[str, Served], redis_url: str, sizes: dict, workers: int, tmp: Path) -> list:
    musicgpt = sims["musicgpt"].url
    port = free_port()
    env = {
        **gateway_env(redis_url, sims, tmp),
        "GATEWAY_REDIS_PREFIX": "know:",
        "GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}",  # callbacks reach it
    }
    found: list = []
    gateway = Served("gateway-know", "gateway.api.asgi:app", workers, env, tmp, port=port)
    try:
        gateway.wait_ready("/health")
        timing = {"queue_seconds": 0.3, "progress_seconds": 0.6}
        found.append(
            run(
                one_by_one(
                    "callbacks",
                    port,
                    musicgpt,
                    sizes["callbacks"],
                    0.05,
                    0.005,
                    {"callbacks": True, **timing},
                )
            )
        )
        print("k1 done", flush=True)
        steps = round(REFRESH_INTERVAL / 0.1)
        found.append(
            run(
                one_by_one(
                    "polling",
                    port,
                    musicgpt,
                    sizes["polling"],
                    0.2,
                    0.01,
                    {"callbacks": False, **timing},
                    lambda k: {"progress_seconds": 0.5 + (k % steps) * 0.1},
                )
            )
        )
        print("k2 done", flush=True)
    finally:
        gateway.stop()
    budget = sizes["budget"]
    env = {
        **gateway_env(redis_url, sims, tmp),
        "GATEWAY_REDIS_PREFIX": "fair:",
        "GATEWAY_UPSTREAM_BUDGETS": f"musicgpt={budget}",
    }
    gateway = Served("gateway-fair", "gateway.api.asgi:app", workers, env, tmp)
    try:
        gateway.wait_ready("/health")
        jobs = sizes["fair"]
        for name, spread in (("together", 0.0), ("spread", 2 * jobs * 60 / budget)):
            found.append(
                run(
                    fair_share(
                        f"fair share, {name}",
                        gateway.port,
                        musicgpt,
                        jobs,
                        budget,
                        REFRESH_INTERVAL,
                        spread,
                    )
                )
            )
            print(f"k3 {name} done", flush=True)
    finally:
        gateway.stop()
    return found


def know_report(found: list[Known], budget: float) -> list[str]:
    lines = ["k. time-to-know: provider completion -> first GET showing completed"]
    for k in found:
        p50, p99 = percentile(k.waits, 50), percentile(k.waits, 99)
        worst = max(k.waits, default=float("nan"))
        over = ""
        if k.name == "callbacks":
            ok = p99 <= TARGET_CALLBACK_P99
            target = f"p99 <= {TARGET_CALLBACK_P99 * 1000:g} ms"
        elif k.name == "polling":
            bound = REFRESH_INTERVAL + TARGET_POLL_SLACK
            ok = worst <= bound
            over = f", {sum(w > bound for w in k.waits)} over {bound:g} s"
            target = f"every job <= interval {REFRESH_INTERVAL:g} s + {TARGET_POLL_SLACK:g} s"
        else:
            bound = k.jobs * 60 / budget + REFRESH_INTERVAL
            ok = worst <= bound
            over = f", {sum(w > bound for w in k.waits)} over {bound:g} s"
            target = (
                f"budget {budget:g}/min: every job <= {k.jobs} x 60 / {budget:g} + "
                f"{REFRESH_INTERVAL:g} = {bound:g} s"
            )
        lines += [
            f"   {k.name}: {len(k.waits)} of {k.jobs} jobs seen completed (polled every "
            f"{k.every * 1000:g} ms), {k.calls} upstream status calls in {k.seconds:.1f} s",
            f"      p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms, max "
            f"{worst * 1000:,.0f} ms{over} (target {target})  {verdict(ok and not k.missing)}",
        ]
    return lines


# --------------------------------------------------------------------------- (s)


def scale_report(
    runs: list[ScaleRun], claims: dict[int, tuple[float, float]], kind: str
) -> list[str]:
    small, big = runs[0], runs[-1]
    us = 1e6

    def ratio(f: float, g: float) -> str:
        return f"{g / f:5.2f}" if f else "  nan"

    def near(f: float, g: float) -> str:
        r = g / f if f else float("nan")
        return f"(target {NEAR[0]:g}-{NEAR[1]:g})  {verdict(NEAR[0] <= r <= NEAR[1])}"

    w1s, w1b = small.windows[1], big.windows[1]
    head = f"{small.jobs:>10,} {big.jobs:>12,}  ratio"
    lines = [
        f"s. scale on Redis {kind}: in-flight jobs {head}",
        f"   seeded through Store.open_job in      {small.seed_seconds:8.1f} s "
        f"{big.seed_seconds:10.1f} s",
    ]
    for r in runs:
        ok = r.memory_per_job <= TARGET_JOB_BYTES
        lines.append(
            f"   Redis memory per job ({r.jobs:,}): {r.memory_per_job:,.0f} B all-in "
            f"(record {r.record_bytes:,.0f} B, MEMORY USAGE) (target <= {TARGET_JOB_BYTES:,} B)"
            f"  {verdict(ok)}"
        )
    (client_s, redis_s), (client_b, redis_b) = claims[small.jobs], claims[big.jobs]
    lines += [
        f"   claim of 100 due jobs, refresher CPU  {client_s * us:8.0f} us "
        f"{client_b * us:10.0f} us {ratio(client_s, client_b)} {near(client_s, client_b)}",
        f"   claim of 100 due jobs, Redis CPU      {redis_s * us:8.0f} us "
        f"{redis_b * us:10.0f} us {ratio(redis_s, redis_b)} "
        "(no target: sorted-set steps are O(log N))",
    ]
    for name, get in (
        ("gateway", lambda w: w.gateway_cpu),
        ("simulator", lambda w: w.sim_cpu),
        ("Redis", lambda w: w.redis_cpu),
    ):
        f, g = w1s.per_refresh(get(w1s)), w1b.per_refresh(get(w1b))
        tail = near(f, g) if name == "gateway" else "(no target)"
        lines.append(
            f"   CPU per refresh, 1 process, {name:9s} {f * us:8.0f} us {g * us:10.0f} us "
            f"{ratio(f, g)} {tail}"
        )
    claimed_s, claimed_b = w1s.claimed / max(1, w1s.claims), w1b.claimed / max(1, w1b.claims)
    lines.append(
        f"   refresher: jobs per claim, 1 process  {claimed_s:8.1f} {claimed_b:13.1f}   "
        f"(claims {w1s.claims} / {w1b.claims} in the window)"
    )
    for n in (1, 2):
        ws, wb = small.windows[n], big.windows[n]
        lines.append(
            f"   refreshes/s, {n} process(es)           {ws.rate:8,.0f} {wb.rate:13,.0f} "
            f"{ratio(ws.rate, wb.rate)} (due at the end: {ws.due_at_end:,} / {wb.due_at_end:,};"
            f" CPU of ours: {(ws.gateway_cpu + ws.sim_cpu + ws.redis_cpu) / ws.seconds:.2f} / "
            f"{(wb.gateway_cpu + wb.sim_cpu + wb.redis_cpu) / wb.seconds:.2f} cores)"
        )
    backlog = [n for n in (1, 2) if small.windows[n].due_at_end]
    kept_up = (
        "none due at the end: it kept up"
        if not backlog
        else "jobs still due at the end with "
        + " and ".join(f"{n} process(es)" for n in backlog)
        + ": it fell behind, so that rate is the refresher's limit"
    )
    lines.append(
        f"   ({small.jobs:,} jobs due every {INTERVAL:g} s ask for at most "
        f"{small.jobs / INTERVAL:,.0f} refreshes/s: a rate near it is the demand, not the "
        f"refresher's limit; {kept_up})"
    )
    lines.append(
        f"   2 processes / 1, refreshes/s          {rate_ratio(small):8.2f} "
        f"{rate_ratio(big):13.2f}   (no target; {os.cpu_count()} cores shared by the gateway "
        "processes, the simulator and Redis)"
    )
    return lines


# ------------------------------------------------------------------------- main


def main() -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--parts", default="oks", help="which of o, k, s to run")
    parser.add_argument("--redis", choices=KINDS, default="cluster", help="Redis of (s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--logs", default="", help="keep the servers' logs in this directory")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    faulthandler.dump_traceback_later(HARD_LIMIT, exit=True)
    load_before, began = os.getloadavg(), time.monotonic()
    if "o" in args.parts:
        ensure_wrk()
    lines: list[str] = []
    keep = contextlib.nullcontext(args.logs) if args.logs else None
    with keep or tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp_dir:
        tmp = Path(tmp_dir)
        tmp.mkdir(parents=True, exist_ok=True)
        embedded = EmbeddedRedis(tmp / "redis", persist=False, port=free_port())
        redis_url = embedded.start()
        served: list[Served] = []
        try:
            sims = start_sims(tmp, served)
            if "o" in args.parts:
                ns = argparse.Namespace(
                    parts="ab", workers=args.workers, connections=64, profile="", **sizes["o"]
                )
                mine: list[Served] = []
                try:
                    stack, job_id = start_gateway_and_bare(redis_url, sims, args.workers, tmp, mine)
                    a, b = overhead(stack, job_id, ns)
                finally:
                    for s in reversed(mine):
                        s.stop()
                lines += [
                    "o. " + line
                    for line in report(ns, a, b, None, None, (load_before, os.getloadavg()))
                ]
            if "k" in args.parts:
                found = know(sims, redis_url, sizes["k"], args.workers, tmp)
                lines += know_report(found, sizes["k"]["budget"])
            if "s" in args.parts:
                scale = sizes["s"]
                with redis_topology(args.redis, tmp) as topo:
                    claims = claim_costs(topo, scale["sizes"])
                    runs = [
                        scale_run(topo, sims["musicgpt"], n, scale["warm"], scale["window"], tmp)
                        for n in scale["sizes"]
                    ]
                kind = f"{args.redis} ({len(topo.ports)} master(s))"
                lines += scale_report(runs, claims, kind)
        finally:
            for s in reversed(served):
                s.stop()
            embedded.stop()
    load_after = os.getloadavg()
    print(
        f"music-gateway time-to-know and scale: {os.cpu_count()} cores, ran "
        f"{time.monotonic() - began:.0f} s{' (--quick)' if args.quick else ''}; load average "
        f"before {load_before[0]:.2f}, after {load_after[0]:.2f}"
    )
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
