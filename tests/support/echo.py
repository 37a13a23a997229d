"""A test-only provider, in-process, proving the core works with any provider.

It has one song model ``echo/v1`` and one instrumental ``echo/i1``. A job advances one
native step per ``fetch``: ``WAITING`` → ``RUNNING`` → ``DONE`` (or ``BROKEN`` when the
``echo {"fail": true}`` option is set, or ``MYSTERY`` — an unknown status — with
``{"mystery": true}``). Every call is counted so tests can assert upstream traffic.

Fault knobs: ``submit_errors`` / ``fetch_errors`` (raised in order, one per call, before
calls succeed again), ``submit_delay`` / ``fetch_delay`` (seconds), ``submit_gate`` /
``fetch_gate`` (an ``asyncio.Event`` every create / fetch waits for: a slow upstream the
test releases when it chooses), ``rate_limited``, ``fetch_error`` (raised on every
fetch). ``fetched`` counts the fetches per gateway job id. A callback body
``{"native_id": ...}`` names the native job, as real providers' callbacks do, so a
create whose answer was lost can be reconciled.

``SyncEchoProvider`` (``echo-sync/v1``) is the contract's synchronous shape: ``start``
runs the generation to its end and answers ``Finished`` with the artefacts (the bytes
``ID3``, as a stream); it can neither be polled nor call back. ``{"echo_sync": {"url":
...}}`` answers that URL to copy instead.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import AsyncIterator, Mapping
from urllib.parse import parse_qsl

import msgspec

from providers.base import (
    Artefact,
    ByteStream,
    Catalog,
    Credential,
    Finished,
    JobError,
    JobRef,
    ModelSpec,
    Output,
    Pending,
    Polling,
    RequestRejected,
    Snapshot,
    SubmitRequest,
    UpstreamRateLimited,
)

MODELS = (
    ModelSpec(
        id="echo/v1",
        provider="echo",
        native_model="v1",
        kind="song",
        supports=frozenset({"prompt", "lyrics", "title", "style", "duration", "format"}),
    ),
    ModelSpec(
        id="echo/i1",
        provider="echo",
        native_model="i1",
        kind="instrumental",
        supports=frozenset({"prompt", "instrumental", "format"}),
    ),
)

STATUS_MAP = {
    "WAITING": "queued",
    "RUNNING": "in_progress",
    "DONE": "completed",
    "BROKEN": "failed",
}


class EchoOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    fail: bool = False
    mystery: bool = False
    steps: int = 2


class EchoState(msgspec.Struct, kw_only=True):
    step: int = 0
    steps: int = 2
    fail: bool = False
    mystery: bool = False
    title: str = "Echo"
    callback: str | None = None


class EchoProvider:
    name = "echo"
    catalog = Catalog(
        models=MODELS, native_block="echo", options_type=EchoOptions, account_callbacks=True
    )
    models = MODELS
    credentials = (Credential("ECHO_KEY"),)
    state_type = EchoState
    polling = Polling(calls_per_minute=6000.0)
    base_url = "https://echo.test"

    def __init__(self, configured: bool = True) -> None:
        self._configured = configured
        self._ids = itertools.count(1)
        self.calls: dict[str, int] = {"submit": 0, "fetch": 0, "callback": 0}
        self.fetched: collections.Counter[str] = collections.Counter()  # gateway job id -> n
        self.rate_limited = False
        self.fetch_error: Exception | None = None
        self.submit_errors: list[Exception] = []
        self.fetch_errors: list[Exception] = []
        self.submit_delay = 0.0
        self.fetch_delay = 0.0
        self.fetch_gate: asyncio.Event | None = None
        self.submit_gate: asyncio.Event | None = None
        self.closed = False
        self.callback_headers: list[dict[str, str]] = []

    @property
    def configured(self) -> bool:
        return self._configured

    def check(self, req: SubmitRequest) -> None:
        if not (req.prompt or req.lyrics):
            raise RequestRejected("missing_parameter", "give a prompt or lyrics", "prompt")
        if req.model.kind == "instrumental" and req.instrumental is False:
            raise RequestRejected(
                "unsupported_parameter", "i1 is instrumental only", "instrumental"
            )

    async def start(self, req: SubmitRequest[EchoOptions]) -> Pending[EchoState]:
        self.calls["submit"] += 1
        if self.submit_delay:
            await asyncio.sleep(self.submit_delay)
        if self.submit_gate is not None:
            await self.submit_gate.wait()
        if self.submit_errors:
            raise self.submit_errors.pop(0)
        if self.rate_limited:
            raise UpstreamRateLimited("slow down", provider="echo", retry_after=7)
        native = f"echo-{next(self._ids)}"
        state = self.initial_state(req)
        return Pending(
            native_id=native,
            native_ids=[native],
            snapshot=Snapshot(status="queued", native_status="WAITING", progress=0, state=state),
        )

    @staticmethod
    def initial_state(req: SubmitRequest[EchoOptions]) -> EchoState:
        opts = req.options or EchoOptions()
        return EchoState(
            steps=opts.steps,
            fail=opts.fail,
            mystery=opts.mystery,
            title=req.title or "Echo",
            callback=req.callback.url if req.callback else None,
        )

    def _snapshot(self, state: EchoState, native_id: str, fmt: str) -> Snapshot[EchoState]:
        step = state.step
        if step < state.steps:
            word = "WAITING" if step == 0 else "RUNNING"
        elif state.mystery:
            word = "MYSTERY"
        else:
            word = "BROKEN" if state.fail else "DONE"
        status = STATUS_MAP.get(word, "in_progress")  # unknown: never completed
        outputs = []
        if word == "DONE":
            outputs = [
                Output(
                    index=0,
                    id=native_id,
                    audio_url=f"https://echo.test/{native_id}.{fmt}",
                    title=state.title,
                    duration=3.5,
                )
            ]
        error = (
            JobError(code="generation_failed", message="echo broke", native_status=word)
            if word == "BROKEN"
            else None
        )
        return Snapshot(
            status=status,
            native_status=word,
            progress=min(100, step * 50),
            outputs=outputs,
            error=error,
            state=state,
        )

    async def fetch(self, job: JobRef[EchoState]) -> Snapshot[EchoState]:
        self.calls["fetch"] += 1
        self.fetched[job.job_id] += 1
        if self.fetch_gate is not None:
            await self.fetch_gate.wait()
        if self.fetch_delay:
            await asyncio.sleep(self.fetch_delay)
        if self.fetch_errors:
            raise self.fetch_errors.pop(0)
        if self.fetch_error is not None:
            raise self.fetch_error
        last = job.last.state or EchoState()
        state = msgspec.structs.replace(last, step=last.step + 1)
        return self._snapshot(state, job.native_id, job.format)

    async def callback(
        self, job: JobRef[EchoState], headers: Mapping[str, str], body: bytes
    ) -> Snapshot[EchoState]:
        self.calls["callback"] += 1
        self.callback_headers.append(dict(headers))
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            payload: dict = dict(parse_qsl(body.decode()))
        else:
            try:
                payload = msgspec.json.decode(body, type=dict)
            except msgspec.DecodeError as exc:
                raise ValueError(str(exc)) from exc
        last = job.last.state or EchoState()
        state = msgspec.structs.replace(last, step=max(last.step, int(payload.get("step", 0))))
        native_id = job.native_id or str(payload.get("native_id") or "")
        if not native_id:
            raise ValueError("callback names no native job")
        snap = self._snapshot(state, native_id, job.format)
        if not job.native_id:
            snap.native_ids = [native_id]
        return snap

    async def aclose(self) -> None:
        self.closed = True


SYNC_MODELS = (
    ModelSpec(
        id="echo-sync/v1",
        provider="echo-sync",
        native_model="v1",
        kind="song",
        supports=frozenset({"prompt", "title", "format"}),
    ),
)


class SyncEchoOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str | None = None  # answer the audio as this URL to copy, not as bytes


class NoState(msgspec.Struct):
    pass


class SyncEchoProvider:
    """Synchronous: ``start`` is the whole generation; no ``fetch``, no ``callback``."""

    name = "echo-sync"
    catalog = Catalog(
        models=SYNC_MODELS,
        native_block="echo_sync",
        options_type=SyncEchoOptions,
        synchronous=True,
        concurrency=2,
    )
    credentials = (Credential("ECHO_SYNC_KEY"),)
    state_type = NoState
    base_url = "https://echo.test"

    def __init__(self) -> None:
        self.calls = {"submit": 0}
        self.closed_streams = 0
        self.rate_limited = 0  # the next N starts answer 429 (retry after 0.1 s)
        self.gate: asyncio.Event | None = None  # starts wait for it when set
        self.in_flight = self.max_in_flight = 0

    @property
    def configured(self) -> bool:
        return True

    def check(self, req: SubmitRequest[SyncEchoOptions]) -> None:
        if not req.prompt:
            raise RequestRejected("missing_parameter", "give a prompt", "prompt")

    async def start(self, req: SubmitRequest[SyncEchoOptions]) -> Finished:
        self.calls["submit"] += 1
        if self.rate_limited > 0:
            self.rate_limited -= 1
            raise UpstreamRateLimited("too many concurrent", provider=self.name, retry_after=0.1)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.in_flight -= 1
        native = f"sync-{self.calls['submit']}"
        url = req.options.url if req.options else None
        artefact = Artefact(
            index=0,
            id=native,
            title=req.title or "Echo",
            duration=2.0,
            content_type="audio/mpeg",
            audio_url=url,
        )
        if url:
            return Finished(artefacts=[artefact], native_id=native)
        stream = ByteStream(content_type="audio/mpeg", chunks=self._chunks())
        return Finished(artefacts=[artefact], native_id=native, streams={0: stream})

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            yield b"ID3"
        finally:
            self.closed_streams += 1

    async def aclose(self) -> None:
        pass


def create(env: Mapping[str, str]) -> EchoProvider:
    return EchoProvider(configured=bool(env.get("ECHO_KEY", "x")))
