"""Soak: random creates and polls through the gateway while upstream faults come and go.

In this one process: a throwaway Redis (or ``REDIS_URL``, under a fresh key prefix), both
provider simulators and the gateway, each served by uvicorn on loopback, with provider
callbacks on (``GATEWAY_PUBLIC_URL`` is the gateway itself). For ``--seconds`` concurrent
clients create jobs with ``Idempotency-Key`` (retrying some, replaying some, racing a few
on one key) and poll them, while a chaos loop switches a random fault on each simulator
every tick: 5xx and 429 on create, create latency, creates accepted but answered after
the provider's read timeout, 5xx, malformed JSON and timeouts on status polls. Then the
faults stop and every accepted job is polled until final (bounded by ``--drain``).

Both sides are counted: the jobs the gateway accepted (200 on create, distinct ids) and
their final status; the jobs each simulator created (``/__sim__/stats``) against the
native ids the gateway stored in Redis. ``lost`` = accepted jobs missing or never final;
``duplicated`` = upstream jobs beyond one per gateway job (more jobs upstream than stored
native ids plus creates that failed with ``upstream_outcome_unknown``), native ids held
by two gateway jobs, and 200 answers naming a second job for one ``Idempotency-Key``.

Usage::

    python3 -m uv run python benchmarks/soak.py --seconds 60 [--clients 8] [--seed 7]

Detail lines first, then exactly one summary line; exit status 1 when anything was lost
or duplicated::

    412 accepted, 412 final, 0 lost, 0 duplicated
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import faulthandler
import logging
import os
import random
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.api.app import create_app  # noqa: E402
from gateway.cli.demo import ThreadedServer, free_port  # noqa: E402
from gateway.infra.settings import Settings  # noqa: E402
from gateway.store.embedded import EmbeddedRedis  # noqa: E402
from gateway.store.store import JobRecord  # noqa: E402
from tests.support.upstreams import UPSTREAMS, Upstream  # noqa: E402

MAX_SECONDS = 120  # hard cap on the driving phase
MAX_DRAIN = 60  # hard cap on polling the accepted jobs to final
READ_TIMEOUT = 1.0  # the providers' read timeout
LATE = 2.5  # a late create answer arrives this long after the job was made
MAX_LATE = 3  # late-answer faults per simulator per run ("a create timeout or two")
TICK = 0.8  # seconds between fault switches
URL = "/v1/music/generate"
KEYS = ("sk-soak-client-0001", "sk-soak-client-0002")
MODELS = {
    "musicgpt": ("musicgpt/v7", "musicgpt/v6", "musicgpt/v7-pro"),
    "tempolor": ("tempolor/v4.8", "tempolor/v3.5", "tempolor/i3.5"),
    "suno": ("suno/v4.5", "suno/v5", "suno/v4.5plus"),
}
TIMING = {
    "musicgpt": {"queue": 0.5, "run": 1.5},
    "tempolor": {"queue": 0.3, "run": 1.5},
    "suno": {"queue": 0.3, "run": 1.5},
}
FINAL = ("completed", "failed")


@dataclass
class Tally:
    """What the clients saw."""

    accepted: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> key, provider
    final: dict[str, str] = field(default_factory=dict)  # id -> completed | failed
    by_idem: dict[str, set[str]] = field(default_factory=lambda: collections.defaultdict(set))
    creates: collections.Counter[str] = field(default_factory=collections.Counter)
    polls: collections.Counter[str] = field(default_factory=collections.Counter)
    faults: collections.Counter[str] = field(default_factory=collections.Counter)


class Soak:
    def __init__(self, gateway: str, sims: dict[str, str], rng: random.Random) -> None:
        self.gateway = gateway
        self.sims = sims  # provider -> simulator URL
        self.rng = rng
        self.tally = Tally()
        self.serial = 0
        self.late_left = dict.fromkeys(sims, MAX_LATE)

    # ------------------------------------------------------------------ clients

    async def post(
        self, http: httpx.AsyncClient, key: str, body: dict[str, Any], idem: str
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": idem}
        r = await http.post(URL, json=body, headers=headers)
        error = "" if r.status_code == 200 else " " + r.json().get("error", "?")
        replay = " replayed" if r.headers.get("Idempotent-Replayed") == "true" else ""
        self.tally.creates[f"{r.status_code}{error}{replay}"] += 1
        if r.status_code == 200:
            job = r.json()
            self.tally.accepted[job["id"]] = (key, job["provider"])
            self.tally.by_idem[f"{key}/{idem}"].add(job["id"])
            if job["status"] in FINAL:
                self.tally.final[job["id"]] = job["status"]
        return r

    async def create(self, http: httpx.AsyncClient) -> None:
        rng = self.rng
        self.serial += 1
        provider = rng.choice(sorted(MODELS))
        prompt = f"soak take {self.serial}: a {rng.choice(['calm', 'wild', 'dark'])} tune"
        if provider == "musicgpt" and rng.random() < 0.05:
            prompt += " failme"  # the simulator ends this one in ERROR
        body = {"model": rng.choice(MODELS[provider]), "prompt": prompt}
        key, idem = rng.choice(KEYS), f"soak-{self.serial}-{secrets.token_hex(4)}"
        if rng.random() < 0.05:  # two clients racing on one key: one job
            await asyncio.gather(*(self.post(http, key, body, idem) for _ in range(2)))
            return
        r = await self.post(http, key, body, idem)
        retry = r.status_code >= 429 or r.status_code == 409
        if (retry and rng.random() < 0.5) or (r.status_code == 200 and rng.random() < 0.15):
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            await self.post(http, key, body, idem)  # a retry with the same key and body

    async def poll(self, http: httpx.AsyncClient, job_id: str) -> str | None:
        key, _ = self.tally.accepted[job_id]
        r = await http.get(f"{URL}/{job_id}", headers={"Authorization": f"Bearer {key}"})
        stale = " stale" if r.headers.get("X-Gateway-Stale") == "true" else ""
        self.tally.polls[f"{r.status_code}{stale}"] += 1
        if r.status_code != 200:
            return None
        status = r.json()["status"]
        if status in FINAL:
            self.tally.final[job_id] = status
        return status

    async def client(self, http: httpx.AsyncClient, until: float) -> None:
        while time.monotonic() < until:
            open_jobs = [j for j in self.tally.accepted if j not in self.tally.final]
            if not open_jobs or self.rng.random() < 0.4:
                await self.create(http)
            else:
                await self.poll(http, self.rng.choice(open_jobs))
            await asyncio.sleep(self.rng.uniform(0.0, 0.05))

    # -------------------------------------------------------------------- chaos

    def fault(self, name: str, up: Upstream) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        menu: list[tuple[str, float]] = [
            ("none", 3),
            ("create_5xx", 2),
            ("create_429", 1),
            ("create_latency", 1),
            ("create_malformed", 0.3),
            ("status_5xx", 2),
            ("status_malformed", 1),
            ("status_timeout", 0.5),
            ("create_late", 0.4 if self.late_left[name] > 0 else 0),
        ]
        kind = rng.choices([k for k, _ in menu], weights=[w for _, w in menu])[0]
        if kind == "create_5xx":
            return kind, up.create_error(rng.choice([500, 502, 503]), count=rng.randint(1, 3))
        if kind == "create_429":
            return kind, up.create_error(429, retry_after=rng.choice([None, 1]), count=1)
        if kind == "create_malformed":  # unreadable: the gateway cannot know; it waits
            return kind, up.create_malformed(count=1)
        if kind == "create_latency":
            return kind, up.create_latency(rng.uniform(0.05, 0.4), count=rng.randint(1, 4))
        if kind == "status_5xx":
            return kind, up.status_error(rng.choice([500, 503]), count=rng.randint(1, 6))
        if kind == "status_malformed":
            return kind, up.status_malformed(count=rng.randint(1, 4))
        if kind == "status_timeout":
            return kind, up.status_latency(READ_TIMEOUT + 0.5, count=rng.randint(1, 3))
        if kind == "create_late":
            self.late_left[name] -= 1
            return kind, up.create_answer_late(LATE, count=1)
        return kind, up.fast(**TIMING[name])

    async def chaos(self, http: httpx.AsyncClient, until: float) -> None:
        while time.monotonic() < until:
            for name, url in self.sims.items():
                up = UPSTREAMS[name]
                kind, patch = self.fault(name, up)
                r = await http.post(f"{url}/__sim__/config", json=patch)
                r.raise_for_status()
                self.tally.faults[f"{name} {kind}"] += 1
            await asyncio.sleep(TICK)

    async def calm(self, http: httpx.AsyncClient) -> None:
        for name, url in self.sims.items():
            r = await http.post(f"{url}/__sim__/config", json=UPSTREAMS[name].fast(**TIMING[name]))
            r.raise_for_status()

    # -------------------------------------------------------------------- drain

    async def drain(self, http: httpx.AsyncClient, until: float) -> None:
        """Poll every accepted job that is not final yet until it is (or time is up)."""
        gate = asyncio.Semaphore(16)

        async def settle(job_id: str) -> None:
            while time.monotonic() < until:
                async with gate:
                    status = await self.poll(http, job_id)
                if status in FINAL:
                    return
                await asyncio.sleep(0.3)

        pending = [j for j in self.tally.accepted if j not in self.tally.final]
        await asyncio.gather(*(settle(j) for j in pending))


# ---------------------------------------------------------------------- counting


def stored_records(redis_url: str, prefix: str) -> list[JobRecord]:
    decoder = msgspec.msgpack.Decoder(JobRecord)
    client = redis.Redis.from_url(redis_url)
    try:
        names = list(client.scan_iter(match=f"{prefix}job:*", count=1000))
        raws = client.mget(names) if names else []
        return [decoder.decode(raw) for raw in raws if raw]
    finally:
        client.close()


def reckon(
    tally: Tally, records: list[JobRecord], sim_stats: dict[str, dict[str, Any]]
) -> tuple[list[str], int, int]:
    """Detail lines, lost and duplicated, from both sides' counts."""
    lines: list[str] = []
    by_id = {r.id: r for r in records}
    missing = [j for j in tally.accepted if j not in by_id]
    unfinished = [j for j in tally.accepted if j in by_id and j not in tally.final]
    stored_not_final = [j for j in tally.final if j in by_id and by_id[j].status not in FINAL]
    lost = len(missing) + len(unfinished) + len(stored_not_final)
    if lost:
        lines.append(
            f"lost: {len(missing)} missing from Redis, {len(unfinished)} never final, "
            f"{len(stored_not_final)} final to the client but not in Redis; e.g. "
            f"{(missing + unfinished + stored_not_final)[:3]}"
        )
    idem_dupes = sum(len(ids) - 1 for ids in tally.by_idem.values() if len(ids) > 1)
    holders: collections.Counter[str] = collections.Counter(
        native for r in records for native in set(r.native_ids)
    )
    shared = sum(n - 1 for n in holders.values() if n > 1)
    duplicated = idem_dupes + shared
    for name, stats in sim_stats.items():
        up = UPSTREAMS[name]
        mine = [r for r in records if r.provider == name]
        natives = {r.native_id for r in mine if r.native_id}  # one per upstream create
        unknown = sum(
            1 for r in mine if r.error is not None and r.error.code == "upstream_outcome_unknown"
        )
        made = up.jobs_made(stats)
        excess = max(0, made - len(natives) - unknown)
        duplicated += excess
        statuses = collections.Counter(r.status for r in mine)
        lines.append(
            f"{name}: simulator made {made} jobs from {stats['create_calls']} create calls "
            f"({stats['faults_injected']} faults injected, {stats['callbacks_sent']} callbacks "
            f"sent, {stats['callbacks_failed']} failed); gateway stored {len(mine)} jobs "
            f"{dict(statuses)} holding {len(natives)} native ids, {unknown} failed "
            f"upstream_outcome_unknown; excess upstream {excess}"
        )
        if len(natives) > made:
            lines.append(f"{name}: the gateway holds native ids the simulator never made")
    codes = collections.Counter(
        r.error.code for r in records if r.id in tally.accepted and r.error is not None
    )
    lines.append(f"accepted jobs failed by code: {dict(codes)}")
    lines.append(
        f"duplicates: {idem_dupes} Idempotency-Key answered with a second job, "
        f"{shared} native ids held by two gateway jobs"
    )
    return lines, lost, duplicated


