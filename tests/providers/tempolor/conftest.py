"""Fixtures: the TemPolor simulator over real HTTP, and a provider pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import msgspec
import pytest

import providers.tempolor as tempolor
from providers.tempolor.simulator import SimulatorConfig, create_simulator
from tests.providers.tempolor.helpers import FAST, TOKEN, Sim
from tests.support.servers import serve


@pytest.fixture(scope="module")
def sim_server() -> Iterator[Sim]:
    with serve(create_simulator(SimulatorConfig(api_token=TOKEN))) as base, httpx.Client() as http:
        yield Sim(base, http)


@pytest.fixture
def sim(sim_server: Sim) -> Sim:
    """The simulator, reset to the fast defaults with no jobs and zeroed counters."""
    sim_server.reset()
    sim_server.configure(**msgspec.to_builtins(FAST))
    return sim_server


@pytest.fixture
async def provider(sim: Sim) -> AsyncIterator[tempolor.TemPolorProvider]:
    p = tempolor.create({"USEAPI_TOKEN": TOKEN, "USEAPI_BASE_URL": sim.api})
    try:
        yield p
    finally:
        await p.aclose()
