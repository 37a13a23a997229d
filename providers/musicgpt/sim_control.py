"""The MusicGPT simulator's control surface (``/__sim__/*``, JSON) and its response helpers.

* ``GET|POST /__sim__/config``: the knobs (``SimulatorConfig``); POST is a partial update
  (unknown fields or wrong types: 400).
* ``GET /__sim__/stats``: the counters; ``POST /__sim__/reset`` forgets tasks and counters.
* ``GET /__sim__/tasks/{task_id}``: one task's timeline in epoch seconds (``created_at``,
  ``started_at``, ``final_at``: the moment it completes or fails) and its ``phase`` now,
  so a benchmark can time what a client sees against the provider's own completion.
* ``POST /__sim__/tasks`` ``{"count": N, "queue_seconds"?, "progress_seconds"?}``: N tasks
  made at once without the create endpoint (no counter moves, no callbacks), answered as
  ``{"tasks": [[task_id, conversion_id_1, conversion_id_2], ...]}``: many in-flight
  tasks for a benchmark in a second instead of N create calls.
"""

from __future__ import annotations

import collections
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from providers.kit.simulation import apply_patch
from providers.musicgpt import sim_payloads as pl
from providers.musicgpt.sim_config import SimulatorConfig


class Sim(Protocol):
    """The simulator state the control surface reads and changes (``simulator.Sim``)."""

    config: SimulatorConfig
    rng: random.Random
    jobs: dict[str, pl.SimJob]
    by_conversion: dict[str, str]
    stats: collections.Counter[str]
    byid_times: collections.deque[float]

    def phase(self, job: pl.SimJob) -> pl.Phase: ...

    def stats_doc(self) -> dict[str, Any]: ...


_JSON = "application/json"
_ERRORS = {
    400: "Invalid request",
    401: "Unauthorized",
    402: "Insufficient credit balance",
    403: "Incorrect API key",
    404: "Conversion not found",
    409: "Conflict",
    422: "Unprocessable entity",
    429: "Too many requests",
    500: "Internal server error",
}
MAX_SEEDED = 200_000  # tasks one ``POST /__sim__/tasks`` may make


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def respond(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        msgspec.json.encode(data), status_code=status, media_type=_JSON, headers=headers
    )


def error(status: int, message: str | None = None, style: str = "error") -> Response[bytes]:
    """A native MusicGPT error body (``{"success": false, "error": ...}`` or a variant)."""
    text = message or _ERRORS.get(status, f"HTTP {status}")
    body = {"detail": text} if style == "detail" else {"success": False, style: text}
    return respond(body, status)


class Seed(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /__sim__/tasks``'s body."""

    count: int = 1
    queue_seconds: float | None = None  # default: the configured timings
    progress_seconds: float | None = None
    prompt: str = "seeded"


def seed_tasks(sim: Sim, base_url: str, raw: bytes) -> Response[bytes]:
    try:
        spec = msgspec.json.decode(raw, type=Seed)
    except msgspec.DecodeError as exc:
        return error(400, str(exc))
    if not 0 < spec.count <= MAX_SEEDED:
        return error(400, f"count must be 1 to {MAX_SEEDED}")
    cfg = sim.config
    queue = cfg.queue_seconds if spec.queue_seconds is None else spec.queue_seconds
    progress = cfg.progress_seconds if spec.progress_seconds is None else spec.progress_seconds
    made = []
    for _ in range(spec.count):
        job = pl.SimJob(
            task_id=str(uuid.uuid4()),
            conversion_ids=(str(uuid.uuid4()), str(uuid.uuid4())),
            created=time.monotonic(),
            created_wall=time.time(),
            created_at=now_iso(),
            base_url=base_url,
            queue_seconds=queue,
            progress_seconds=progress,
            prompt=spec.prompt,
            model="v7",
        )
        sim.jobs[job.task_id] = job
        for cid in job.conversion_ids:
            sim.by_conversion[cid] = job.task_id
        made.append([job.task_id, *job.conversion_ids])
    return respond({"tasks": made})


def control_routes(sim: Sim) -> list[HTTPRouteHandler]:
    """The ``/__sim__/*`` route handlers over one simulator's state."""

    @get("/__sim__/config")
    async def get_config() -> Response[bytes]:
        return respond(msgspec.to_builtins(sim.config))

    @post("/__sim__/config")
    async def set_config(request: Request[Any, Any, Any]) -> Response[bytes]:
        try:
            patch = apply_patch(sim.config, await request.body())
        except ValueError as exc:
            return error(400, str(exc))
        if "seed" in patch:
            sim.rng.seed(sim.config.seed)
        return respond(msgspec.to_builtins(sim.config))

    @get("/__sim__/stats")
    async def stats() -> Response[bytes]:
        return respond(sim.stats_doc())

    @get("/__sim__/tasks/{task_id:str}")
    async def task(task_id: FromPath[str]) -> Response[bytes]:
        job = sim.jobs.get(task_id)
        if job is None:
            return error(404, "Conversion not found")
        return respond(job.timeline(sim.phase(job)))

    @post("/__sim__/tasks")
    async def seed(request: Request[Any, Any, Any]) -> Response[bytes]:
        return seed_tasks(sim, str(request.base_url).rstrip("/"), await request.body())

    @post("/__sim__/reset")
    async def reset() -> Response[bytes]:
        sim.jobs.clear()
        sim.by_conversion.clear()
        sim.stats.clear()
        sim.byid_times.clear()
        return respond(sim.stats_doc())

    return [get_config, set_config, stats, task, seed, reset]
