"""The explicit provider registry: adding a provider is one package and one line here.

Each ``Registration`` names the provider's factory ``create(env) -> Provider`` (it reads
its own configuration from the environment mapping), the credentials it declares and its
simulator. The gateway learns every provider-specific name from here: which values to
redact, which providers ``/ready`` lists, and which simulators the first-run demo starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from providers import elevenlabs, musicgpt, suno, tempolor
from providers.base import Credential, ModelSpec, Provider
from providers.kit.simulation import SimulatorSpec

ProviderFactory = Callable[[Mapping[str, str]], Provider]


@dataclass(frozen=True)
class Registration:
    create: ProviderFactory
    credentials: tuple[Credential, ...]
    simulator: SimulatorSpec
    models: tuple[ModelSpec, ...]

    @property
    def required(self) -> tuple[str, ...]:
        """The environment names whose presence means "use the real provider"."""
        return tuple(c.env for c in self.credentials if c.required)


def _register(module: object, provider: type) -> Registration:
    return Registration(
        create=module.create,  # type: ignore[attr-defined]
        credentials=provider.credentials,  # type: ignore[attr-defined]
        simulator=module.SIMULATOR,  # type: ignore[attr-defined]
        models=provider.catalog.models,  # type: ignore[attr-defined]
    )


REGISTRY: dict[str, Registration] = {
    "musicgpt": _register(musicgpt, musicgpt.MusicGPTProvider),
    "tempolor": _register(tempolor, tempolor.TemPolorProvider),
    "suno": _register(suno, suno.SunoProvider),
    "elevenlabs": _register(elevenlabs, elevenlabs.ElevenLabsProvider),
}

#: Each provider's simulator (the first-run demo, the tests).
SIMULATORS: dict[str, SimulatorSpec] = {name: r.simulator for name, r in REGISTRY.items()}


def create_providers(env: Mapping[str, str]) -> list[Provider]:
    """Instantiate every registered provider from the environment."""
    return [r.create(env) for r in REGISTRY.values()]


def secret_names() -> tuple[str, ...]:
    """Every registered provider's secret environment names."""
    return tuple(c.env for r in REGISTRY.values() for c in r.credentials if c.secret)


def catalog(providers: list[Provider]) -> dict[str, ModelSpec]:
    """Model id → spec, over the given providers, in registry order."""
    return {m.id: m for p in providers for m in p.catalog.models}
