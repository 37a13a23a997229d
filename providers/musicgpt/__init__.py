"""The MusicGPT provider: ``create(env)`` builds it for the registry.

Flow (MusicGPT's public API docs (https://docs.musicgpt.com))::

    start    POST {MUSICGPT_BASE_URL}/v2/MusicAI   -> task_id + conversion_id_1/2 (two songs)
    fetch    GET  {MUSICGPT_BASE_URL}/v1/byId?conversionType=MUSIC_AI&task_id=...
    callback one webhook POST per artefact (music_ai, audio_streaming, album cover, lyrics)

Environment: ``MUSICGPT_API_KEY`` (``configured`` iff set), ``MUSICGPT_BASE_URL``
(default ``https://api.musicgpt.com/api/public``), ``MUSICGPT_CONNECT_TIMEOUT`` (5 s),
``MUSICGPT_READ_TIMEOUT`` (30 s), ``MUSICGPT_WRITE_TIMEOUT`` (10 s),
``MUSICGPT_POOL_TIMEOUT`` (5 s), ``MUSICGPT_MAX_CONNECTIONS`` (50).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from providers.base import (
    Credential,
    JobRef,
    Pending,
    Polling,
    RequestRejected,
    Snapshot,
    SubmitRequest,
    UpstreamError,
)
from providers.kit.simulation import SimulatorSpec
from providers.musicgpt import callbacks, mapping
from providers.musicgpt.catalog import CATALOG, MODELS, MusicGPTOptions, MusicGPTState
from providers.musicgpt.client import ClientSettings, MusicGPTClient

__all__ = ["SIMULATOR", "MusicGPTProvider", "create"]

LYRICS_MAX = 3000  # reference: "lyrics ... max ~3000 chars"
VOICE_MODEL = "v6"  # reference: "voice_id ... forces model v6"


class MusicGPTProvider:
    """Pollable (byId, one call per task) and calls back (one webhook per artefact)."""

    name = "musicgpt"
    catalog = CATALOG
    models = MODELS
    credentials = (Credential("MUSICGPT_API_KEY"),)
    state_type = MusicGPTState
    # byId: 20 / 200 / 500 calls a minute by plan (musicgpt.md); one call per task,
    # whatever the number of its conversions.
    polling = Polling(calls_per_minute=20, cost="per_job")

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.catalog = replace(CATALOG, create_timeout=settings.read_timeout)
        self.base_url = settings.base_url
        self._client = MusicGPTClient(settings)

    @property
    def configured(self) -> bool:
        return bool(self.settings.api_key)

    def check(self, req: SubmitRequest[MusicGPTOptions]) -> None:
        opts = req.options or MusicGPTOptions()
        if not (req.prompt or req.lyrics or req.style):
            raise RequestRejected(
                "missing_parameter", "MusicGPT needs a prompt, lyrics or a style", "prompt"
            )
        if req.lyrics and len(req.lyrics) > LYRICS_MAX:
            raise RequestRejected(
                "invalid_parameter",
                f"MusicGPT accepts at most {LYRICS_MAX} characters of lyrics",
                "lyrics",
            )
        if req.instrumental and req.lyrics:
            raise RequestRejected(
                "invalid_parameter", "an instrumental track cannot have lyrics", "lyrics"
            )
        if req.instrumental and opts.vocal_only:
            raise RequestRejected(
                "invalid_parameter",
                "instrumental and musicgpt.vocal_only exclude each other",
                "musicgpt.vocal_only",
            )
        if opts.voice_id and req.model.native_model != VOICE_MODEL:
            raise RequestRejected(
                "unsupported_parameter",
                f"musicgpt.voice_id forces model {VOICE_MODEL}; use musicgpt/{VOICE_MODEL}",
                "musicgpt.voice_id",
            )

    async def start(self, req: SubmitRequest[MusicGPTOptions]) -> Pending[MusicGPTState]:
        raw = await self._client.create(mapping.encode(mapping.to_native(req)))
        try:
            resp = mapping.decode_create(raw)
        except ValueError as exc:
            raise UpstreamError(str(exc), provider=self.name) from None
        return mapping.from_create(resp, req, time.time())

    async def fetch(self, job: JobRef[MusicGPTState]) -> Snapshot[MusicGPTState]:
        state = job.last.state
        task_id = (state.task_id if state is not None else None) or job.native_id
        if not task_id:  # flagged at create without a task: nothing to ask upstream
            return job.last
        raw = await self._client.by_id(task_id)
        try:
            resp = mapping.decode_by_id(raw)
        except ValueError as exc:
            raise UpstreamError(str(exc), provider=self.name) from None
        return mapping.apply_by_id(job.last, resp, job.format, time.time())

    async def callback(
        self, job: JobRef[MusicGPTState], headers: Mapping[str, str], body: bytes
    ) -> Snapshot[MusicGPTState]:
        hook = callbacks.decode_webhook(body)
        snap = callbacks.apply_webhook(job.last, hook, job.format, time.time())
        task_id = snap.state.task_id if snap.state is not None else None
        if not job.native_id and isinstance(task_id, str):  # reconciles a lost create answer
            snap.native_ids = [task_id]
        return snap

    async def aclose(self) -> None:
        await self._client.aclose()


def create(env: Mapping[str, str]) -> MusicGPTProvider:
    """Build the provider from environment names; no network I/O here."""
    return MusicGPTProvider(ClientSettings.from_env(env))


def _simulator() -> Any:
    from providers.musicgpt.simulator import SimulatorConfig, create_simulator

    return create_simulator(SimulatorConfig(queue_seconds=2.0, progress_seconds=4.0))


SIMULATOR = SimulatorSpec(
    create_app=_simulator,
    env_for=lambda url: {"MUSICGPT_API_KEY": "sim-musicgpt-key", "MUSICGPT_BASE_URL": url},
)
