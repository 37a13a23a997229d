"""Time-to-know: from a provider's completion to the first client read that shows it
(``benchmarks/bench_scale.py``).

The MusicGPT simulator says when each task completes (``GET /__sim__/tasks/{id}``:
``final_at``, epoch seconds; same machine, same clock). A job is created through the
gateway, its task's ``final_at`` read, and a watcher polls the job (``GET``, one
keep-alive connection per job) from shortly before that moment until an answer shows
``completed``: the wait is that answer's arrival minus ``final_at`` (an upper bound by
the polling gap and one GET).

* ``callbacks``: the simulator calls back; the watcher polls every 5 ms.
* ``polling``: no callbacks; the background refresher (and the watcher's own polls, once
  a refresh is due) find the completion. The tasks' lengths step through one refresh
  interval (0.1 s apart), so completions fall at every phase of the refresh cycle.
* ``fair share``: no callbacks and a tight status-call budget, B calls a minute for N
  jobs in flight: a fair share refreshes each at least every N·60/B s, so each should be
  known within that plus one interval of its completion. Two cases: the N jobs complete
  together (the last one's turn comes after N·60/B s: no call may go to a job already
  known), and their completions spread over 2·N·60/B s (most are still in flight and
  compete for the same calls: no job may lose its turn again and again). Watchers poll
  every 0.5 s from its create on (their phases spread over that gap).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from benchmarks.bench_stack import AUTH, URL, Conn, status_decoder

BODY = msgspec.json.encode({"model": "musicgpt/v7", "prompt": "time to know: a short hymn"})


class _Created(msgspec.Struct):
    id: str
    nativeResponseId: str | None = None  # the public field's name


_created = msgspec.json.Decoder(_Created)


@dataclass
class Known:
    name: str
    waits: list[float]  # s: first answer showing completed - the task's completion
    jobs: int
    every: float  # s between a watcher's polls
    calls: int = 0  # upstream status calls over the part
    seconds: float = 0.0  # how long the part ran

    @property
    def missing(self) -> int:
        return self.jobs - len(self.waits)


async def _sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


async def _watch(
    port: int, job_id: str, final_at: float, start: float, every: float, give_up: float
) -> float | None:
    """Polling from ``start`` (epoch seconds), the seconds from ``final_at`` to the first
    answer showing the job completed (None: not within ``give_up`` s of it)."""
    await _sleep_until(start - 0.01)
    conn = await Conn(port, AUTH).open()
    try:
        await _sleep_until(start)
        while time.time() < final_at + give_up:
            code, body = await conn.request("GET", f"{URL}/{job_id}")
            now = time.time()
            if code != 200:
                raise RuntimeError(f"GET {job_id}: {code} {body[:200]!r}")
            if status_decoder.decode(body).status == "completed":
                return now - final_at
            await asyncio.sleep(every)
        return None
    finally:
        await conn.close()


async def _create(conn: Conn, sim: httpx.AsyncClient) -> tuple[str, float]:
    """(job id, when its task completes upstream)."""
    code, body = await conn.request("POST", URL, BODY)
    if code != 200:
        raise RuntimeError(f"create: {code} {body[:300]!r}")
    job = _created.decode(body)
    if not job.nativeResponseId:
        raise RuntimeError(f"create answered no native id: {body[:300]!r}")
    timeline = (await sim.get(f"/__sim__/tasks/{job.nativeResponseId}")).json()
    return job.id, float(timeline["final_at"])


async def _status_calls(sim: httpx.AsyncClient) -> int:
    return int((await sim.get("/__sim__/stats")).json()["status_calls"])


async def one_by_one(
    name: str,
    port: int,
    sim_url: str,
    jobs: int,
    spacing: float,
    every: float,
    config: dict[str, Any],
    timings: Callable[[int], dict[str, float]] | None = None,
) -> Known:
    """Jobs created ``spacing`` apart (``timings(k)``: the simulator's timings for the
    k-th), each watched from its completion."""
    async with httpx.AsyncClient(base_url=sim_url, timeout=30) as sim:
        (await sim.post("/__sim__/config", json=config)).raise_for_status()
        creator = await Conn(port, AUTH).open()
        watchers = []
        began, calls = time.monotonic(), await _status_calls(sim)
        try:
            for k in range(jobs):
                if timings is not None:
                    (await sim.post("/__sim__/config", json=timings(k))).raise_for_status()
                job_id, final_at = await _create(creator, sim)
                watch = _watch(port, job_id, final_at, final_at - 0.03, every, 10.0)
                watchers.append(asyncio.create_task(watch))
                await asyncio.sleep(spacing)
            waits = await asyncio.gather(*watchers)
        finally:
            await creator.close()
        calls = await _status_calls(sim) - calls
    found = [w for w in waits if w is not None]
    return Known(name, found, jobs, every, calls, time.monotonic() - began)


async def fair_share(
    name: str,
    port: int,
    sim_url: str,
    jobs: int,
    budget: float,
    interval: float,
    spread: float,
) -> Known:
    """``jobs`` created at once (callbacks off) under a budget of ``budget`` status calls
    a minute; the k-th completes ``spread`` x k / ``jobs`` s after the first, 4 s after
    its create at the earliest (spread 0: all together). Each is polled every 0.5 s from
    its create on, as clients waiting for their jobs do (so a job polled only once done
    does not jump the queue)."""
    every = 0.5
    async with httpx.AsyncClient(base_url=sim_url, timeout=30) as sim:
        config = {"callbacks": False, "queue_seconds": 1.0, "progress_seconds": 3.0}
        (await sim.post("/__sim__/config", json=config)).raise_for_status()
        made: list[tuple[str, float]] = []
        conn = await Conn(port, AUTH).open()
        try:
            for k in range(jobs):
                if spread:
                    progress = 3.0 + spread * k / jobs
                    patch = {"progress_seconds": progress}
                    (await sim.post("/__sim__/config", json=patch)).raise_for_status()
                made.append(await _create(conn, sim))
        finally:
            await conn.close()
        began, calls, now = time.monotonic(), await _status_calls(sim), time.time()
        give_up = jobs * 60 / budget + interval + 15.0
        waits = await asyncio.gather(
            *(
                _watch(port, job_id, final_at, now + every * k / jobs, every, give_up)
                for k, (job_id, final_at) in enumerate(made)
            )
        )
        calls = await _status_calls(sim) - calls
    found = [w for w in waits if w is not None]
    return Known(name, found, jobs, every, calls, time.monotonic() - began)
