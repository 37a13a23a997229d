"""A test-only provider, in-process, proving the core works with any provider.

It has one song model ``echo/v1`` and one instrumental ``echo/i1``. A job advances one
native step per ``fetch``: ``WAITING`` → ``RUNNING`` → ``DONE`` (or ``BROKEN`` when the
``echo {"fail": true}`` option is set, or ``MYSTERY`` — an unknown status — with
``{"mystery": true}``). Every call is counted so tests can assert upstream traffic.

Fault knobs: ``submit_errors`` / ``fetch_errors`` (raised in order, one per call, before
calls succeed again), ``submit_delay`` / ``fetch_delay`` (seconds), ``fetch_gate`` (an
``asyncio.Event`` every fetch waits for: a slow upstream the test releases when it
chooses), ``rate_limited``, ``fetch_error`` (raised on every fetch). ``fetched`` counts
the fetches per gateway job id. A callback body ``{"native_id": ...}`` names the
native job, as real providers' callbacks do, so a create whose answer was lost can be
reconciled.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Mapping, Sequence

import msgspec

from providers.base import (
    JobError,
    JobRef,
    ModelSpec,
    Output,
    RequestRejected,
    Snapshot,
    Submission,
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


class EchoProvider:
    name = "echo"
    models = MODELS
    options_type = EchoOptions
    status_calls_per_minute = 6000.0

    def status_calls(self, native_ids: Sequence[str]) -> int:
        return 1

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
        self.closed = False

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

    async def submit(self, req: SubmitRequest) -> Submission:
        self.calls["submit"] += 1
        if self.submit_delay:
            await asyncio.sleep(self.submit_delay)
        if self.submit_errors:
            raise self.submit_errors.pop(0)
        if self.rate_limited:
            raise UpstreamRateLimited("slow down", provider="echo", retry_after=7)
        native = f"echo-{next(self._ids)}"
        state = self.initial_state(req)
        return Submission(
            native_id=native,
            native_ids=[native],
            snapshot=Snapshot(status="queued", native_status="WAITING", progress=0, state=state),
        )

    @staticmethod
    def initial_state(req: SubmitRequest) -> dict:
        opts = req.options or EchoOptions()
        return {
            "step": 0,
            "steps": opts.steps,
            "fail": opts.fail,
            "mystery": opts.mystery,
            "title": req.title or "Echo",
            "callback": req.callback.url if req.callback else None,
        }

    def _snapshot(self, state: dict, native_id: str, fmt: str) -> Snapshot:
        step = state["step"]
        if step < state["steps"]:
            word = "WAITING" if step == 0 else "RUNNING"
        elif state["mystery"]:
            word = "MYSTERY"
        else:
            word = "BROKEN" if state["fail"] else "DONE"
        status = STATUS_MAP.get(word, "in_progress")  # unknown: never completed
        outputs = []
        if word == "DONE":
            outputs = [
                Output(
                    index=0,
                    id=native_id,
                    audio_url=f"https://echo.test/{native_id}.{fmt}",
                    title=state["title"],
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

    async def fetch(self, job: JobRef) -> Snapshot:
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
        state = dict(job.last.state)
        state["step"] += 1
        return self._snapshot(state, job.native_id, job.format)

    async def callback(self, job: JobRef, body: bytes) -> Snapshot:
        self.calls["callback"] += 1
        try:
            payload = msgspec.json.decode(body, type=dict)
        except msgspec.DecodeError as exc:
            raise ValueError(str(exc)) from exc
        state = dict(job.last.state) or {"step": 0, "steps": 2, "fail": False, "mystery": False}
        state.setdefault("title", "Echo")
        state["step"] = max(state["step"], int(payload.get("step", 0)))
        native_id = job.native_id or str(payload.get("native_id") or "")
        if not native_id:
            raise ValueError("callback names no native job")
        snap = self._snapshot(state, native_id, job.format)
        if not job.native_id:
            snap.native_ids = [native_id]
        return snap

    async def aclose(self) -> None:
        self.closed = True


def create(env: Mapping[str, str]) -> EchoProvider:
    return EchoProvider(configured=bool(env.get("ECHO_KEY", "x")))
