"""The explicit provider registry: adding a provider is one line here.

Each entry is a factory ``create(env) -> Provider`` that reads the provider's own
configuration from the environment mapping (``MUSICGPT_API_KEY``, ``USEAPI_TOKEN``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

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
