"""A Litestar app speaking sunoapi.org's native wire format, for tests, demos and benchmarks.

Usage::

    from providers.suno.simulator import SimulatorConfig, create_simulator
    app = create_simulator(SimulatorConfig(api_key="k", text_seconds=0.1))
    # SUNO_BASE_URL=<served address>, SUNO_API_KEY=k

Native surface (sunoapi.org's docs, https://docs.sunoapi.org):

* ``POST /api/v1/generate``: checks the body as *generate* documents it (``callBackUrl``
  required, the length limits per model: 413) and answers ``{"code": 200, "msg":
  "success", "data": {"taskId": ...}}``; two songs per task.
* ``GET /api/v1/generate/record-info?taskId=...``: ``PENDING`` -> ``TEXT_SUCCESS`` ->
  ``FIRST_SUCCESS`` (the first song's stream URL) -> ``SUCCESS`` (both songs' audio) on
  ``time.monotonic()``; a prompt, lyrics, style or title with one of ``fail_words``,
  ``sensitive_words`` or ``create_fail_words`` ends in ``GENERATE_AUDIO_FAILED``,
  ``SENSITIVE_WORD_ERROR`` or ``CREATE_TASK_FAILED``; ``end_word`` ends tasks in any word.
* ``Authorization: Bearer <key>`` checked; errors are a body ``code`` inside an HTTP 200,
  as sunoapi.org answers them (with ``echo_auth_in_errors`` the ``msg`` quotes the
  ``Authorization`` received).
* Callbacks to ``callBackUrl`` at each stage (``text``, ``first``, ``complete``; ``error``
  for a failed task), snake_case, in order or not, duplicated on demand; one that cannot
  be delivered (a ``.invalid`` host is never looked up) turns the status into
  ``CALLBACK_EXCEPTION`` while the generation goes on.
* Media with real bytes: ``/media/{task}/{song}.mp3``, ``.../stream`` (MP3) and ``.png``.
* Faults (``Fault``): a request-level code (HTTP 200 or ``http_status``), malformed JSON
  or latency, on creates or status calls, for the next N requests; ``after_create``
  applies one to a create's answer after the task exists.

Control surface (JSON): ``GET|POST /__sim__/config`` (POST = partial update),
``GET /__sim__/stats``, ``GET /__sim__/creates``, ``POST /__sim__/reset``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import stamina
from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath

from providers.kit.simulation import apply_patch
from providers.simulator_media import MP3_BYTES, PNG_BYTES
from providers.suno.sim_config import MESSAGES, Endpoint, Fault, SimulatorConfig
from providers.suno.sim_payloads import SimTask, validate_create

__all__ = ["Fault", "SimulatorConfig", "create_simulator"]

_JSON = "application/json"
_COUNTERS = (
    "create_calls",
    "creates_accepted",
    "creates_rejected",
    "status_calls",
    "media_calls",
    "callbacks_sent",
    "callbacks_failed",
    "callback_attempts",
    "faults_injected",
    "auth_failures",
    "rate_limited",
)


class _Undelivered(Exception):
    """The receiver answered a callback with a non-2xx status (retried)."""


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        msgspec.json.encode(data), status_code=status, media_type=_JSON, headers=headers
    )


class _Sim:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.tasks: dict[str, SimTask] = {}
        self.creates: list[dict[str, Any]] = []
        self.stats: collections.Counter[str] = collections.Counter()
        self.window: collections.deque[float] = collections.deque()
        self.running: set[asyncio.Task[None]] = set()
        self.http: httpx.AsyncClient | None = None
        self.rng = random.Random(config.seed)

    def error(
        self,
        request: Request[Any, Any, Any],
        code: int,
        message: str | None = None,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> Response[bytes]:
        """sunoapi.org's error: ``{"code": <code>, "msg": ..., "data": null}``."""
        text = message or MESSAGES.get(code, f"Error {code}")
        if self.config.echo_auth_in_errors:
            text += f" (received Authorization: {request.headers.get('authorization', '')})"
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        body = {"code": code, "msg": text, "data": None}
        return _json(body, http_status or 200, headers)

    def fault(self, endpoint: Endpoint, *, after_create: bool = False) -> Fault | None:
        for rule in self.config.faults:
            if endpoint not in rule.endpoints or rule.after_create != after_create:
                continue
            if rule.count is not None:
                if rule.count <= 0:
                    continue
                rule.count -= 1
            self.stats["faults_injected"] += 1
            return rule
        return None

    async def answer_fault(self, request: Request[Any, Any, Any], rule: Fault) -> Response[bytes]:
        if rule.latency > 0:
            await asyncio.sleep(rule.latency)
        if rule.malformed:
            return Response(b'{"code": 200, "data": {"taskId": "', media_type=_JSON)
        code = rule.code or 500
        return self.error(
            request, code, rule.message, http_status=rule.http_status, retry_after=rule.retry_after
        )

    def outcome(self, body: dict[str, Any]) -> str:
        cfg = self.config
        text = " ".join(str(body.get(k) or "") for k in ("prompt", "style", "title")).lower()
        for words, outcome in (
            (cfg.create_fail_words, "CREATE_TASK_FAILED"),
            (cfg.sensitive_words, "SENSITIVE_WORD_ERROR"),
            (cfg.fail_words, "GENERATE_AUDIO_FAILED"),
        ):
            if any(w and w.lower() in text for w in words):
                return outcome
        return cfg.end_word or "SUCCESS"

    def new_task(self, body: dict[str, Any], base: str) -> SimTask:
        cfg = self.config
        task = SimTask(
            id=uuid.uuid4().hex,
            body=body,
            base=base,
            created=time.monotonic(),
            text=cfg.text_seconds,
            first=max(cfg.first_seconds, cfg.text_seconds),
            complete=max(cfg.complete_seconds, cfg.first_seconds, cfg.text_seconds),
            outcome=self.outcome(body),
            audio_at_end=cfg.end_audio or cfg.end_word is None,
            songs=[uuid.uuid4().hex[:12] for _ in range(max(1, cfg.songs))],
            fail_code=cfg.fail_code,
        )
        self.tasks[task.id] = task
        while len(self.tasks) > 20_000:  # bounded memory in soak runs: the oldest go
            del self.tasks[next(iter(self.tasks))]
        if cfg.callbacks:
            job = asyncio.create_task(self.send_callbacks(task))
            self.running.add(job)
            job.add_done_callback(self.running.discard)
        return task

    def limited(self) -> bool:
        cfg, now = self.config, time.monotonic()
        if cfg.creates_per_window is None:
            return False
        while self.window and now - self.window[0] >= cfg.window_seconds:
            self.window.popleft()
        if len(self.window) >= cfg.creates_per_window:
            return True
        self.window.append(now)
        return False

    # ---------------------------------------------------------------- callbacks

    async def send_callbacks(self, task: SimTask) -> None:
        cfg = self.config
        plan = task.plan()
        with contextlib.suppress(Exception):  # a failed sender must not crash the app
            if cfg.callback_order == "natural":
                for mark, stage in plan:
                    await self._sleep_until(task.created + mark)
                    for _ in range(1 + max(0, cfg.callback_duplicates)):
                        await self.deliver(task, stage, task.callback(stage, task.created + mark))
                return
            bodies = [(stage, task.callback(stage, task.created + mark)) for mark, stage in plan]
            await self._sleep_until(task.created + max(m for m, _ in plan))
            if cfg.callback_order == "reverse":
                bodies.reverse()
            else:
                self.rng.shuffle(bodies)
            for stage, body in bodies:
                for _ in range(1 + max(0, cfg.callback_duplicates)):
                    await self.deliver(task, stage, body)

    @staticmethod
    async def _sleep_until(moment: float) -> None:
        await asyncio.sleep(max(0.0, moment - time.monotonic()))

    async def deliver(self, task: SimTask, stage: str, body: dict[str, Any]) -> None:
        """POST one callback, retried ``callback_retries`` times on a network error or a
        non-2xx answer; a failure marks the task ``CALLBACK_EXCEPTION`` (if so set)."""
        cfg, url = self.config, str(task.body.get("callBackUrl") or "")
        host = urlsplit(url).hostname or ""
        delivered = False
        if not host.endswith(".invalid"):  # RFC 6761: never resolves; never looked up
            if self.http is None:
                self.http = httpx.AsyncClient(timeout=cfg.callback_timeout)
            retrying = stamina.retry_context(
                on=(httpx.HTTPError, _Undelivered),
                attempts=1 + max(0, cfg.callback_retries),
                timeout=None,
                wait_initial=0.05,
                wait_jitter=0.0,
            )
            payload = msgspec.json.encode(body)
            try:
                async for attempt in retrying:
                    with attempt:
                        self.stats["callback_attempts"] += 1
                        resp = await self.http.post(
                            url, content=payload, headers={"Content-Type": _JSON}
                        )
                        if not resp.is_success:
                            raise _Undelivered(resp.status_code)
                delivered = True
            except (httpx.HTTPError, _Undelivered):
                delivered = False
        if delivered:
            self.stats["callbacks_sent"] += 1
            task.sent.append(stage)
            return
        self.stats["callbacks_failed"] += 1
        if cfg.callback_exception:
            task.callback_exception = True


