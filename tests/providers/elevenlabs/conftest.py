"""Fixtures: the ElevenLabs simulator over real HTTP on loopback, and the provider on it."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import av
import httpx
import msgspec
import pytest

from providers.base import ByteStream, SubmitRequest
from providers.elevenlabs import ElevenLabsProvider, create
from providers.elevenlabs.catalog import (
    MODELS,
    CompositionPlan,
    ElevenLabsOptions,
    PlanChunk,
    SongSection,
)
from providers.elevenlabs.simulator import SimulatorConfig, create_simulator
from tests.support.servers import serve

KEY = "xi-test-key-3b9d0f51c7e2"
MODEL = {m.id: m for m in MODELS}
DEFAULTS = SimulatorConfig(api_key=KEY)


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

    async def wait_for(self, name: str, value: int, timeout: float = 5.0) -> dict[str, Any]:
        """Poll the stats until ``name`` reads ``value`` (a condition, not a fixed wait)."""
        deadline = time.monotonic() + timeout
        while (stats := await self.stats())[name] != value:
            assert time.monotonic() < deadline, f"{name} never became {value}: {stats}"
            await asyncio.sleep(0.01)
        return stats


@pytest.fixture(scope="module")
def el_sim_server() -> Iterator[Sim]:
    config = msgspec.structs.replace(DEFAULTS)
    with serve(create_simulator(config)) as url:
        yield Sim(url=url, config=config)


@pytest.fixture
async def el_sim(el_sim_server: Sim) -> AsyncIterator[Sim]:
    """The simulator with default knobs and empty counters for each test."""
    await el_sim_server.set(**msgspec.to_builtins(DEFAULTS))
    await el_sim_server.wait_for("in_flight", 0)
    async with httpx.AsyncClient() as c:
        await c.post(f"{el_sim_server.url}/__sim__/reset")
    yield el_sim_server


def make_provider(sim: Sim, **env: str) -> ElevenLabsProvider:
    return create(
        {
            "ELEVENLABS_API_KEY": KEY,
            "ELEVENLABS_BASE_URL": sim.url,
            "ELEVENLABS_READ_TIMEOUT": "5",
            "ELEVENLABS_CONNECT_TIMEOUT": "1",
            **env,
        }
    )


@pytest.fixture
async def provider(el_sim: Sim) -> AsyncIterator[ElevenLabsProvider]:
    p = make_provider(el_sim)
    yield p
    await p.aclose()


def request(model: str = "elevenlabs/music_v2", **kw: Any) -> SubmitRequest:
    if "options" not in kw or kw["options"] is None or kw["options"].composition_plan is None:
        kw.setdefault("prompt", "a bright synth-pop instrumental about loopback interfaces")
    return SubmitRequest(model=MODEL[model], **kw)


async def read_all(stream: ByteStream) -> bytes:
    parts = [chunk async for chunk in stream.chunks]
    return b"".join(parts)


def decoded_seconds(data: bytes) -> float:
    """Decode every audio frame with PyAV (FFmpeg) and sum their samples."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate


def section(name: str = "Verse", ms: int = 10000) -> SongSection:
    return SongSection(
        section_name=name,
        positive_local_styles=["pop"],
        negative_local_styles=[],
        duration_ms=ms,
        lines=["la la"],
    )


def chunk(ms: int = 10000, **kw: Any) -> PlanChunk:
    return PlanChunk(text="[Verse 1]\nla la", duration_ms=ms, positive_styles=["pop"], **kw)


V1_PLAN = CompositionPlan(sections=[section("Intro", 5000), section("Verse", 10000)])
V2_PLAN = CompositionPlan(chunks=[chunk(8000), chunk(7000)])


def planned(model: str, plan: CompositionPlan, **opts: Any) -> SubmitRequest:
    return SubmitRequest(
        model=MODEL[model], options=ElevenLabsOptions(composition_plan=plan, **opts)
    )
