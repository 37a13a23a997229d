"""Fixtures: the MusicGPT simulator and a callback receiver, both over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar, Request, Response, post
from litestar.params import FromPath

from providers.base import Callback, JobRef, Pending, Snapshot, SubmitRequest
from providers.musicgpt import MusicGPTProvider, create
from providers.musicgpt.catalog import MODELS
from providers.musicgpt.simulator import SimulatorConfig, create_simulator
from tests.support.servers import serve
from tests.support.waiting import TIMEOUT, eventually

KEY = "mg-test-key-5f1c9a0e7d"
MODEL = {m.native_model: m for m in MODELS}
FAST = SimulatorConfig(api_key=KEY, queue_seconds=0.15, progress_seconds=0.3)


@dataclasses.dataclass
class Sim:
    url: str
    config: SimulatorConfig

    async def set(self, **patch: Any) -> dict[str, Any]:
        async with httpx.AsyncClient() as c:
            r = await c.post(f"{self.url}/__sim__/config", json=patch)
        assert r.status_code == 200, r.text
        return r.json()

    async def stats(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as c:
            return (await c.get(f"{self.url}/__sim__/stats")).json()


@pytest.fixture(scope="module")
def mg_sim_server() -> Iterator[Sim]:
    config = msgspec.structs.replace(FAST)
    with serve(create_simulator(config)) as url:
        yield Sim(url=url, config=config)


@pytest.fixture
async def mg_sim(mg_sim_server: Sim) -> AsyncIterator[Sim]:
    """The simulator with default knobs and empty counters for each test."""
    await mg_sim_server.set(**msgspec.to_builtins(FAST))
    async with httpx.AsyncClient() as c:
        await c.post(f"{mg_sim_server.url}/__sim__/reset")
    yield mg_sim_server


@pytest.fixture
async def provider(mg_sim: Sim) -> AsyncIterator[MusicGPTProvider]:
    p = create(
        {
            "MUSICGPT_API_KEY": KEY,
            "MUSICGPT_BASE_URL": mg_sim.url,
            "MUSICGPT_READ_TIMEOUT": "5",  # loopback answers in ms, even on a loaded machine
            "MUSICGPT_CONNECT_TIMEOUT": "5",
        }
    )
    assert isinstance(p, MusicGPTProvider)
    yield p
    await p.aclose()


@dataclasses.dataclass
class Receiver:
    """Collects the simulator's webhook POSTs (``/hook/{job_id}/{token}``)."""

    url: str
    bodies: list[tuple[str, bytes]] = dataclasses.field(default_factory=list)
    fail_next: int = 0

    def callback(self, job_id: str) -> Callback:
        return Callback(
            url=f"{self.url}/hook/{job_id}/tok-{job_id}", job_id=job_id, token=f"tok-{job_id}"
        )

    def for_job(self, job_id: str) -> list[bytes]:
        return [body for jid, body in list(self.bodies) if jid == job_id]

    async def wait_for(self, job_id: str, count: int) -> list[bytes]:
        """The job's callback bodies once ``count`` have arrived (fails if they do not)."""
        await eventually(
            lambda: len(self.for_job(job_id)) >= count, what=f"{count} callbacks for {job_id}"
        )
        return self.for_job(job_id)


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    rec = Receiver(url="")

    @post("/hook/{job_id:str}/{token:str}")
    async def hook(
        request: Request[Any, Any, Any], job_id: FromPath[str], token: FromPath[str]
    ) -> Response[bytes]:
        body = await request.body()
        if rec.fail_next > 0:
            rec.fail_next -= 1
            return Response(b"try later", status_code=503)
        rec.bodies.append((job_id, body))
        return Response(b"ok", status_code=200)

    with serve(Litestar(route_handlers=[hook], openapi_config=None)) as url:
        rec.url = url
        yield rec


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    receiver_server.bodies.clear()
    receiver_server.fail_next = 0
    return receiver_server


def request(model: str = "v7", **kw: Any) -> SubmitRequest:
    kw.setdefault("prompt", "an upbeat synth-pop song about loopback interfaces")
    return SubmitRequest(model=MODEL[model], **kw)


def job_ref(
    sub: Pending, req: SubmitRequest, last: Snapshot | None = None, job_id: str = "mus_t"
) -> JobRef:
    return JobRef(
        job_id=job_id,
        model=req.model,
        native_id=sub.native_id,
        native_ids=sub.native_ids,
        format=req.format,
        last=last or sub.snapshot,
    )


async def poll_until_final(
    provider: MusicGPTProvider, sub: Pending, req: SubmitRequest, timeout: float = TIMEOUT
) -> list[Snapshot]:
    """Fetch until completed/failed; returns every snapshot seen (the submit one first)."""
    seen = [sub.snapshot]
    deadline = time.monotonic() + timeout
    while seen[-1].status not in ("completed", "failed"):
        assert time.monotonic() < deadline, f"not final in time: {seen[-1]}"
        await asyncio.sleep(0.04)
        seen.append(await provider.fetch(job_ref(sub, req, seen[-1])))
    return seen
