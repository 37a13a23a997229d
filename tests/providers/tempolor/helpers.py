"""Helpers for the TemPolor tests: the simulator's control endpoints, requests, polling."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

import providers.tempolor as tempolor
from providers.base import Callback, JobRef, Pending, Snapshot, SubmitRequest, is_final
from providers.tempolor.catalog import MODELS, TemPolorOptions
from providers.tempolor.simulator import SimulatorConfig
from tests.support.waiting import TIMEOUT

TOKEN = "user:12345-sim-secret-token-0042"
SPECS = {m.id: m for m in MODELS}

#: Fast timings for tests (seconds); every test starts from these.
FAST = SimulatorConfig(
    api_token=TOKEN,
    queue_seconds=0.05,
    generate_seconds=0.15,
    download_404_seconds=0.0,
    url_ttl_seconds=600.0,
)


class Sim:
    """The served simulator: its base URL and its ``/__sim__`` control endpoints."""

    def __init__(self, base: str, http: httpx.Client) -> None:
        self.base = base
        self.api = base + "/v1"
        self.http = http  # one pooled sync client for the test side

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
    model: str = "tempolor/v4.8",
    *,
    prompt: str = "an upbeat synth-pop song about summer nights",
    callback: Callback | None = None,
    **fields: Any,
) -> SubmitRequest:
    options = fields.pop("options", None)
    if isinstance(options, dict):
        options = TemPolorOptions(**options)
    return SubmitRequest(
        model=SPECS[model], prompt=prompt, options=options, callback=callback, **fields
    )


def ref(sub: Pending, req: SubmitRequest, last: Snapshot | None = None, **kw: Any) -> JobRef:
    return JobRef(
        job_id=kw.get("job_id", "mus_test"),
        model=req.model,
        native_id=sub.native_id,
        native_ids=sub.native_ids,
        format=req.format,
        last=last or sub.snapshot,
    )


async def poll(
    provider: tempolor.TemPolorProvider,
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
        await asyncio.sleep(0.03)
        snap = await provider.fetch(ref(sub, req, snap))
        seen.append(snap)
    return snap, seen
