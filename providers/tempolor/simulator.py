"""A useapi.net TemPolor simulator: a Litestar app speaking the native wire format.

For tests, the demo and benchmarks. It follows useapi.net's TemPolor docs
(https://useapi.net/docs/api-tempolor-v1):
paths under ``/v1``, ``Authorization: Bearer <token>`` checked, the ``{"error", "code"}``
envelope on every error, ``jobs`` arrays on create, status ``0`` (progress rising) then
``30`` (or ``10``), download URLs that expire after ``remainSeconds`` and that answer 404
for a configurable moment right after completion, callbacks to ``replyUrl`` carrying
``replyRef``, and real audio/cover bytes at the URLs it hands out::

    app = create_simulator(SimulatorConfig(queue_seconds=0.1, generate_seconds=0.3))
    with serve(app) as base:      # USEAPI_BASE_URL = base + "/v1"
        httpx.post(base + "/__sim__/config", json={"fault_status": 503, "fault_count": 1})
        httpx.get(base + "/__sim__/stats").json()

Knobs (``SimulatorConfig``) can be changed at runtime with ``POST /__sim__/config``
(partial JSON); ``echo_auth_in_errors`` makes error envelopes quote the ``Authorization``
header received, as some real APIs do; ``answer_delay_seconds`` holds a create's answer
back after its jobs exist (a create that times out although it was accepted).
``GET /__sim__/stats`` counts both sides of the conversation,
``GET /__sim__/creates`` lists the create bodies received, ``POST /__sim__/reset`` forgets
jobs and counters. Progression uses ``time.monotonic()``; each job keeps the timing knobs
it was created with.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import stamina
from litestar import Litestar, Request, Response, get, post

from providers.kit.simulation import apply_patch
from providers.simulator_media import MP3_BYTES, PNG_BYTES, WAV_BYTES
from providers.tempolor.sim_payloads import SimJob, status_body, validate_create

ENDPOINTS = ("create", "status", "download")
MAX_JOBS_KEPT = 20_000
_STYLES = ("Pop", "Orchestral", "Lo-fi", "Rock", "Electronic", "Jazz")


class _Undelivered(Exception):
    """The gateway answered a callback with 300 or above (retried like a network error)."""


class SimulatorConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every knob of the simulator; mutable, and patchable over ``POST /__sim__/config``."""

    api_token: str = "sim-useapi-token"  # noqa: S105 (the Bearer token the simulator accepts)
    account: str = "12345"  # appears in job ids: user:<account>-tempolor:<user_id>-job:<item>
    queue_seconds: float = 0.2  # status 0 with progress 0
    generate_seconds: float = 0.5  # status 0 with progress rising 1..99
    download_404_seconds: float = 0.0  # after completion the download endpoint answers 404
    url_ttl_seconds: float = 600.0  # remainSeconds of each download URL; the URL dies after
    report_remain_seconds: bool = True  # False: answer remainSeconds 0 like the doc example
    jobs_per_create: int = 1  # how many native jobs one create answers
    fail_next_jobs: int = 0  # the next N native jobs created end with status 10
    odd_final_status: int | None = None  # jobs created while set end with this status
    odd_status_final: bool = True  # ... and this status_final
    max_parallel_jobs: int | None = None  # 429 when this many jobs are generating
    fault_status: int | None = None  # answer this HTTP status with the native envelope
    fault_message: str | None = None
    echo_auth_in_errors: bool = False  # error envelopes quote the Authorization received
    malformed_json: bool = False  # answer 200 with a broken JSON body
    fault_count: int | None = None  # faults hit only the next N matching requests
    fault_endpoints: list[str] = msgspec.field(default_factory=lambda: list(ENDPOINTS))
    latency_seconds: float = 0.0  # added before answering
    latency_endpoints: list[str] = msgspec.field(default_factory=lambda: list(ENDPOINTS))
    retry_after: int | None = None  # Retry-After header on 429 answers (unconfirmed upstream)
    # create only: the jobs are created (callbacks included), then the answer waits this
    # long: a create that times out although useapi.net has the jobs
    answer_delay_seconds: float = 0.0
    answer_delay_count: int | None = None  # delay only the next N creates; None = all
    callbacks: bool = True  # POST progress updates to replyUrl
    callback_retries: int = 2  # extra attempts per callback
    callback_timeout: float = 2.0