def create_simulator(config: SimulatorConfig | None = None) -> Litestar:
    """The simulator app; ``config`` is kept by reference (tests may mutate it)."""
    sim = _Sim(config or SimulatorConfig())

    def authorized(request: Request[Any, Any, Any]) -> bool:
        if request.headers.get("authorization", "") == f"Bearer {sim.config.api_key}":
            return True
        sim.stats["auth_failures"] += 1
        return False

    @post("/api/v1/generate", status_code=200)
    async def generate(request: Request[Any, Any, Any]) -> Response[bytes]:
        sim.stats["create_calls"] += 1
        rule = sim.fault("create")
        if rule is not None:
            sim.stats["creates_rejected"] += 1
            return await sim.answer_fault(request, rule)
        if not authorized(request):
            sim.stats["creates_rejected"] += 1
            return sim.error(request, 401)
        try:
            body = msgspec.json.decode(await request.body())
        except msgspec.DecodeError:
            body = None
        problem = validate_create(body)
        if problem is not None:
            sim.stats["creates_rejected"] += 1
            return sim.error(request, *problem)
        if sim.limited():
            sim.stats["creates_rejected"] += 1
            sim.stats["rate_limited"] += 1
            return sim.error(request, 430)
        sim.creates.append(body)
        del sim.creates[:-200]
        task = sim.new_task(body, str(request.base_url).rstrip("/"))
        sim.stats["creates_accepted"] += 1
        late = sim.fault("create", after_create=True)
        if late is not None:
            if late.latency > 0:
                await asyncio.sleep(late.latency)
            if late.malformed or late.code is not None:
                return await sim.answer_fault(request, msgspec.structs.replace(late, latency=0))
        return _json({"code": 200, "msg": "success", "data": {"taskId": task.id}})

    @get("/api/v1/generate/record-info")
    async def record_info(request: Request[Any, Any, Any]) -> Response[bytes]:
        rule = sim.fault("status")
        if rule is not None:
            return await sim.answer_fault(request, rule)
        if not authorized(request):
            return sim.error(request, 401)
        sim.stats["status_calls"] += 1
        task = sim.tasks.get(request.query_params.get("taskId") or "")
        if task is None:
            return sim.error(request, 404, "Task not found")
        return _json(task.record(time.monotonic()))

    def song(task_id: str, song_id: str) -> SimTask | None:
        sim.stats["media_calls"] += 1
        task = sim.tasks.get(task_id)
        return task if task is not None and song_id in task.songs else None

    @get("/media/{task_id:str}/{name:str}")
    async def media(task_id: FromPath[str], name: FromPath[str]) -> Response[bytes]:
        song_id, _, ext = name.rpartition(".")
        task = song(task_id, song_id)
        if task is None or ext not in ("mp3", "png"):
            return Response(b"Not found", status_code=404, media_type="text/plain")
        if ext == "png":
            return Response(PNG_BYTES, media_type="image/png")
        if task.stage(time.monotonic()) < 3:
            return Response(b"Not ready", status_code=404, media_type="text/plain")
        return Response(MP3_BYTES, media_type="audio/mpeg")

    @get("/media/{task_id:str}/{song_id:str}/stream")
    async def stream(task_id: FromPath[str], song_id: FromPath[str]) -> Response[bytes]:
        if song(task_id, song_id) is None:
            return Response(b"Not found", status_code=404, media_type="text/plain")
        return Response(MP3_BYTES, media_type="audio/mpeg")

    @get("/__sim__/config")
    async def get_config() -> Response[bytes]:
        return _json(msgspec.to_builtins(sim.config))

    @post("/__sim__/config", status_code=200)
    async def set_config(request: Request[Any, Any, Any]) -> Response[bytes]:
        try:
            patch = apply_patch(sim.config, await request.body())
        except ValueError as exc:
            return _json({"code": 400, "msg": f"bad config: {exc}"}, 400)
        if "seed" in patch:
            sim.rng = random.Random(sim.config.seed)
        return _json(msgspec.to_builtins(sim.config))

    @get("/__sim__/stats")
    async def stats() -> Response[bytes]:
        now = time.monotonic()
        words = collections.Counter(t.word(now) for t in sim.tasks.values())
        body = {**{k: sim.stats.get(k, 0) for k in _COUNTERS}, "tasks": dict(words)}
        return _json(body)

    @get("/__sim__/creates")
    async def creates() -> Response[bytes]:
        return _json(sim.creates)

    @post("/__sim__/reset", status_code=200)
    async def reset() -> Response[bytes]:
        for job in list(sim.running):
            job.cancel()
        sim.tasks.clear()
        sim.creates.clear()
        sim.stats.clear()
        sim.window.clear()
        return _json({"reset": True})

    async def shutdown() -> None:
        for job in list(sim.running):
            job.cancel()
        if sim.running:
            await asyncio.gather(*sim.running, return_exceptions=True)
        if sim.http is not None:
            await sim.http.aclose()
            sim.http = None

    return Litestar(
        route_handlers=[
            generate,
            record_info,
            media,
            stream,
            get_config,
            set_config,
            stats,
            creates,
            reset,
        ],
        on_shutdown=[shutdown],
        openapi_config=None,
    )
