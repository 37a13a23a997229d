"""Fixtures: the MiniMax simulator over real HTTP on loopback, and the provider on it."""

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
from providers.minimax import MiniMaxProvider, create
from providers.minimax.catalog import MODELS
from providers.minimax.simulator import SimulatorConfig, create_simulator
from tests.support.servers import serve

KEY = "mm-test-key-5e1f0a93b7c4"
MODEL = {m.id: m for m in MODELS}
DEFAULTS = SimulatorConfig(api_key=KEY, length_ms=5000)
PROMPT = "a warm lo-fi instrumental about loopback interfaces"
LYRICS = "[Verse]\nPackets on the loopback\n[Chorus]\nNever leave the host"


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

    async def reset(self) -> None:
        await self.set(**msgspec.to_builtins(DEFAULTS))
        await self.wait_for("in_flight", 0)
        async with httpx.AsyncClient() as c:
            (await c.post(f"{self.url}/__sim__/reset")).raise_for_status()

    async def wait_for(self, name: str, value: int, timeout: float = 5.0) -> dict[str, Any]:
        """Poll the stats until ``name`` reads ``value`` (a condition, not a fixed wait)."""
        deadline = time.monotonic() + timeout
        while (stats := await self.stats()).get(name) != value:
            assert time.monotonic() < deadline, f"{name} never became {value}: {stats}"
            await asyncio.sleep(0.01)
        return stats

    async def sent(self) -> dict[str, Any]:
        """The last request body the simulator received."""
        return msgspec.json.decode((await self.stats())["last_body"])


@pytest.fixture(scope="module")
def mm_sim_server() -> Iterator[Sim]:
    config = msgspec.structs.replace(DEFAULTS)
    with serve(create_simulator(config)) as url:
        yield Sim(url=url, config=config)


@pytest.fixture
async def mm_sim(mm_sim_server: Sim) -> AsyncIterator[Sim]:
    """The simulator with default knobs and empty counters for each test."""
    await mm_sim_server.reset()
    yield mm_sim_server


def make_provider(sim: Sim, **env: str) -> MiniMaxProvider:
    return create(
        {
            "MINIMAX_API_KEY": KEY,
            "MINIMAX_BASE_URL": sim.url,
            "MINIMAX_READ_TIMEOUT": "10",
            "MINIMAX_CONNECT_TIMEOUT": "1",
            **env,
        }
    )


@pytest.fixture
async def provider(mm_sim: Sim) -> AsyncIterator[MiniMaxProvider]:
    p = make_provider(mm_sim)
    yield p
    await p.aclose()


def request(model: str = "minimax/music-2.6", **kw: Any) -> SubmitRequest:
    """An instrumental by default (a prompt alone); ``lyrics=...`` makes a song."""
    kw.setdefault("prompt", PROMPT)
    return SubmitRequest(model=MODEL[model], **kw)


async def read_all(stream: ByteStream) -> bytes:
    return b"".join([chunk async for chunk in stream.chunks])


def probe(data: bytes) -> tuple[str, int, int, float]:
    """(container, sample rate, channels, seconds decoded) of audio bytes (PyAV)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return container.format.name, stream.rate, stream.channels, samples / stream.rate
