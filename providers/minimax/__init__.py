"""The MiniMax Music provider: ``create(env)`` builds it.

Flow (MiniMax's API reference,
https://platform.minimax.io/docs/api-reference/music-generation)::

    start    POST {MINIMAX_BASE_URL}/v1/music_generation   (Authorization: Bearer)
             -> 200 JSON: the song as a URL (valid 24 h) or as hex, and base_resp

``start`` runs the whole generation (one to a few minutes) and answers ``Finished`` with
one artefact: its ``audio_url`` MiniMax's URL (the gateway copies it into its store at
once), or, for ``minimax.output_format: "hex"``, its bytes decoded while the answer
streamed in (``streams.py``). An error inside the 200 (``base_resp.status_code`` ≠ 0) is
raised as its ``ProviderError``: a rate or plan limit as ``UpstreamRateLimited``, so the
gateway's worker puts the job back in its queue. Not ``Pollable``, no callbacks, no state.

Environment: ``MINIMAX_API_KEY`` (``configured`` iff set), ``MINIMAX_BASE_URL`` (default
``https://api.minimax.io``; the mainland ``https://api.minimaxi.com`` works the same, with
a key of that platform; no ``/v1``), ``MINIMAX_CONNECT_TIMEOUT`` (5 s),
``MINIMAX_READ_TIMEOUT`` (600 s: nothing comes back before the song is made),
``MINIMAX_WRITE_TIMEOUT`` (10 s), ``MINIMAX_POOL_TIMEOUT`` (5 s).

``DEFAULT_CONCURRENCY`` (20) is MiniMax's documented limit of parallel music generations
for a paying account, for the gateway's per-provider concurrency.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.base import Credential, Finished, SubmitRequest
from providers.kit import scrub_bytes
from providers.kit.simulation import SimulatorSpec
from providers.minimax import mapping, streams, validation
from providers.minimax.catalog import (
    CATALOG,
    DEFAULT_CONCURRENCY,
    MODELS,
    MiniMaxOptions,
    MiniMaxState,
)
from providers.minimax.client import ClientSettings, MiniMaxClient

__all__ = ["DEFAULT_CONCURRENCY", "SIMULATOR", "MiniMaxProvider", "create"]


class MiniMaxProvider:
    """Synchronous: ``start`` is the whole generation; no ``fetch``, no ``callback``."""

    name = mapping.PROVIDER
    catalog = CATALOG
    models = MODELS
    credentials = (Credential("MINIMAX_API_KEY"),)
    state_type = MiniMaxState

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.base_url = settings.base_url
        self._client = MiniMaxClient(settings)

    @property
    def configured(self) -> bool:
        return bool(self.settings.api_key)

    def check(self, req: SubmitRequest[MiniMaxOptions]) -> None:
        validation.check(req)

    async def start(self, req: SubmitRequest[MiniMaxOptions]) -> Finished:
        body = await self._client.generate(mapping.encode(mapping.to_native(req)))
        key = self.settings.api_key
        return await streams.finish(req, body, lambda raw: scrub_bytes(raw, key))

    async def aclose(self) -> None:
        await self._client.aclose()


def create(env: Mapping[str, str]) -> MiniMaxProvider:
    """Build the provider from environment names; no network I/O here."""
    return MiniMaxProvider(ClientSettings.from_env(env))


def _simulator() -> Any:
    from providers.minimax.simulator import SimulatorConfig, create_simulator

    return create_simulator(SimulatorConfig(latency=1.0))


SIMULATOR = SimulatorSpec(
    create_app=_simulator,
    env_for=lambda url: {"MINIMAX_API_KEY": "sim-minimax-key", "MINIMAX_BASE_URL": url},
)
