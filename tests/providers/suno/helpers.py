"""Helpers for the Suno tests: the simulator's control endpoints, requests, polling."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

import providers.suno as suno
from providers.base import Callback, JobRef, Pending, Snapshot, SubmitRequest, is_final
from providers.suno.catalog import MODELS, SunoOptions
from providers.suno.simulator import SimulatorConfig
from tests.support.waiting import TIMEOUT

KEY = "sk-suno-sim-secret-7f3a9c0e41"
SPECS = {m.id: m for m in MODELS}

#: Fast timings for tests (seconds); every test starts from these.
FAST = SimulatorConfig(
    api_key=KEY, text_seconds=0.05, first_seconds=0.1, complete_seconds=0.2, callbacks=True
)


class Sim:
    """The served simulator: its base URL and its ``/__sim__`` control endpoints."""

    def __init__(self, base: str, http: httpx.Client) -> None:
        self.base = base
        self.http = http

    def configure(self, **knobs: Any) -> dict[str, Any]:
        resp = self.http.post(self.base + "/__sim__/config", json=knobs)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def reset(self) -> None:
        self.http.post(self.base + "/__sim__/reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        return self.http.get(self.base + "/__sim__/stats").json()

    def creates(self) -> list[dict[str, Any]]:
        return self.http.get(self.base + "/__sim__/creates").json()


def request(
    model: str = "suno/v4.5",
    *,
    prompt: str | None = "an upbeat synth-pop song about summer nights",
    callback: Callback | None = None,
    **fields: Any,
) -> SubmitRequest:
    options = fields.pop("options", None)
    if isinstance(options, dict):
        options = SunoOptions(**options)
    return SubmitRequest(
        model=SPECS[model], prompt=prompt, options=options, callback=callback, **fields
    )


def ref(sub: Pending, req: SubmitRequest, last: Snapshot | None = None, **kw: Any) -> JobRef:
    return JobRef(
        job_id=kw.get("job_id", "mus_test"),
        model=req.model,
        native_id=kw.get("native_id", sub.native_id),
        native_ids=sub.native_ids,
        format=req.format,
        last=last or sub.snapshot,
    )


async def poll(
    provider: suno.SunoProvider,
    sub: Pending,
    req: SubmitRequest,
    *,
    until: Any = None,
    timeout: float = TIMEOUT,
) -> tuple[Snapshot, list[Snapshot]]:
    """Fetch until ``until(snapshot)`` (default: a final status); returns it and the history."""
    until = until or (lambda s: is_final(s.status))
    snap, seen = sub.snapshot, [sub.snapshot]
    deadline = time.monotonic() + timeout
    while not until(snap):
        assert time.monotonic() < deadline, f"timed out; last snapshot {snap}"
        await asyncio.sleep(0.02)
        snap = await provider.fetch(ref(sub, req, snap))
        seen.append(snap)
    return snap, seen
