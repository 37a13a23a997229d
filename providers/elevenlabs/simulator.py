"""A Litestar app speaking ElevenLabs Music's native wire format, for tests and demos.

Usage::

    from providers.elevenlabs.simulator import SimulatorConfig, create_simulator
    app = create_simulator(SimulatorConfig(api_key="k", latency=0.2))
    # ELEVENLABS_BASE_URL=<served address>, ELEVENLABS_API_KEY=k

Native surface (ElevenLabs' API reference, https://elevenlabs.io/docs/api-reference/music):

* ``POST /v1/music?output_format=...`` with ``xi-api-key``: missing -> 401
  ``needs_authorization``, wrong -> 401 ``invalid_api_key``. The body is validated like
  the real API (``sim_validation``: 422 FastAPI arrays). The answer is real audio,
  streamed in ``chunk_size`` chunks after ``latency`` seconds: MP3 (``audio/mpeg``,
  chunked unless ``mp3_content_length``) for ``mp3_*`` formats, raw 16-bit LE mono PCM
  (``audio/pcm``, with ``Content-Length`` unless ``pcm_content_length`` is off) for
  ``pcm_*``; any other format is a 422 here (the simulator makes none). Its length is
  ``music_length_ms``, the plan's durations, or ``default_length_ms``. Every success
  carries a ``song-id`` header. Audio is made lazily: a 10-minute answer is never held.
* ``max_concurrency``: a call beyond that many in flight answers 429
  ``too_many_concurrent_requests``; ``faults`` (``sim_config``) inject the rest.

Control surface (JSON): ``GET|POST /__sim__/config`` (POST = partial update of
``SimulatorConfig``), ``GET /__sim__/stats`` (counters, calls in flight, the last request
body and query, the last answer's byte count and sha256), ``POST /__sim__/reset``.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.response import Stream

from providers.elevenlabs import sim_audio
from providers.elevenlabs.sim_config import Fault, SimulatorConfig
from providers.elevenlabs.sim_validation import Order, validate
from providers.kit.simulation import apply_patch

__all__ = ["Fault", "SimulatorConfig", "create_simulator"]

_JSON = "application/json"
_COUNTERS = (
    "music_calls",
    "accepted",
    "completed",
    "rejected",
    "auth_failures",
    "rate_limited",
    "faults_injected",
    "disconnects",
)
_BUSINESS = {
    "bad_prompt": (422, "The prompt references copyrighted material."),
    "bad_composition_plan": (422, "The composition plan references copyrighted material."),
    "invalid_api_key": (401, "Invalid API key"),
    "quota_exceeded": (
        401,
        "This request exceeds your quota of 10000. You have 0 credits remaining, "
        "while 1200 credits are required for this request.",
    ),
    "too_many_concurrent_requests": (
        429,
        "Your plan allows 2 concurrent music generations; wait for one to finish.",
    ),
    "system_busy": (429, "The system is experiencing heavy traffic, please try again later."),
}


class Disconnect(Exception):
    """Raised mid-body: the server drops the connection (the ``disconnect`` fault)."""


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        msgspec.json.encode(data), status_code=status, media_type=_JSON, headers=headers
    )


def _suggested_plan() -> dict[str, Any]:
    return {
        "positive_global_styles": ["pop", "upbeat"],
        "negative_global_styles": [],
        "sections": [
            {
                "section_name": "Intro",
                "positive_local_styles": ["synth"],
                "negative_local_styles": [],
                "duration_ms": 10000,
                "lines": [],
            }
        ],
    }


class _Sim:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.stats: collections.Counter[str] = collections.Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.last: dict[str, Any] = {}

    def stats_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {name: self.stats[name] for name in _COUNTERS}
        doc.update(in_flight=self.in_flight, max_in_flight=self.max_in_flight, **self.last)
        return doc

    def error(self, status: int, detail: Any, key: str | None) -> Response[bytes]:
        if self.config.echo_key_in_errors:  # as some APIs do: the client must scrub it
            echo = f" (xi-api-key: {key})"
            if isinstance(detail, dict):
                detail = {**detail, "message": f"{detail.get('message')}{echo}"}
            elif isinstance(detail, list):
                detail = [{**d, "msg": f"{d.get('msg')}{echo}"} for d in detail]
        return _json({"detail": detail}, status)

    def business(
        self, word: str, key: str | None, status: int | None = None, **extra: Any
    ) -> Response[bytes]:
        default, message = _BUSINESS[word]
        return self.error(status or default, {"status": word, "message": message, **extra}, key)

    def fault(self, key: str | None) -> Response[bytes] | Fault | None:
        """The next fault's error answer, or the ``disconnect`` rule, or None."""
        for rule in list(self.config.faults):
            if rule.count is not None and rule.count <= 0:
                continue
            if rule.count is not None:
                rule.count -= 1
            self.stats["faults_injected"] += 1
            kind = rule.kind
            if kind == "disconnect":
                return rule
            if kind == "validation":
                msg = "Input should be less than or equal to 600000"
                detail = [
                    {"type": "less_than_equal", "loc": ["body", "music_length_ms"], "msg": msg}
                ]
                return self.error(rule.status or 422, detail, key)
            if kind == "server_error":
                return _json({"detail": "Internal Server Error"}, rule.status or 500)
            extra: dict[str, Any] = {}
            if kind == "bad_prompt":
                extra["data"] = {"prompt_suggestion": rule.suggestion}
            elif kind == "bad_composition_plan":
                extra["data"] = {"composition_plan_suggestion": _suggested_plan()}
            resp = self.business(kind, key, rule.status, **extra)
            if rule.retry_after is not None:
                resp.headers["Retry-After"] = f"{rule.retry_after:g}"
            return resp
        return None

    async def music(self, request: Request[Any, Any, Any]) -> Response[Any]:
        self.stats["music_calls"] += 1
        cfg = self.config
        key = request.headers.get("xi-api-key")
        if key != cfg.api_key:
            self.stats["auth_failures"] += 1
            if not key:
                detail = {
                    "status": "needs_authorization",
                    "message": "Neither authorization header nor xi-api-key received.",
                }
                return self.error(401, detail, key)
            return self.business("invalid_api_key", key)
        fault = self.fault(key)
        if isinstance(fault, Response):
            return fault
        raw = await request.body()
        query = request.query_params.get("output_format")
        self.last = {"last_body": raw.decode("utf-8", "replace"), "last_query": query}
        order = validate(query, raw)
        if (
            isinstance(order, Order)
            and order.pcm_rate is None
            and not order.output_format.startswith("mp3")
        ):
            order = [{"type": "enum", "loc": ["query", "output_format"], "msg": "not simulated"}]
        if not isinstance(order, Order):
            self.stats["rejected"] += 1
            return self.error(422, order, key)
        limit = cfg.max_concurrency
        if limit is not None and self.in_flight >= limit:
            self.stats["rate_limited"] += 1
            resp = self.business("too_many_concurrent_requests", key)
            if cfg.concurrency_retry_after is not None:
                resp.headers["Retry-After"] = f"{cfg.concurrency_retry_after:g}"
            return resp
        return await self.answer(order, fault)

    async def answer(self, order: Order, fault: Fault | None) -> Response[Any]:
        cfg = self.config
        length_ms = order.length_ms if order.length_ms is not None else cfg.default_length_ms
        rate = order.pcm_rate
        chunks: Iterator[bytes]
        if rate is None:
            chunks = sim_audio.mp3_chunks(length_ms, cfg.chunk_size)
            size, media, sized = sim_audio.mp3_size(length_ms), "audio/mpeg", cfg.mp3_content_length
        else:
            chunks = sim_audio.pcm_chunks(length_ms, rate, cfg.chunk_size)
            size, media, sized = (
                sim_audio.pcm_size(length_ms, rate),
                "audio/pcm",
                cfg.pcm_content_length,
            )
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if cfg.latency > 0:
                await asyncio.sleep(cfg.latency)
        except BaseException:
            self.in_flight -= 1
            raise
        self.stats["accepted"] += 1
        headers = {
            "song-id": uuid.uuid4().hex,
            "current-concurrent-requests": str(self.in_flight),
            "maximum-concurrent-requests": str(cfg.max_concurrency or 2),
        }
        if sized:
            headers["Content-Length"] = str(size)
        cut = fault.after_bytes if fault is not None else None
        body = self.body(chunks, cut)
        return Stream(body, status_code=200, media_type=media, headers=headers)

    async def body(self, chunks: Iterator[bytes], cut: int | None) -> AsyncIterator[bytes]:
        digest, sent = hashlib.sha256(), 0
        try:
            for chunk in chunks:
                if cut is not None and sent + len(chunk) > cut:
                    chunk = chunk[: cut - sent]
                    if chunk:
                        yield chunk
                    self.stats["disconnects"] += 1
                    raise Disconnect("simulated disconnect")
                digest.update(chunk)
                sent += len(chunk)
                yield chunk
                await asyncio.sleep(0)  # let other requests run between chunks
            self.stats["completed"] += 1
            self.last.update(last_bytes=sent, last_sha256=digest.hexdigest())
        finally:
            self.in_flight -= 1


