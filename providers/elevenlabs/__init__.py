"""The ElevenLabs Music provider: ``create(env)`` builds it (not registered yet: the
gateway's worker for synchronous providers comes first).

Flow (ElevenLabs' API reference, https://elevenlabs.io/docs/api-reference/music/compose)::

    start    POST {ELEVENLABS_BASE_URL}/v1/music?output_format=...   (xi-api-key header)
             -> 200, the audio itself (header song-id): a synchronous provider

``start`` runs the whole generation (seconds to minutes) and answers ``Finished`` with
one artefact whose bytes are a ``ByteStream`` (``streams.py``): MP3 byte for byte as sent,
or raw PCM wrapped as WAV. Not ``Pollable``, no callbacks, no state.

Environment: ``ELEVENLABS_API_KEY`` (``configured`` iff set), ``ELEVENLABS_BASE_URL``
(default ``https://api.elevenlabs.io``, no ``/v1``), ``ELEVENLABS_CONNECT_TIMEOUT``
(5 s), ``ELEVENLABS_READ_TIMEOUT`` (330 s: the generation runs while the request is
open), ``ELEVENLABS_WRITE_TIMEOUT`` (10 s), ``ELEVENLABS_POOL_TIMEOUT`` (5 s).

``DEFAULT_CONCURRENCY`` (2) is the smallest paid plans' documented limit of parallel
music generations, for the gateway's per-provider concurrency.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.base import Credential, Finished, SubmitRequest
from providers.elevenlabs import mapping, streams, validation
from providers.elevenlabs.catalog import (
    CATALOG,
    DEFAULT_CONCURRENCY,
    MODELS,
    ElevenLabsOptions,
    ElevenLabsState,
)
from providers.elevenlabs.client import ClientSettings, ElevenLabsClient
from providers.kit.simulation import SimulatorSpec

__all__ = ["DEFAULT_CONCURRENCY", "SIMULATOR", "ElevenLabsProvider", "create"]


class ElevenLabsProvider:
    """Synchronous: ``start`` is the whole generation; no ``fetch``, no ``callback``."""

    name = mapping.PROVIDER
    catalog = CATALOG
    models = MODELS
    credentials = (Credential("ELEVENLABS_API_KEY"),)
    state_type = ElevenLabsState

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.base_url = settings.base_url
        self._client = ElevenLabsClient(settings)

    @property
    def configured(self) -> bool:
        return bool(self.settings.api_key)

    def check(self, req: SubmitRequest[ElevenLabsOptions]) -> None:
        validation.check(req)

    async def start(self, req: SubmitRequest[ElevenLabsOptions]) -> Finished:
        call = mapping.to_native(req)
        body = await self._client.compose(call.params, mapping.encode(call.body))
        return await streams.finish(req, call, body)

    async def aclose(self) -> None:
        await self._client.aclose()


def create(env: Mapping[str, str]) -> ElevenLabsProvider:
    """Build the provider from environment names; no network I/O here."""
    return ElevenLabsProvider(ClientSettings.from_env(env))


def _simulator() -> Any:
    from providers.elevenlabs.simulator import SimulatorConfig, create_simulator

    return create_simulator(SimulatorConfig(latency=1.0))


SIMULATOR = SimulatorSpec(
    create_app=_simulator,
    env_for=lambda url: {"ELEVENLABS_API_KEY": "sim-elevenlabs-key", "ELEVENLABS_BASE_URL": url},
)
