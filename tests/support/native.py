"""A provider tested on its own, against its simulator: the simulator's ``/__sim__``
control endpoints, and a submitted job polled through ``fetch`` as the gateway would.

Usage::

    sim = SimControl(base_url, httpx.Client())
    sim.configure(callbacks=False); sim.stats(); sim.creates(); sim.reset()
    final, history = await poll(provider, pending, request)      # until final

    receiver = CallbackReceiver("suno")          # the gateway's callback route, standing in
    with serve(receiver.app) as base:
        receiver.base = base
        req = request(callback=receiver.callback("mus_1", "tok"))
        bodies = await receiver.wait_for(3)      # the raw bodies, in arrival order
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from litestar import Litestar, Request, Response, post

from providers.base import Callback, JobRef, Pending, Pollable, Snapshot, SubmitRequest, is_final
from tests.support.waiting import TIMEOUT, eventually

__all__ = ["CallbackReceiver", "SimControl", "poll", "ref"]


class SimControl:
    """The served simulator: its base URL and its ``/__sim__`` control endpoints."""

    def __init__(self, base: str, http: httpx.Client) -> None:
        self.base = base
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


def ref(sub: Pending, req: SubmitRequest, last: Snapshot | None = None, **kw: Any) -> JobRef:
    """The job reference ``fetch`` gets for ``sub`` (``job_id``, ``native_id`` may be
    given)."""
    return JobRef(
        job_id=kw.get("job_id", "mus_test"),
        model=req.model,
        native_id=kw.get("native_id", sub.native_id),
        native_ids=sub.native_ids,
        format=req.format,
        last=last or sub.snapshot,
    )


async def poll(
    provider: Pollable,
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


class CallbackReceiver:
    """The gateway's callback route for ``provider``, standing in: it records every
    callback body (or answers 500 while ``fail``)."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.bodies: list[tuple[str, bytes]] = []  # (path, body)
        self.fail = False
        self.base = ""  # set once served

        @post(f"/v1/callbacks/{provider}/{{rest:path}}", status_code=200)
        async def intake(request: Request[Any, Any, Any]) -> Response[bytes]:
            self.bodies.append((request.url.path, await request.body()))
            return Response(content=b"", status_code=500 if self.fail else 200)

        self.app = Litestar(route_handlers=[intake], openapi_config=None)

    def callback(self, job_id: str, token: str) -> Callback:
        url = f"{self.base}/v1/callbacks/{self.provider}/{job_id}/{token}"
        return Callback(url=url, job_id=job_id, token=token)

    def clear(self) -> None:
        self.bodies.clear()
        self.fail = False

    async def wait_for(self, count: int) -> list[bytes]:
        """Every body received, once there are at least ``count``."""
        await eventually(lambda: len(self.bodies) >= count, what=f"{count} callbacks")
        return [b for _, b in self.bodies]
