"""A Litestar app speaking MiniMax Music's native wire format, for tests and demos.

Usage::

    from providers.minimax.simulator import SimulatorConfig, create_simulator
    app = create_simulator(SimulatorConfig(api_key="k", latency=0.2))
    # MINIMAX_BASE_URL=<served address>, MINIMAX_API_KEY=k

Native surface (MiniMax's API reference,
https://platform.minimax.io/docs/api-reference/music-generation):

* ``POST /v1/music_generation`` with ``Authorization: Bearer <key>``. As MiniMax does,
  every error is an HTTP 200 whose ``base_resp.status_code`` is not 0: no key -> 1004,
  a wrong key -> 2049, a request the API would refuse -> 2013 naming the field
  (``sim_validation``). After ``latency`` seconds the answer is real audio of
  ``length_ms`` at the asked ``audio_setting`` (``sim_audio``: MP3 or WAV, stereo):
  ``output_format: "hex"`` (MiniMax's default) streams it as the hex string
  ``data.audio`` inside the JSON, made lazily (a long WAV is never held);
  ``output_format: "url"`` answers a URL (in ``data.audio``, or ``data.audio_url`` with
  ``url_field``) that this app serves itself at ``GET /files/{trace_id}.{mp3|wav}`` for
  ``url_ttl`` seconds (403 after). Every answer carries ``trace_id`` (and a ``Trace-Id``
  header) and ``extra_info`` (``music_duration`` in ms, ``music_size``, ...).
* ``max_concurrency``: a call beyond that many in flight answers 1002; ``faults``
  (``sim_config``) inject every other error.

Control surface (JSON): ``GET|POST /__sim__/config`` (POST = partial update of
``SimulatorConfig``), ``GET /__sim__/stats`` (counters, calls in flight, the last request
body, the last trace id, the last audio's byte count and sha256 as served),
``POST /__sim__/reset``.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Stream

from providers.kit.simulation import apply_patch
from providers.minimax import sim_audio
from providers.minimax.sim_config import BASE_RESP, Fault, SimulatorConfig
from providers.minimax.sim_validation import Order, validate

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
    "downloads",
    "expired_downloads",
)
_MEDIA = {"mp3": "audio/mpeg", "wav": "audio/wav"}
_KEPT_FILES = 512  # URL answers whose audio stays downloadable


class Disconnect(Exception):
    """Raised mid-body: the server drops the connection (the ``disconnect`` fault)."""


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        msgspec.json.encode(data), status_code=status, media_type=_JSON, headers=headers
    )


@dataclass
class _File:
    """A URL answer's audio: made again, identically, at each download."""

    order: Order
    length_ms: int
    expires: float


