"""TemPolor through useapi.net: the ``Provider`` the gateway routes ``tempolor/*`` models to.

Build it from the environment (no network I/O at construction)::

    provider = providers.tempolor.create(os.environ)
    pending = await provider.start(req)         # POST /tempolor/music/{song|instrumental}
    snap = await provider.fetch(job_ref)        # GET /tempolor/music/{id} (+ /download/{id})
    await provider.aclose()

Environment: ``USEAPI_TOKEN`` (the credential; ``configured`` iff set), ``USEAPI_BASE_URL``
(default ``https://api.useapi.net/v1``), and optional ``USEAPI_CONNECT_TIMEOUT`` (5 s),
``USEAPI_READ_TIMEOUT`` (30 s), ``USEAPI_WRITE_TIMEOUT`` (10 s), ``USEAPI_POOL_TIMEOUT``
(5 s), ``USEAPI_DEFAULT_URL_TTL`` (300 s: the lifetime assumed for a download URL whose
``remainSeconds`` is missing or 0).

"Completed means playable": after native status ``30`` the provider fetches the download
URL in the same ``fetch`` (or ``callback``); a 404 from the download endpoint right after
completion means "not ready yet" and the job stays in_progress. Once completed, ``fetch``
only renews download URLs (``Snapshot.refresh_after`` says when), never the status.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import structlog

from providers.base import (
    Credential,
    JobRef,
    Pending,
    Polling,
    ProviderError,
    Snapshot,
    SubmitRequest,
    UpstreamNotFound,
    UpstreamRejected,
)
from providers.kit import Timeouts, seconds, text, timeouts_from
from providers.kit.simulation import SimulatorSpec
from providers.tempolor import mapping, validation
from providers.tempolor.catalog import CATALOG, MODELS, TemPolorOptions
from providers.tempolor.client import DEFAULT_BASE_URL, UseapiClient
from providers.tempolor.schemas import NativeJob, TemPolorState

__all__ = ["SIMULATOR", "TemPolorProvider", "create"]

log = structlog.get_logger(__name__)


class TemPolorProvider:
    """The ``providers.base.Provider`` for TemPolor (useapi.net)."""

    name = "tempolor"
    catalog = CATALOG
    models = MODELS
    credentials = (Credential("USEAPI_TOKEN"),)
    state_type = TemPolorState
    # useapi.net documents no limit on status calls: conservative. ``fetch`` asks for each
    # native job of the gateway job.
    polling = Polling(calls_per_minute=300, cost="per_native_id")

    def __init__(
        self,
        *,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: Timeouts | None = None,
        default_url_ttl: float = mapping.DEFAULT_URL_TTL,
    ) -> None:
        self._token = token
        self._default_ttl = default_url_ttl
        self.base_url = base_url
        self.catalog = replace(CATALOG, create_timeout=(timeout or Timeouts()).read)
        self._client = UseapiClient(token=token, base_url=base_url, timeout=timeout)

    @property
    def configured(self) -> bool:
        return bool(self._token)

    def check(self, req: SubmitRequest[TemPolorOptions]) -> None:
        validation.check(req)

    async def start(self, req: SubmitRequest[TemPolorOptions]) -> Pending[TemPolorState]:
        validation.check(req)
        endpoint, body = mapping.to_native(req)
        raw = await self._client.create(endpoint, mapping.encode(body))
        native_ids = mapping.decode_create(raw)
        log.info("tempolor_submitted", model=req.model.id, native_ids=native_ids)
        return mapping.from_create(native_ids)

    async def fetch(self, job: JobRef[TemPolorState]) -> Snapshot[TemPolorState]:
        jobs = mapping.load_jobs(job.last.state, job.native_ids)
        results = await asyncio.gather(
            *(self._refresh(j, job.format) for j in jobs), return_exceptions=True
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return mapping.to_snapshot([r for r in results if isinstance(r, NativeJob)])

    async def callback(
        self, job: JobRef[TemPolorState], headers: Mapping[str, str], body: bytes
    ) -> Snapshot[TemPolorState]:
        view = mapping.decode_callback(body)
        target = view.job_id or (job.native_ids[0] if len(job.native_ids) == 1 else None)
        if view.replyRef and not view.replyRef.startswith(f"{job.job_id}:"):
            raise ValueError("callback replyRef belongs to another job")
        ids = list(job.native_ids)
        # The create's answer was lost: adopt the native jobs its callbacks name (their
        # replyRef proves they were created for this gateway job).
        adopting = not ids or (job.last.state is not None and job.last.state.adopted)
        if target is not None and target not in ids and adopting and view.replyRef:
            ids.append(target)
        if target not in ids:
            raise ValueError("callback names no native job of this gateway job")
        jobs = mapping.load_jobs(job.last.state, ids)
        i = ids.index(target)
        jobs[i] = mapping.merge_status(jobs[i], view)
        if mapping.needs_download(jobs[i], time.time()):
            try:
                jobs[i] = await self._download(jobs[i], job.format)
            except ProviderError as exc:  # the next fetch tries again
                log.warning("tempolor_callback_download_failed", native_id=target, error=str(exc))
        snap = mapping.to_snapshot(jobs)
        if ids != job.native_ids:
            snap.native_ids = ids
        if snap.state is not None and (ids != job.native_ids or (adopting and job.native_ids)):
            snap.state.adopted = True
        return snap

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _refresh(self, j: NativeJob, file_format: str) -> NativeJob:
        if mapping.needs_status(j):
            j = mapping.merge_status(j, mapping.decode_status(await self._client.status(j.id)))
        if mapping.needs_download(j, time.time()):
            j = await self._download(j, file_format)
        return j

    async def _download(self, j: NativeJob, file_format: str) -> NativeJob:
        try:
            raw = await self._client.download(j.id, file_format)
        except UpstreamNotFound:  # ref: 404 for a few seconds right after COMPLETED
            log.info("tempolor_download_not_ready", native_id=j.id)
            return mapping.apply_download(j, None, file_format, time.time(), self._default_ttl)
        except UpstreamRejected as exc:
            if "not completed" not in exc.message.lower():
                raise
            return mapping.apply_download(j, None, file_format, time.time(), self._default_ttl)
        view = mapping.decode_download(raw)
        return mapping.apply_download(j, view, file_format, time.time(), self._default_ttl)


def create(env: Mapping[str, str]) -> TemPolorProvider:
    """Build the provider from environment names (see the module docstring)."""
    return TemPolorProvider(
        token=text(env, "USEAPI_TOKEN"),
        base_url=text(env, "USEAPI_BASE_URL", DEFAULT_BASE_URL),
        timeout=timeouts_from(env, "USEAPI"),
        default_url_ttl=seconds(env, "USEAPI_DEFAULT_URL_TTL", mapping.DEFAULT_URL_TTL),
    )


def _simulator() -> Any:
    from providers.tempolor.simulator import SimulatorConfig, create_simulator

    return create_simulator(SimulatorConfig(queue_seconds=2.0, generate_seconds=4.0))


SIMULATOR = SimulatorSpec(
    create_app=_simulator,
    env_for=lambda url: {"USEAPI_TOKEN": "sim-useapi-token", "USEAPI_BASE_URL": url + "/v1"},
)
