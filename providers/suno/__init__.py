"""Suno through sunoapi.org: the ``Provider`` the gateway routes ``suno/*`` models to.

Flow (sunoapi.org's docs, https://docs.sunoapi.org)::

    start    POST {SUNO_BASE_URL}/api/v1/generate                -> taskId (two songs)
    fetch    GET  {SUNO_BASE_URL}/api/v1/generate/record-info?taskId=...
    callback POST to callBackUrl per stage: text, first, complete (or error)

Environment: ``SUNO_API_KEY`` (the credential, sent as ``Authorization: Bearer``;
``configured`` iff set), ``SUNO_BASE_URL`` (default ``https://api.sunoapi.org``), and
optional ``SUNO_CONNECT_TIMEOUT`` (5 s), ``SUNO_READ_TIMEOUT`` (30 s),
``SUNO_WRITE_TIMEOUT`` (10 s), ``SUNO_POOL_TIMEOUT`` (5 s), ``SUNO_MAX_CONNECTIONS`` (50).

Without ``GATEWAY_PUBLIC_URL`` the gateway gives no callback URL, but sunoapi.org
requires ``callBackUrl``: the provider sends an inert placeholder on the reserved
``.invalid`` domain, polls record-info, and treats ``CALLBACK_EXCEPTION`` (the
placeholder's callbacks cannot be delivered) as no failure of a job whose audio exists
(``/ready`` says so: ``Catalog.without_callbacks``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import structlog

from providers.base import Credential, JobRef, Pending, Polling, Snapshot, SubmitRequest
from providers.kit import Timeouts, count, text, timeouts_from
from providers.kit.simulation import SimulatorSpec
from providers.suno import callbacks, mapping, validation
from providers.suno.catalog import CATALOG, MODELS, PROVIDER, SunoOptions
from providers.suno.client import DEFAULT_BASE_URL, SunoClient
from providers.suno.schemas import SunoState

__all__ = ["SIMULATOR", "SunoProvider", "create"]

log = structlog.get_logger(__name__)


class SunoProvider:
    """Pollable (record-info, one call per task) and calls back (three stages)."""

    name = PROVIDER
    catalog = CATALOG
    models = MODELS
    credentials = (Credential("SUNO_API_KEY"),)
    state_type = SunoState
    # *generate*: "Concurrency limit: 20 requests every 10 seconds" (120 a minute), the
    # only account-wide limit sunoapi.org documents; record-info documents none of its
    # own, so status calls are held to it too. One call per task (both songs).
    polling = Polling(calls_per_minute=120, cost="per_job")

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: Timeouts | None = None,
        max_connections: int = 50,
    ) -> None:
        self._api_key = api_key
        self.base_url = base_url
        # a create's whole deadline is the read timeout (the longest it waits for an answer)
        self.catalog = replace(CATALOG, create_timeout=(timeout or Timeouts()).read)
        self._client = SunoClient(
            api_key=api_key, base_url=base_url, timeout=timeout, max_connections=max_connections
        )

    @property
    def configured(self) -> bool:
        return bool(self._api_key)

    def check(self, req: SubmitRequest[SunoOptions]) -> None:
        validation.check(req)

    async def start(self, req: SubmitRequest[SunoOptions]) -> Pending[SunoState]:
        validation.check(req)
        raw = await self._client.create(mapping.encode(mapping.to_native(req)))
        task_id = mapping.decode_create(raw)
        log.info("suno_submitted", model=req.model.id, task_id=task_id)
        return mapping.from_create(task_id, req, time.time())

    async def fetch(self, job: JobRef[SunoState]) -> Snapshot[SunoState]:
        state = job.last.state
        task_id = (state.task_id if state is not None else None) or job.native_id
        if not task_id:
            return job.last  # the create's answer was lost: only a callback can tell
        view = mapping.decode_record(await self._client.record_info(task_id))
        return mapping.apply_record(job.last, view, time.time())

    async def callback(
        self, job: JobRef[SunoState], headers: Mapping[str, str], body: bytes
    ) -> Snapshot[SunoState]:
        view = callbacks.decode_callback(body)
        task = callbacks.callback_task(view)
        if job.native_id and task and task != job.native_id:
            raise ValueError("callback is for another Suno task")
        snap = callbacks.apply_callback(job.last, view, time.time())
        if not job.native_id and task:  # reconciles a create whose answer was lost
            snap.native_ids = [task]
        return snap

    async def aclose(self) -> None:
        await self._client.aclose()


def create(env: Mapping[str, str]) -> SunoProvider:
    """Build the provider from environment names (see the module docstring)."""
    return SunoProvider(
        api_key=text(env, "SUNO_API_KEY"),
        base_url=text(env, "SUNO_BASE_URL", DEFAULT_BASE_URL).rstrip("/"),
        timeout=timeouts_from(env, "SUNO"),
        max_connections=count(env, "SUNO_MAX_CONNECTIONS", 50),
    )


def _simulator() -> Any:
    from providers.suno.simulator import SimulatorConfig, create_simulator

    return create_simulator(
        SimulatorConfig(text_seconds=1.0, first_seconds=2.5, complete_seconds=4.0)
    )


SIMULATOR = SimulatorSpec(
    create_app=_simulator,
    env_for=lambda url: {"SUNO_API_KEY": "sim-suno-key", "SUNO_BASE_URL": url},
)
