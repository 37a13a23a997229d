"""The explicit provider registry: adding a provider is one line here.

Each entry is a factory ``create(env) -> Provider`` that reads the provider's own
configuration from the environment mapping (``MUSICGPT_API_KEY``, ``USEAPI_TOKEN``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from providers import musicgpt, tempolor
from providers.base import ModelSpec, Provider

ProviderFactory = Callable[[Mapping[str, str]], Provider]

REGISTRY: dict[str, ProviderFactory] = {
    "musicgpt": musicgpt.create,
    "tempolor": tempolor.create,
}


def create_providers(env: Mapping[str, str]) -> list[Provider]:
    """Instantiate every registered provider from the environment."""
    return [factory(env) for factory in REGISTRY.values()]


def catalog(providers: list[Provider]) -> dict[str, ModelSpec]:
    """Model id → spec, over the given providers, in registry order."""
    return {m.id: m for p in providers for m in p.models}


@dataclass(frozen=True)
class SimulatorSpec:
    """How the first-run demo stands in for a provider whose credential is unset."""

    credential: str  # env name whose presence means "use the real provider"
    create_app: Callable[[], Any]  # the native-wire-format simulator (an ASGI app)
    env_for: Callable[[str], dict[str, str]]  # env pointing the provider at a simulator URL


def _musicgpt_sim() -> Any:
    from providers.musicgpt.simulator import SimulatorConfig, create_simulator

    return create_simulator(SimulatorConfig(queue_seconds=2.0, progress_seconds=4.0))


def _tempolor_sim() -> Any:
    from providers.tempolor.simulator import SimulatorConfig, create_simulator

    return create_simulator(SimulatorConfig(queue_seconds=2.0, generate_seconds=4.0))


SIMULATORS: dict[str, SimulatorSpec] = {
    "musicgpt": SimulatorSpec(
        credential="MUSICGPT_API_KEY",
        create_app=_musicgpt_sim,
        env_for=lambda url: {"MUSICGPT_API_KEY": "sim-musicgpt-key", "MUSICGPT_BASE_URL": url},
    ),
    "tempolor": SimulatorSpec(
        credential="USEAPI_TOKEN",
        create_app=_tempolor_sim,
        env_for=lambda url: {"USEAPI_TOKEN": "sim-useapi-token", "USEAPI_BASE_URL": url + "/v1"},
    ),
}