@dataclass
class _Sim:
    config: SimulatorConfig
    jobs: dict[str, SimJob] = field(default_factory=dict)
    urls: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # key->item,fmt,exp
    creates: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    http: httpx.AsyncClient | None = None

    def count(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n

    def snapshot_stats(self) -> dict[str, Any]:
        now = time.monotonic()
        by_state: dict[str, int] = {}
        names = {0: "generating", 10: "failed", 30: "completed"}
        for job in self.jobs.values():
            status = job.phase(now)[0]
            name = names.get(status, f"status_{status}")
            by_state[name] = by_state.get(name, 0) + 1
        keys = (
            "create_calls",
            "creates_accepted",
            "creates_rejected",
            "status_calls",
            "download_calls",
            "media_calls",
            "media_expired",
            "callbacks_sent",
            "callbacks_failed",
            "faults_injected",
            "answers_delayed",
            "unauthorized",
        )
        return {
            **{k: self.stats.get(k, 0) for k in keys},
            "jobs": by_state,
            "jobs_total": len(self.jobs),
        }


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(data),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _err(message: str, code: int, headers: dict[str, str] | None = None) -> Response[bytes]:
    return _json({"error": message, "code": code}, code, headers)


def create_simulator(config: SimulatorConfig | None = None) -> Litestar:
    """The simulator app; ``config`` is kept by reference (tests may mutate it)."""
    sim = _Sim(config=config or SimulatorConfig())

    def echo(request: Request[Any, Any, Any], resp: Response[bytes]) -> Response[bytes]:
        """With ``echo_auth_in_errors``, quote the received Authorization in an error."""
        if not sim.config.echo_auth_in_errors or resp.status_code < 400:
            return resp
        try:
            body = msgspec.json.decode(resp.content)
        except msgspec.DecodeError:
            return resp
        if not isinstance(body, dict) or not isinstance(body.get("error"), str):
            return resp
        body["error"] += f" (received Authorization: {request.headers.get('authorization', '')})"
        return _json(body, resp.status_code, dict(resp.headers))

    async def gate(request: Request[Any, Any, Any], endpoint: str) -> Response[bytes] | None:
        """Latency, auth and injected faults, in that order; None lets the call through."""
        cfg = sim.config
        if cfg.latency_seconds > 0 and endpoint in cfg.latency_endpoints:
            await asyncio.sleep(cfg.latency_seconds)
        if request.headers.get("authorization", "") != f"Bearer {cfg.api_token}":
            sim.count("unauthorized")
            return _err("Unauthorized", 401)
        faulty = cfg.fault_status is not None or cfg.malformed_json
        if not faulty or endpoint not in cfg.fault_endpoints:
            return None
        if cfg.fault_count is not None:
            if cfg.fault_count <= 0:
                return None
            cfg.fault_count -= 1
        sim.count("faults_injected")
        if cfg.malformed_json:
            return Response(content=b'{"jobs": ["user:', media_type="application/json")
        status = cfg.fault_status or 500
        headers = (
            {"Retry-After": str(cfg.retry_after)} if status == 429 and cfg.retry_after else None
        )
        return _err(cfg.fault_message or f"Simulated error {status}", status, headers)

    def find(job_id: str) -> SimJob | Response[bytes]:
        if "-job:" not in job_id:
            return _err("job_id has incorrect format", 400)
        job = sim.jobs.get(job_id)
        return job if job is not None else _err(f"No record found for {job_id}", 404)

    async def create(request: Request[Any, Any, Any], kind: str) -> Response[bytes]:
        sim.count("create_calls")  # every create request, faulted or not
        blocked = await gate(request, "create")
        if blocked is not None:
            sim.count("creates_rejected")
            return blocked
        try:
            body = msgspec.json.decode(await request.body())
        except msgspec.DecodeError:
            body = None
        problem = validate_create(kind, body)
        if problem is not None:
            sim.count("creates_rejected")
            return _err(problem, 400)
        cfg, now = sim.config, time.monotonic()
        limit = body.get("maxJobs") or cfg.max_parallel_jobs
        running = sum(1 for j in sim.jobs.values() if now < j.done_at())
        if limit is not None and running + cfg.jobs_per_create > limit:
            sim.count("creates_rejected")
            headers = {"Retry-After": str(cfg.retry_after)} if cfg.retry_after else None
            return _err(f"Too many parallel jobs ({running}), maxJobs is {limit}", 429, headers)
        sim.creates.append({"kind": kind, "body": body})
        del sim.creates[:-200]
        base = str(request.base_url).rstrip("/")
        model = body.get("model_song" if kind == "song" else "model_instrumental") or (
            "v4.8" if kind == "song" else "i3.5 beta"
        )
        ids = []
        for _ in range(max(1, cfg.jobs_per_create)):
            item = secrets.token_hex(8)
            end_status, end_final = 30, True
            if cfg.fail_next_jobs > 0:
                cfg.fail_next_jobs -= 1
                end_status = 10
            elif cfg.odd_final_status is not None:
                end_status, end_final = cfg.odd_final_status, cfg.odd_status_final
            words = body["prompt"].split()[:4] or ["Untitled"]
            job = SimJob(
                id=f"user:{cfg.account}-tempolor:{body.get('user_id') or 'sim'}-job:{item}",
                item=item,
                kind=kind,
                model=model,
                body=body,
                base=base,
                created=now,
                created_ms=int(time.time() * 1000),
                queue=cfg.queue_seconds,
                generate=cfg.generate_seconds,
                not_found=cfg.download_404_seconds,
                end_status=end_status,
                end_final=end_final,
                title=" ".join(w.capitalize() for w in words),
                style=_STYLES[zlib.crc32(body["prompt"].encode()) % len(_STYLES)],
            )
            sim.jobs[job.id] = job
            while len(sim.jobs) > MAX_JOBS_KEPT:  # bounded memory in soak runs: oldest go
                del sim.jobs[next(iter(sim.jobs))]
            ids.append(job.id)
            if cfg.callbacks and body.get("replyUrl"):
                task = asyncio.create_task(callbacks(job))
                sim.tasks.add(task)
                task.add_done_callback(sim.tasks.discard)
        sim.count("creates_accepted")
        delays = cfg.answer_delay_count is None or cfg.answer_delay_count > 0
        if cfg.answer_delay_seconds > 0 and delays:
            if cfg.answer_delay_count is not None:
                cfg.answer_delay_count -= 1
            sim.count("answers_delayed")
            await asyncio.sleep(cfg.answer_delay_seconds)
        return _json({"jobs": ids, "unlimited": True})

    async def callbacks(job: SimJob) -> None:
        """Progress updates at the start of generation, halfway, and at the end."""
        with contextlib.suppress(Exception):
            marks = (
                job.queue + 0.001,
                job.queue + job.generate / 2,
                job.queue + job.generate + 0.001,
            )
            for mark in marks:
                await asyncio.sleep(max(0.0, job.created + mark - time.monotonic()))
                payload = {
                    **status_body(job, time.monotonic()),
                    "replyRef": job.body.get("replyRef"),
                }
                await deliver(job.body["replyUrl"], msgspec.json.encode(payload))

    async def deliver(url: str, payload: bytes) -> None:
        """POST one callback; retried ``callback_retries`` times (0.05 s, doubling) on a
        network error or an answer of 300 and above."""
        if sim.http is None:
            sim.http = httpx.AsyncClient(timeout=sim.config.callback_timeout)
        retrying = stamina.retry_context(
            on=(httpx.HTTPError, _Undelivered),
            attempts=1 + max(0, sim.config.callback_retries),
            timeout=None,
            wait_initial=0.05,
            wait_jitter=0.0,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    resp = await sim.http.post(
                        url, content=payload, headers={"Content-Type": "application/json"}
                    )
                    if resp.status_code >= 300:
                        raise _Undelivered(resp.status_code)
        except (httpx.HTTPError, _Undelivered):
            sim.count("callbacks_failed")
            return
        sim.count("callbacks_sent")

    @post("/v1/tempolor/music/song", status_code=200)
    async def create_song(request: Request[Any, Any, Any]) -> Response[bytes]:
        return echo(request, await create(request, "song"))

    @post("/v1/tempolor/music/instrumental", status_code=200)
    async def create_instrumental(request: Request[Any, Any, Any]) -> Response[bytes]:
        return echo(request, await create(request, "instrumental"))

    @get("/v1/tempolor/music/{job_id:str}")
    async def status(request: Request[Any, Any, Any]) -> Response[bytes]:
        return echo(request, await _status(request))

    async def _status(request: Request[Any, Any, Any]) -> Response[bytes]:
        blocked = await gate(request, "status")
        if blocked is not None:
            return blocked
        sim.count("status_calls")
        job = find(request.path_params["job_id"])
        return job if isinstance(job, Response) else _json(status_body(job, time.monotonic()))

    @get("/v1/tempolor/music/download/{job_id:str}")
    async def download(request: Request[Any, Any, Any]) -> Response[bytes]:
        return echo(request, await _download(request))

    async def _download(request: Request[Any, Any, Any]) -> Response[bytes]:
        blocked = await gate(request, "download")
        if blocked is not None:
            return blocked
        sim.count("download_calls")
        fmt = request.query_params.get("file_format") or "mp3"
        if fmt not in ("mp3", "wav", "stems"):
            return _err("Parameter file_format must be one of mp3, wav, stems", 400)
        job_id = request.path_params["job_id"]
        job = find(job_id)
        if isinstance(job, Response):
            return job
        now = time.monotonic()
        native, _, _ = job.phase(now)
        if native != 30:
            return _err(f"Generation is not completed yet ({native})", 400)
        if now < job.done_at() + job.not_found:  # ref: 404 for a few seconds after COMPLETED
            return _err(f"No record found for {job_id}", 404)
        if fmt == "stems":
            return _err("stems are not simulated", 400)
        ttl = sim.config.url_ttl_seconds
        key = f"{int(time.time())}-0-0-{secrets.token_hex(16)}"
        sim.urls[key] = (job.item, fmt, now + ttl)
        if len(sim.urls) > 5000:
            for k in [k for k, v in sim.urls.items() if v[2] < now]:
                del sim.urls[k]
        remain: float | int = int(ttl) if float(ttl).is_integer() else ttl
        url = f"{job.base}/media/{job.item}.{fmt}?auth_key={key}"
        return _json(
            {"url": url, "remainSeconds": remain if sim.config.report_remain_seconds else 0}
        )

    @get("/media/{name:str}")
    async def media(request: Request[Any, Any, Any]) -> Response[bytes]:
        sim.count("media_calls")
        name = request.path_params["name"]
        item, _, fmt = name.rpartition(".")
        entry = sim.urls.get(request.query_params.get("auth_key") or "")
        if entry is None or entry[:2] != (item, fmt):
            return Response(content=b"Forbidden", status_code=403, media_type="text/plain")
        if time.monotonic() >= entry[2]:
            sim.count("media_expired")
            return Response(content=b"URL expired", status_code=403, media_type="text/plain")
        audio = MP3_BYTES if fmt == "mp3" else WAV_BYTES
        return Response(content=audio, media_type="audio/mpeg" if fmt == "mp3" else "audio/wav")

    @get("/media/cover/{name:str}")
    async def cover(request: Request[Any, Any, Any]) -> Response[bytes]:
        sim.count("media_calls")
        name = request.path_params["name"]
        if name.removesuffix(".png") not in {j.item for j in sim.jobs.values()}:
            return Response(content=b"Not found", status_code=404, media_type="text/plain")
        return Response(content=PNG_BYTES, media_type="image/png")

    @get("/__sim__/config")
    async def get_config() -> Response[bytes]:
        return _json(msgspec.to_builtins(sim.config))

    @post("/__sim__/config", status_code=200)
    async def set_config(request: Request[Any, Any, Any]) -> Response[bytes]:
        try:
            apply_patch(sim.config, await request.body())
        except ValueError as exc:
            return _err(f"bad config: {exc}", 400)
        return _json(msgspec.to_builtins(sim.config))

    @get("/__sim__/stats")
    async def stats() -> Response[bytes]:
        return _json(sim.snapshot_stats())

    @get("/__sim__/creates")
    async def creates() -> Response[bytes]:
        return _json(sim.creates)

    @post("/__sim__/reset", status_code=200)
    async def reset() -> Response[bytes]:
        sim.jobs.clear()
        sim.urls.clear()
        sim.creates.clear()
        sim.stats.clear()
        return _json({"reset": True})

    async def shutdown() -> None:
        for task in list(sim.tasks):
            task.cancel()
        if sim.tasks:
            await asyncio.gather(*sim.tasks, return_exceptions=True)
        if sim.http is not None:
            await sim.http.aclose()
            sim.http = None

    return Litestar(
        route_handlers=[
            create_song,
            create_instrumental,
            status,
            download,
            media,
            cover,
            get_config,
            set_config,
            stats,
            creates,
            reset,
        ],
        on_shutdown=[shutdown],
        openapi_config=None,
    )