class _Sim:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.stats: collections.Counter[str] = collections.Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.last: dict[str, Any] = {}
        self.files: collections.OrderedDict[str, _File] = collections.OrderedDict()

    def stats_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {name: self.stats[name] for name in _COUNTERS}
        doc.update(in_flight=self.in_flight, max_in_flight=self.max_in_flight, **self.last)
        return doc

    # --------------------------------------------------------------------- errors

    def base_error(
        self, code: int, message: str, key: str | None, status: int = 200, **headers: str
    ) -> Response[bytes]:
        if self.config.echo_key_in_errors:  # as some APIs do: the client must scrub it
            message = f"{message} (Authorization: Bearer {key})"
        body = {
            "trace_id": uuid.uuid4().hex,
            "base_resp": {"status_code": code, "status_msg": message},
        }
        return _json(body, status, headers=headers or None)

    def fault(self, key: str | None) -> Response[bytes] | Fault | None:
        """The next fault's error answer, or a rule applied later (after the latency, or
        in the answer's body), or None."""
        for rule in list(self.config.faults):
            if rule.count is not None and rule.count <= 0:
                continue
            if rule.count is not None:
                rule.count -= 1
            self.stats["faults_injected"] += 1
            if rule.kind in ("output_sensitive", "unfinished", "malformed", "disconnect"):
                return rule
            headers = {"Retry-After": f"{rule.retry_after:g}"} if rule.retry_after else {}
            if rule.kind == "http_error":
                return Response(
                    b"upstream connect error", status_code=rule.status or 500,
                    media_type="text/plain", headers=headers or None,
                )  # fmt: skip
            return self.rule_error(rule, key, headers)
        return None

    def rule_error(self, rule: Fault, key: str | None, headers: dict[str, str]) -> Response[bytes]:
        code, message = BASE_RESP[rule.kind]
        if rule.kind == "invalid_params":
            message = f"{message}, {rule.field}: value out of range"
        return self.base_error(code, rule.message or message, key, rule.status or 200, **headers)

    # --------------------------------------------------------------------- music

    async def music(self, request: Request[Any, Any, Any]) -> Response[Any]:
        self.stats["music_calls"] += 1
        cfg = self.config
        auth = request.headers.get("authorization") or ""
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if key != cfg.api_key:
            self.stats["auth_failures"] += 1
            if not key:
                return self.base_error(
                    1004,
                    "login fail: Please carry the API secret key in the 'Authorization'"
                    " field of the request header",
                    key,
                )
            return self.base_error(2049, "invalid api key", key)
        fault = self.fault(key)
        if isinstance(fault, Response):
            return fault
        raw = await request.body()
        self.last = {"last_body": raw.decode("utf-8", "replace")}
        order = validate(raw)
        if not isinstance(order, Order):
            self.stats["rejected"] += 1
            return self.base_error(2013, order, key)
        limit = cfg.max_concurrency
        if limit is not None and self.in_flight >= limit:
            self.stats["rate_limited"] += 1
            return self.base_error(1002, "rate limit exceeded(CONN)", key)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if cfg.latency > 0:
                await asyncio.sleep(cfg.latency)
        except BaseException:
            self.in_flight -= 1
            raise
        if fault is not None and fault.kind in ("output_sensitive", "unfinished"):
            self.in_flight -= 1
            if fault.kind == "unfinished":
                return _json({"data": {"audio": "", "status": 1}, **self.success_tail()})
            return self.rule_error(fault, key, {})
        self.stats["accepted"] += 1
        return self.answer(order, fault, str(request.base_url).rstrip("/"))

    def success_tail(self, trace: str | None = None, extra: Any = None) -> dict[str, Any]:
        return {
            "trace_id": trace or uuid.uuid4().hex,
            "extra_info": extra,
            "analysis_info": None,
            "base_resp": {"status_code": 0, "status_msg": "success"},
        }

    def answer(self, order: Order, fault: Fault | None, base: str) -> Response[Any]:
        cfg = self.config
        trace = uuid.uuid4().hex
        ms = cfg.length_ms
        size = sim_audio.audio_size(order.format, ms, order.sample_rate, order.bitrate)
        extra = {
            "music_duration": ms,
            "music_sample_rate": order.sample_rate,
            "music_channel": sim_audio.CHANNELS,
            "bitrate": order.bitrate,
            "music_size": size,
        }
        self.last.update(last_trace_id=trace, last_output_format=order.output_format)
        headers = {"Trace-Id": trace} if cfg.trace_header else {}
        tail = msgspec.json.encode(self.success_tail(trace, extra))[1:]  # '"trace_id":...}'
        if order.output_format == "url":
            self.in_flight -= 1
            self.files[trace] = _File(order, ms, time.time() + cfg.url_ttl)
            while len(self.files) > _KEPT_FILES:
                self.files.popitem(last=False)
            expires = int(time.time() + cfg.url_ttl)
            url = f"{base}/files/{trace}.{order.format}?Expires={expires}&Signature=sim"
            data = msgspec.json.encode({"data": {cfg.url_field: url, "status": 2}})
            body = data[:-1] + b"," + tail
            if fault is not None and fault.kind == "malformed":
                body = body[: len(body) // 2]
            self.stats["completed"] += 1
            return Response(body, status_code=200, media_type=_JSON, headers=headers or None)
        audio = sim_audio.audio_chunks(
            order.format, ms, order.sample_rate, order.bitrate, cfg.chunk_size
        )
        parts = self.hex_answer(audio, b'","status":2},' + tail, fault)
        return Stream(parts, status_code=200, media_type=_JSON, headers=headers or None)

    async def hex_answer(
        self, audio: Iterator[bytes], tail: bytes, fault: Fault | None
    ) -> AsyncIterator[bytes]:
        """``{"data":{"audio":"<hex>","status":2},...}``, the hex made chunk by chunk."""
        cut = fault.after_bytes if fault is not None and fault.kind == "disconnect" else None
        malformed = fault is not None and fault.kind == "malformed"
        digest, size, sent = hashlib.sha256(), 0, 0
        try:
            for chunk, part in _wire(audio, tail, malformed):
                digest.update(chunk)
                size += len(chunk)
                if cut is not None and sent + len(part) > cut:
                    if part[: cut - sent]:
                        yield part[: cut - sent]
                    self.stats["disconnects"] += 1
                    raise Disconnect("simulated disconnect")
                sent += len(part)
                yield part
                await asyncio.sleep(0)  # let other requests run between chunks
            if not malformed:
                self.stats["completed"] += 1
                self.last.update(last_bytes=size, last_sha256=digest.hexdigest())
        finally:
            self.in_flight -= 1

    # ----------------------------------------------------------------- downloads

    def download(self, name: str) -> Response[Any]:
        trace, _, ext = name.partition(".")
        file = self.files.get(trace)
        if file is None or ext != file.order.format:
            return Response(b"NoSuchKey", status_code=404, media_type="text/plain")
        if time.time() > file.expires:
            self.stats["expired_downloads"] += 1
            return Response(
                b"AccessDenied: Request has expired", status_code=403, media_type="text/plain"
            )
        self.stats["downloads"] += 1
        o = file.order
        size = sim_audio.audio_size(o.format, file.length_ms, o.sample_rate, o.bitrate)
        chunks = sim_audio.audio_chunks(
            o.format, file.length_ms, o.sample_rate, o.bitrate, self.config.chunk_size
        )
        headers = {"Content-Length": str(size)}
        return Stream(self.served(chunks), media_type=_MEDIA[o.format], headers=headers)

    async def served(self, chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
        digest, size = hashlib.sha256(), 0
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            yield chunk
            await asyncio.sleep(0)
        self.last.update(last_bytes=size, last_sha256=digest.hexdigest())


def _wire(audio: Iterator[bytes], tail: bytes, malformed: bool) -> Iterator[tuple[bytes, bytes]]:
    """(audio bytes, answer bytes) pairs of a hex answer; a malformed one stops inside the
    JSON, cleanly."""
    yield b"", b'{"data":{"audio":"'
    for chunk in audio:
        yield chunk, chunk.hex().encode()
    if not malformed:
        yield b"", tail


def create_simulator(config: SimulatorConfig | None = None) -> Litestar:
    """The simulator app; ``config`` is shared and may be mutated while it runs."""
    sim = _Sim(config or SimulatorConfig())

    @post("/v1/music_generation", status_code=200)
    async def music(request: Request[Any, Any, Any]) -> Response[Any]:
        return await sim.music(request)

    @get("/files/{name:str}")
    async def download(name: FromPath[str]) -> Response[Any]:
        return sim.download(name)

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
        """Counters, the last request and the served files forgotten (calls in flight
        keep counting)."""
        sim.stats.clear()
        sim.last = {}
        sim.files.clear()
        sim.max_in_flight = sim.in_flight
        return _json(sim.stats_doc())

    app = Litestar(
        route_handlers=[music, download, get_config, set_config, stats, reset],
        openapi_config=None,
    )
    app.state.sim = sim
    return app
