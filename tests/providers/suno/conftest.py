"""Fixtures: the Suno simulator over real HTTP, and a provider pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import msgspec
import pytest

import providers.suno as suno
from providers.suno.simulator import SimulatorConfig, create_simulator
from tests.providers.suno.helpers import FAST, KEY, Sim
from tests.support.servers import serve


@pytest.fixture(scope="module")
def sim_server() -> Iterator[Sim]:
    with serve(create_simulator(SimulatorConfig(api_key=KEY))) as base, httpx.Client() as http:
        yield Sim(base, http)


@pytest.fixture
def sim(sim_server: Sim) -> Sim:
    """The simulator, reset to the fast defaults with no tasks and zeroed counters."""
    sim_server.reset()
    sim_server.configure(**msgspec.to_builtins(FAST))
    return sim_server


@pytest.fixture
async def provider(sim: Sim) -> AsyncIterator[suno.SunoProvider]:
    p = suno.create({"SUNO_API_KEY": KEY, "SUNO_BASE_URL": sim.base})
    try:
        yield p
    finally:
        await p.aclose()
