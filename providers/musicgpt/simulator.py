"""A Litestar app speaking MusicGPT's native wire format, for tests, demos and benchmarks.

Usage::

    from providers.musicgpt.simulator import SimulatorConfig, create_simulator
    app = create_simulator(SimulatorConfig(api_key="k", queue_seconds=0.2))
    # MUSICGPT_BASE_URL=<served address>, MUSICGPT_API_KEY=k

Native surface (MusicGPT's public API docs (https://docs.musicgpt.com)):

* ``POST /v2/MusicAI`` (and the deprecated ``/v1/MusicAI``): a task with two conversion ids,
  ``is_flagged`` when the prompt contains one of ``flag_words``.
* ``GET /v1/byId?conversionType=MUSIC_AI&task_id=...`` (or ``conversion_id=``): the task
  moves ``IN_QUEUE`` -> ``IN_PROGRESS`` [-> ``PARTIAL_COMPLETED``] -> ``COMPLETED`` (or
  ``ERROR`` when the prompt contains one of ``fail_words``) on ``time.monotonic()``;
  merged shape, or the older single-output shape with ``legacy_shape``.
* ``Authorization: <key>``, raw: missing -> 401, anything else than ``api_key`` -> 403.
  With ``echo_auth_in_errors`` every error body quotes the ``Authorization`` received.
* Media: ``GET /media/{task_id}/{conversion_id}.mp3|.wav|.m3u8`` and ``/cover.png``.
* Faults (``Fault``): an error status, malformed JSON or latency on chosen endpoints, for
  the next N requests; ``after_create`` applies one to a create's answer after the task
  was created (a create that timed out although the provider has the job).
* Webhooks to the create's ``webhook_url``: ``audio_streaming`` when a song starts,
  ``music_ai`` (+ ``album_cover_generation``, ``lyrics_timestamped``) when it ends.

Control surface (JSON, ``sim_control.py``): ``GET|POST /__sim__/config`` (POST = partial
update of ``SimulatorConfig``), ``GET /__sim__/stats``, ``POST /__sim__/reset`` (jobs and
counters), ``GET /__sim__/tasks/{task_id}`` (a task's timeline in epoch seconds) and
``POST /__sim__/tasks`` (many tasks at once, for benchmarks).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import time
import uuid
from typing import Any

import httpx
import msgspec
import stamina
import structlog
from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath

from providers.musicgpt import sim_payloads as pl
from providers.musicgpt.sim_config import DEFAULT_WORDS, Endpoint, Fault, SimulatorConfig
from providers.musicgpt.sim_control import control_routes, error, now_iso, respond
from providers.simulator_media import MP3_BYTES, PNG_BYTES, WAV_BYTES

__all__ = ["Fault", "SimulatorConfig", "create_simulator"]

log = structlog.get_logger(__name__)

_JSON = "application/json"
_MEDIA = {"mp3": "audio/mpeg", "wav": "audio/wav", "m3u8": "application/vnd.apple.mpegurl"}
_MODELS = ("v6", "v6-pro", "v7", "v7-pro")


_COUNTERS = (
    "create_calls",
    "creates_accepted",
    "creates_rejected",
    "creates_flagged",
    "status_calls",
    "download_calls",
    "callbacks_sent",
    "callbacks_failed",
    "callback_attempts",
    "faults_injected",
    "auth_failures",
    "rate_limited",
)


class _Undelivered(Exception):
    """The gateway answered a webhook with a non-2xx status (retried like a network error)."""


class Sim:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.jobs: dict[str, pl.SimJob] = {}
        self.by_conversion: dict[str, str] = {}
        self.stats: collections.Counter[str] = collections.Counter()
        self.byid_times: collections.deque[float] = collections.deque()
        self.tasks: set[asyncio.Task[None]] = set()
        self.http: httpx.AsyncClient | None = None
        self.rng = random.Random(config.seed)

    # ------------------------------------------------------------------ helpers

    def words(self) -> dict[str, str]:
        return {**DEFAULT_WORDS, **self.config.status_words}

    def phase(self, job: pl.SimJob) -> pl.Phase:
        return job.phase(time.monotonic(), self.config.partial_completed)

    async def fault(self, kind: Endpoint, after_create: bool = False) -> Response[bytes] | None:
        for rule in list(self.config.faults):
            if kind not in rule.endpoints or (rule.count is not None and rule.count <= 0):
                continue
            if (rule.after_create and kind == "create") != after_create:
                continue
            if rule.count is not None:
                rule.count -= 1
            self.stats["faults_injected"] += 1
            if rule.latency > 0:
                await asyncio.sleep(rule.latency)
            if rule.status is not None:
                resp = error(rule.status, rule.message, rule.body_style)
                if rule.retry_after is not None:
                    resp.headers["Retry-After"] = str(int(rule.retry_after))
                return resp
            if rule.malformed:
                return Response(b'{"success": true, "task_id": "', media_type=_JSON)
            return None
        return None

    def auth(self, request: Request[Any, Any, Any]) -> Response[bytes] | None:
        key = request.headers.get("authorization")
        if key == self.config.api_key:
            return None
        self.stats["auth_failures"] += 1
        if not key:
            return error(401, "Unauthorized: missing API key")
        return error(403, "Incorrect API key")

    def active(self) -> int:
        return sum(
            self.phase(j) in ("queued", "in_progress", "partial") for j in self.jobs.values()
        )

    def stats_doc(self) -> dict[str, Any]:
        finals: collections.Counter[str] = collections.Counter()
        words = self.words()
        for job in self.jobs.values():
            phase = self.phase(job)
            if phase in ("completed", "failed", "flagged"):
                finals[words[phase]] += 1
        doc: dict[str, Any] = {name: self.stats[name] for name in _COUNTERS}
        doc["byid_calls"] = doc["status_calls"]
        doc["jobs_total"] = len(self.jobs)
        doc["jobs_active"] = self.active()
        doc["jobs_by_final_state"] = dict(finals)
        return doc

    # ---------------------------------------------------------------- callbacks

    def spawn(self, job: pl.SimJob) -> None:
        task = asyncio.get_running_loop().create_task(self._callbacks(job))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _callbacks(self, job: pl.SimJob) -> None:
        try:
            natural = self.config.callback_order == "natural"
            early: list[dict[str, Any]] = []
            if not job.flagged:
                await self._sleep_until(job.created + job.queue_seconds)
                early = pl.streaming_hooks(job) if self.config.callback_shape == "artefact" else []
                if natural:
                    await self._deliver_all(job, early)
                    early = []
                await self._sleep_until(job.created + job.queue_seconds + job.progress_seconds)
            cfg = self.config
            batch = early + pl.final_hooks(job, cfg.callback_shape, cfg.string_numbers)
            await self._deliver_all(job, batch)
        except asyncio.CancelledError:
            raise
        except Exception:  # the simulator must never crash on a callback
            log.exception("sim_callback_crashed", task_id=job.task_id)

    async def _sleep_until(self, moment: float) -> None:
        await asyncio.sleep(max(0.0, moment - time.monotonic()))

    async def _deliver_all(self, job: pl.SimJob, hooks: list[dict[str, Any]]) -> None:
        cfg = self.config
        if not cfg.callbacks or not job.webhook_url or not hooks:
            return
        items = [h for h in hooks for _ in range(1 + max(0, cfg.callback_duplicates))]
        if cfg.callback_order == "reverse":
            items.reverse()
        elif cfg.callback_order == "shuffle":
            self.rng.shuffle(items)
        for payload in items:
            await self._deliver(job.webhook_url, payload)

    async def _deliver(self, url: str, payload: dict[str, Any]) -> None:
        """POST one webhook; retried ``callback_retries`` times (0.05 s, doubling) on a
        network error or a non-2xx answer."""
        body = msgspec.json.encode(payload)
        retrying = stamina.retry_context(
            on=(httpx.HTTPError, _Undelivered),
            attempts=1 + max(0, self.config.callback_retries),
            timeout=None,
            wait_initial=0.05,
            wait_jitter=0.0,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    self.stats["callback_attempts"] += 1
                    if self.http is None or self.http.is_closed:
                        self.http = httpx.AsyncClient(timeout=self.config.callback_timeout)
                    resp = await self.http.post(url, content=body, headers={"Content-Type": _JSON})
                    if not resp.is_success:
                        raise _Undelivered(resp.status_code)
        except (httpx.HTTPError, _Undelivered):
            self.stats["callbacks_failed"] += 1
            return
        self.stats["callbacks_sent"] += 1

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(BaseException):
                await task
        if self.http is not None:
            await self.http.aclose()
            self.http = None

    # ---------------------------------------------------------------- endpoints

    async def create(self, request: Request[Any, Any, Any], versioned: bool) -> Response[bytes]:
        self.stats["create_calls"] += 1  # every create request, faulted or not
        if (resp := await self.fault("create")) is not None:
            return resp
        if (resp := self.auth(request)) is not None:
            return resp
        try:
            body = msgspec.json.decode(await request.body())
        except msgspec.DecodeError:
            body = None
        if not isinstance(body, dict):
            self.stats["creates_rejected"] += 1
            return error(400, "Request body must be a JSON object")
        text = " ".join(str(body.get(k) or "") for k in ("prompt", "lyrics", "music_style"))
        model = body.get("model") or "v6"
        if not text.strip() or (versioned and model not in _MODELS):
            self.stats["creates_rejected"] += 1
            return error(400, "Provide a prompt, lyrics or music_style and a valid model")
        cfg = self.config
        if cfg.max_concurrent is not None and self.active() >= cfg.max_concurrent:
            self.stats["rate_limited"] += 1
            return error(429, "Concurrency limit reached for your plan")
        lowered = text.lower()
        flagged = any(w.lower() in lowered for w in cfg.flag_words if w)
        job = pl.SimJob(
            task_id=str(uuid.uuid4()),
            conversion_ids=(str(uuid.uuid4()), str(uuid.uuid4())),
            created=time.monotonic(),
            created_wall=time.time(),
            created_at=now_iso(),
            base_url=str(request.base_url).rstrip("/"),
            queue_seconds=cfg.queue_seconds,
            progress_seconds=cfg.progress_seconds,
            prompt=str(body.get("prompt") or ""),
            style=body.get("music_style"),
            title=body.get("title"),
            lyrics=body.get("lyrics"),
            instrumental=bool(body.get("make_instrumental")),
            model=str(model),
            webhook_url=body.get("webhook_url"),
            cover=bool(body.get("generate_album_cover")),
            timestamps=bool(body.get("lyrics_timestamps")),
            flagged=flagged,
            fail=any(w.lower() in lowered for w in cfg.fail_words if w),
            reason=cfg.flag_reason if flagged else "",
        )
        self.jobs[job.task_id] = job
        for cid in job.conversion_ids:
            self.by_conversion[cid] = job.task_id
        self.stats["creates_flagged" if flagged else "creates_accepted"] += 1
        if job.webhook_url:
            self.spawn(job)
        if (resp := await self.fault("create", after_create=True)) is not None:
            return resp  # the task exists upstream; this answer is an error, late or broken
        eta = round(cfg.queue_seconds + cfg.progress_seconds)
        return respond(
            {
                "success": True,
                "message": "Message published to queue",
                "task_id": job.task_id,
                "eta": str(eta) if cfg.string_numbers else eta,
                "conversion_id_1": job.conversion_ids[0],
                "conversion_id_2": job.conversion_ids[1],
                "is_flagged": flagged,
                "reason": job.reason,
                "credit_estimate": pl.COST,
            }
        )

    async def by_id(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        self.stats["status_calls"] += 1
        if (resp := await self.fault("status")) is not None:
            return resp
        if (resp := self.auth(request)) is not None:
            return resp
        limit = self.config.byid_per_minute
        now = time.monotonic()
        while self.byid_times and self.byid_times[0] < now - 60:
            self.byid_times.popleft()
        if limit is not None and len(self.byid_times) >= limit:
            self.stats["rate_limited"] += 1
            return error(429, "Rate limit exceeded for byId")
        self.byid_times.append(now)
        q = request.query_params
        task_id, cid = q.get("task_id"), q.get("conversion_id")
        if bool(task_id) == bool(cid):
            return error(400, "Provide either task_id or conversion_id, not both")
        if q.get("conversionType") != "MUSIC_AI":
            return error(400, "Unsupported conversionType")
        job = self.jobs.get(task_id or self.by_conversion.get(cid or "", ""))
        if job is None:
            return error(404, "Conversion not found")
        phase = self.phase(job)
        cfg = self.config
        build = pl.legacy_conversion if cfg.legacy_shape else pl.merged_conversion
        conv = build(job, phase, self.words()[phase], now_iso(), cfg.string_numbers)
        return respond({"success": True, "conversion": conv})

    async def media(self, task_id: str, name: str) -> Response[bytes]:
        self.stats["download_calls"] += 1
        if (resp := await self.fault("download")) is not None:
            return resp
        job = self.jobs.get(task_id)
        stem, _, ext = name.rpartition(".")
        if job is None or (stem not in job.conversion_ids and name not in pl.COVERS):
            return error(404, "File not found")
        if name in pl.COVERS:
            return Response(PNG_BYTES, media_type="image/png")
        if ext not in _MEDIA:
            return error(404, "File not found")
        data = {"mp3": MP3_BYTES, "wav": WAV_BYTES}.get(ext) or pl.hls_playlist(stem)
        return Response(data, media_type=_MEDIA[ext])

    def echo_auth(self, request: Request[Any, Any, Any], resp: Response[bytes]) -> Response[bytes]:
        """With ``echo_auth_in_errors``, quote the received Authorization in an error body."""
        if not self.config.echo_auth_in_errors or resp.status_code < 400:
            return resp
        try:
            body = msgspec.json.decode(resp.content)
        except msgspec.DecodeError:
            return resp
        received = request.headers.get("authorization", "")
        for name in ("error", "message", "detail"):
            if isinstance(body, dict) and isinstance(body.get(name), str):
                body[name] += f" (received Authorization: {received})"
                return respond(body, resp.status_code, dict(resp.headers))
        return resp


def create_simulator(config: SimulatorConfig | None = None) -> Litestar:
    """The simulator app; ``config`` is shared and may be mutated while it runs."""
    sim = Sim(config or SimulatorConfig())

    @post("/v2/MusicAI")
    async def create_v2(request: Request[Any, Any, Any]) -> Response[bytes]:
        return sim.echo_auth(request, await sim.create(request, versioned=True))

    @post("/v1/MusicAI")
    async def create_v1(request: Request[Any, Any, Any]) -> Response[bytes]:
        return sim.echo_auth(request, await sim.create(request, versioned=False))

    @get("/v1/byId")
    async def by_id(request: Request[Any, Any, Any]) -> Response[bytes]:
        return sim.echo_auth(request, await sim.by_id(request))

    @get("/media/{task_id:str}/{name:str}")
    async def media(
        request: Request[Any, Any, Any], task_id: FromPath[str], name: FromPath[str]
    ) -> Response[bytes]:
        return sim.echo_auth(request, await sim.media(task_id, name))

    app = Litestar(
        route_handlers=[create_v2, create_v1, by_id, media, *control_routes(sim)],
        on_shutdown=[sim.close],
        openapi_config=None,
    )
    app.state.sim = sim
    return app