# ------------------------------------------------------------------------ running


async def drive(soak: Soak, clients: int, seconds: float, drain: float) -> None:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=soak.gateway, timeout=30, limits=limits) as http:
        until = time.monotonic() + seconds
        await asyncio.gather(
            soak.chaos(http, until), *(soak.client(http, until) for _ in range(clients))
        )
        await soak.calm(http)
        await soak.drain(http, time.monotonic() + drain)


def main() -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help=f"at most {MAX_SECONDS}")
    parser.add_argument("--drain", type=float, default=45, help=f"at most {MAX_DRAIN}")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--log-level", default="critical", help="the gateway's log level")
    args = parser.parse_args()
    seconds = max(1.0, min(args.seconds, MAX_SECONDS))
    drain = max(5.0, min(args.drain, MAX_DRAIN))
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    # Hard bound: whatever hangs, the process ends (with a traceback) well within minutes.
    faulthandler.dump_traceback_later(seconds + drain + 90, exit=True)

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        embedded = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            embedded = EmbeddedRedis(Path(tmp) / "redis", persist=False, port=free_port())
            redis_url = embedded.start()
        prefix = f"soak{secrets.token_hex(4)}:"
        servers: list[ThreadedServer] = []
        try:
            sims: dict[str, str] = {}
            env: dict[str, str] = {}
            for name, up in UPSTREAMS.items():
                server = ThreadedServer(up.app())
                servers.append(server)
                sims[name] = server.start()
                env |= up.env(sims[name], read_timeout=READ_TIMEOUT)
                httpx.post(f"{sims[name]}/__sim__/config", json=up.fast(**TIMING[name]))
            port = free_port()
            gateway = f"http://127.0.0.1:{port}"
            env |= {
                "REDIS_URL": redis_url,
                "GATEWAY_REDIS_PREFIX": prefix,
                "GATEWAY_API_KEYS": ",".join(KEYS),
                "GATEWAY_PUBLIC_URL": gateway,
                "GATEWAY_DATA_DIR": str(Path(tmp) / "data"),
                "GATEWAY_REFRESH_INTERVAL": "0.5",
                "GATEWAY_RATE_LIMIT_RPM": "0",
                "GATEWAY_MAX_INFLIGHT_JOBS": "0",
                "GATEWAY_UNKNOWN_OUTCOME_SECONDS": "15",
                "GATEWAY_BREAKER_COOLDOWN": "2",
                "GATEWAY_LOG_LEVEL": args.log_level,
                "GATEWAY_LOG_FORMAT": "json",
            }
            server = ThreadedServer(create_app(Settings.from_env(env)), port)
            servers.append(server)
            server.start()
            print(
                f"soak: {seconds:g} s, {args.clients} clients, seed {seed}, drain <= {drain:g} s; "
                f"gateway {gateway}, simulators {sims}",
                flush=True,
            )
            soak = Soak(gateway, sims, random.Random(seed))
            started = time.monotonic()
            asyncio.run(drive(soak, args.clients, seconds, drain))
            elapsed = time.monotonic() - started
            sim_stats = {n: httpx.get(f"{u}/__sim__/stats").json() for n, u in sims.items()}
            records = stored_records(redis_url, prefix)
        finally:
            for server in reversed(servers):
                server.stop()
            if embedded is not None:
                embedded.stop()

    tally = soak.tally
    lines, lost, duplicated = reckon(tally, records, sim_stats)
    print(f"ran {elapsed:.1f} s; faults switched: {dict(sorted(tally.faults.items()))}")
    print(f"create answers: {dict(sorted(tally.creates.items()))}")
    print(f"poll answers: {dict(sorted(tally.polls.items()))}")
    finals = collections.Counter(tally.final.values())
    print(f"final: {dict(finals)}")
    for line in lines:
        print(line)
    accepted = len(tally.accepted)
    final = sum(1 for j in tally.accepted if j in tally.final)
    print(f"{accepted} accepted, {final} final, {lost} lost, {duplicated} duplicated", flush=True)
    return 1 if lost or duplicated else 0


if __name__ == "__main__":
    sys.exit(main())