def create_simulator(config: SimulatorConfig | None = None) -> Litestar:
    """The simulator app; ``config`` is shared and may be mutated while it runs."""
    sim = _Sim(config or SimulatorConfig())

    @post("/v1/music", status_code=200)
    async def music(request: Request[Any, Any, Any]) -> Response[Any]:
        return await sim.music(request)

    @get("/__sim__/config")
    async def get_config() -> Response[bytes]:
        return _json(msgspec.to_builtins(sim.config))

    @post("/__sim__/config", status_code=200)
    async def set_config(request: Request[Any, Any, Any]) -> Response[bytes]:
        try:
            apply_patch(sim.config, await request.body())
        except ValueError as exc:
            return _json({"detail": str(exc)}, 400)
        return _json(msgspec.to_builtins(sim.config))

    @get("/__sim__/stats")
    async def stats() -> Response[bytes]:
        return _json(sim.stats_doc())

    @post("/__sim__/reset", status_code=200)
    async def reset() -> Response[bytes]:
        """Counters and the last request forgotten (calls in flight keep counting)."""
        sim.stats.clear()
        sim.last = {}
        sim.max_in_flight = sim.in_flight
        return _json(sim.stats_doc())

    app = Litestar(
        route_handlers=[music, get_config, set_config, stats, reset],
        openapi_config=None,
    )
    app.state.sim = sim
    return app
