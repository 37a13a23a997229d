"""Starting a job: validate and route, claim the Idempotency-Key, submit, and settle a
failed or lost create. One part of ``JobService`` (``gateway/jobs/service.py``).

Usage::

    record, replayed = await service.create(key, req, idempotency_key="order-42")

The record is written before the upstream create and completed after it. A failed create
is stored failed and replayed as such for its ``Idempotency-Key``. A create whose answer
was lost is never re-sent: it waits for the provider's callback (reconciliation) and
fails with ``upstream_outcome_unknown`` after ``GATEWAY_UNKNOWN_OUTCOME_SECONDS``.

A create has a deadline: the provider's ``create_timeout`` after it began, stored with the
record (``submit_until``) and enforced by ``send_create`` (``gateway/jobs/sending.py``: a
create still running then is an upstream timeout, its outcome unknown). A replay of its
``Idempotency-Key`` answers 409 ``request_in_progress`` only while the create's process
may still be alive; once the deadline and a margin have passed, that process is gone and
the replay settles the job by the rules of ``gateway/jobs/lost.py`` and answers it.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

import msgspec
import structlog

from gateway.infra.errors import (
    Conflict,
    GatewayError,
    ServiceUnavailable,
    TooManyRequests,
)
from gateway.infra.log import bind
from gateway.infra.resilience import CircuitBreaker
from gateway.jobs import lost
from gateway.jobs.core import JobCore
from gateway.jobs.generate import Generations
from gateway.jobs.policy import Plan, make_plan
from gateway.jobs.records import (
    UNKNOWN_OUTCOME,
    fingerprint,
    merge_snapshot,
    native_format,
    new_job_id,
    outcome_unknown,
)
from gateway.jobs.requests import debug_info, dump_request
from gateway.jobs.sending import as_pending, send_create
from gateway.notify.ssrf import check_webhook_url
from gateway.store.keys import KeyRecord
from gateway.store.limits import SLOT_MAX_AGE
from gateway.store.store import IdempotencyEntry, JobRecord
from providers import diagnostics
from providers.base import (
    Callback,
    JobError,
    Provider,
    ProviderError,
    SubmitRequest,
    UpstreamRateLimited,
)

log = structlog.get_logger("gateway.jobs.service")


class Creates:
    """Starting jobs: validation and routing, the Idempotency-Key, the upstream create."""

    def __init__(self, core: JobCore, generations: Generations | None = None) -> None:
        self.generations = generations
        self.core = core
        self.store = core.store
        self.settings = core.settings
        self.metrics = core.metrics
        self.providers = core.providers
        self.catalog = core.catalog
        self.breakers = core.breakers
        self.limits = core.limits

    # ---------------------------------------------------------------- validation

    def resolve(self, req: Any) -> Plan:
        """Route by model and apply the parameter policy (``policy.py``)."""
        return make_plan(
            req,
            self.catalog,
            self.providers,
            require=self.settings.require_parameters,
            converts=self.generations is not None and self.generations.converts,
        )

    # -------------------------------------------------------------------- create

    async def create(
        self,
        key: KeyRecord,
        req: Any,
        idempotency_key: str | None = None,
        origin: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """Start a job. Returns (record, replayed): ``replayed`` when the
        ``Idempotency-Key`` was seen before with the same body (no upstream call)."""
        plan = self.resolve(req)
        spec, provider, submit = plan.spec, plan.provider, plan.submit
        bind(model=spec.id, provider=spec.provider)
        if not provider.configured:
            raise ServiceUnavailable(
                f"Provider {spec.provider} is not configured on this gateway.",
                code="provider_not_configured",
                param="model",
            )
        if req.webhook_url is not None:
            await check_webhook_url(
                req.webhook_url, allow_private=self.settings.webhook_allow_private
            )
        owner = key.id
        digest = fingerprint(req) if idempotency_key is not None else ""
        breaker = self.breakers[spec.provider]
        if not breaker.allow():
            if idempotency_key is not None:  # a replay needs no provider
                entry = await self.store.indexes.get_idempotency(owner, idempotency_key)
                if entry is not None:
                    return await self._replay(owner, entry, digest, idempotency_key), True
            self._unavailable(spec.provider)
        job_id = new_job_id()
        limit = (
            key.max_inflight if key.max_inflight is not None else self.settings.max_inflight_jobs
        )
        now = time.time()
        token = secrets.token_urlsafe(24)
        if self.settings.public_url:
            url = f"{self.settings.public_url}/v1/callbacks/{spec.provider}/{job_id}/{token}"
            submit = msgspec.structs.replace(
                submit, callback=Callback(url=url, job_id=job_id, token=token)
            )
        record = JobRecord(
            id=job_id,
            owner=owner,
            provider=spec.provider,
            model=spec.id,
            status="queued",
            created_at=now,
            updated_at=now,
            format=plan.format,  # what the client gets (the sink converts to it)
            metadata=req.metadata,
            webhook_url=req.webhook_url,
            callback_token=token,
            refreshed_at=now,
            submitting=not provider.catalog.synchronous,
            request=dump_request(submit, plan.diagnostics)
            if provider.catalog.synchronous
            else None,
            origin=origin,
            notices=plan.notices,
        )
        if record.submitting and plan.format != native_format(plan.format, spec.formats):
            record.conversion = "wanted"  # completed once converted (``mirror.py``)
        if record.submitting:  # the create's deadline; a replay after it settles the job
            record.submit_until = now + provider.catalog.create_timeout
            record.reconcilable = submit.callback is not None
        # The record exists before the upstream call: no job is ever lost in between. One
        # round trip, all or nothing: the record, its place on the refresh schedule (so
        # that even if this process dies mid-create, the background refresher settles the
        # job once the create's deadline has passed instead of leaving it queued forever),
        # the owner's in-flight slot and the Idempotency-Key.
        try:
            opened = await self.store.open_job(
                record,
                due=lost.expiry(record, self.settings.unknown_outcome_seconds),
                slot=(self.limits.slot_key(owner), limit, SLOT_MAX_AGE) if limit > 0 else None,
                idempotency=None
                if idempotency_key is None
                else (
                    idempotency_key,
                    IdempotencyEntry(fingerprint=digest, job_id=job_id),
                    self.settings.idempotency_seconds,
                ),
            )
        except BaseException:
            breaker.release_trial()
            raise
        if not opened.created:
            breaker.release_trial()
            if opened.existing is not None:  # seen before, or a concurrent request won
                return await self._replay(owner, opened.existing, digest, idempotency_key), True
            raise TooManyRequests(
                f"This key already has {limit} jobs queued or in progress; wait for one to finish.",
                code="too_many_jobs",
                retry_after=5,
            )
        bind(job_id=job_id)
        self.metrics.jobs_created.labels(spec.provider).inc()
        if provider.catalog.synchronous:  # the generation worker runs it, off the request
            breaker.release_trial()
            return await self._enqueue(record), False
        if not plan.diagnostics.wanted:
            done = await self._submit(
                record, opened.raw, provider, submit, breaker, idempotency_key
            )
            return done, False
        with diagnostics.capture() as exchanges:  # what the client asked to see
            try:
                done = await self._submit(
                    record, opened.raw, provider, submit, breaker, idempotency_key
                )
            except GatewayError as exc:  # a failed create's answer shows the exchange too
                exc.debug = debug_info(exchanges, plan.diagnostics, token)
                raise
        debug = debug_info(exchanges, plan.diagnostics, token)
        return msgspec.structs.replace(done, debug=debug), False  # this answer only

    async def _enqueue(self, record: JobRecord) -> JobRecord:
        """Hand a synchronous job to the generation worker. If the queue cannot take it,
        nothing was sent: the job fails and the create answers 503."""
        try:
            if self.generations is None:
                raise RuntimeError("no generation worker in this process")
            await self.generations.enqueue(record.id)
        except Exception as exc:
            log.error("generation_enqueue_failed", job_id=record.id, error=type(exc).__name__)
            error = JobError(code="worker_unavailable", message="The generation queue is down.")
            failed = msgspec.structs.replace(
                record,
                status="failed",
                error=error,
                answer_status=503,
                submitting=False,
                updated_at=time.time(),
                version=record.version + 1,
            )
            await self.store.put_job(failed, zsets=self.core.follow()(record.status, failed))
            await self.core.changed(record.status, failed, notify=False)
            raise _replayed_error(failed) from exc
        return record

    async def _submit(
        self,
        record: JobRecord,
        raw: bytes | None,
        provider: Provider,
        submit: SubmitRequest,
        breaker: CircuitBreaker,
        idempotency_key: str | None,
    ) -> JobRecord:
        """The upstream create, then the record completed with its answer: a
        compare-and-set against ``raw``, the bytes ``open_job`` stored (no read; a
        callback that came first makes it retry on the current bytes)."""
        began = time.perf_counter()
        deadline = record.submit_until or time.time() + provider.catalog.create_timeout
        try:
            started = await send_create(
                self.metrics, record.provider, provider, submit, breaker, deadline
            )
            pending = await as_pending(started)
        except ProviderError as exc:
            can_reconcile = submit.callback is not None
            return await self._create_failed(record, raw, exc, can_reconcile, idempotency_key)
        finally:
            bind(upstream_ms=round((time.perf_counter() - began) * 1000, 2))

        def apply(current: JobRecord) -> JobRecord:
            current.native_id = pending.native_id or None
            current.native_ids = pending.native_ids
            lost.settled(current)
            return merge_snapshot(current, pending.snapshot, time.time())

        done = await self.store.update_job(record.id, apply, follow=self.core.follow(), raw=raw)
        assert done is not None
        if provider.catalog.account_callbacks:  # routes its account-level callbacks
            await self.store.indexes.index_native(record.provider, pending.native_ids, record.id)
        await self.core.changed(done.before, done.record, prior=done.prior)
        return done.record

    async def _create_failed(
        self,
        record: JobRecord,
        raw: bytes | None,
        exc: ProviderError,
        can_reconcile: bool,
        idempotency_key: str | None,
    ) -> JobRecord:
        """Store the failed create; answer it (raise) unless the provider may still call
        back with the job (its answer was lost and a callback URL was sent).

        The failure is replayed for its Idempotency-Key, except when it certainly created
        nothing upstream and a later try may succeed (429, or the request never left):
        then the key is released, so the client's retry after Retry-After is a new try."""
        if outcome_unknown(exc):
            log.warning(
                "create_outcome_unknown",
                job_id=record.id,
                provider=record.provider,
                error=exc.code,
                reconcile=can_reconcile,
            )
            if can_reconcile:  # wait for the callback, bounded by unknown_outcome_seconds
                # (on the refresh schedule since open_job, which refresh_due moves on to it)
                waiting = await self.store.update_job(record.id, _submitted, raw=raw)
                return waiting.record if waiting is not None else record
            code, status = UNKNOWN_OUTCOME, 504
            message = (
                f"{exc.message}. The provider may or may not have started the job; it was "
                "not sent again."
            )
        else:
            code, status, message = exc.code, exc.http_status, exc.message
        failed = msgspec.structs.replace(
            record,
            status="failed",
            error=JobError(code=code, message=message),
            answer_status=status,
            submitting=False,
            submit_until=None,
            reconcilable=False,
            updated_at=time.time(),
            version=record.version + 1,
        )
        await self.store.put_job(failed, zsets=self.core.follow()(record.status, failed))
        await self.core.changed(record.status, failed, notify=False)  # the answer says it all
        if idempotency_key is not None and (isinstance(exc, UpstreamRateLimited) or not exc.sent):
            await self.store.indexes.release_idempotency(record.owner, idempotency_key)
        error = _replayed_error(failed)
        error.param, error.reason = exc.param, exc.reason  # the provider's finer cause
        if exc.retry_after is not None:
            error.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        raise error from exc

    async def _replay(
        self, owner: str, entry: IdempotencyEntry, digest: str, idempotency_key: str | None
    ) -> JobRecord:
        if not hmac.compare_digest(entry.fingerprint, digest):
            raise Conflict(
                "This Idempotency-Key was already used with a different request body. "
                "Use a new key for a new request.",
                param="Idempotency-Key",
            )
        record = await self.store.get_job(entry.job_id)
        if record is None or record.owner != owner:
            # A job's record is written before its key is bound, so a key whose record is
            # missing was bound by a create undone before any upstream call (its admission
            # ran, its answer was lost: a Redis failover) or outlived its job. Nothing was
            # sent for it: the key is unbound (only if unchanged) and the retry starts anew.
            if idempotency_key is not None:
                await self.store.indexes.release_orphan(owner, idempotency_key, entry)
            raise Conflict(
                "The request with this Idempotency-Key was not started; retry it.",
                code="request_in_progress",
                param="Idempotency-Key",
                headers={"Retry-After": "1"},
            )
        if record.submitting:
            now = time.time()
            if lost.in_progress(record, now):
                raise Conflict(
                    "A request with this Idempotency-Key is still in progress; retry shortly.",
                    code="request_in_progress",
                    param="Idempotency-Key",
                    headers={"Retry-After": "1"},
                )
            # Past its deadline: the process that sent the create is gone (a live one has
            # its answer or gave up by then). Settled by the usual rules, never re-sent.
            if now >= lost.expiry(record, self.settings.unknown_outcome_seconds):
                record = await lost.expire(self.core, record)
        bind(job_id=record.id, idempotent_replay=True)
        if record.answer_status is not None:
            raise _replayed_error(record)
        return record

    def _unavailable(self, provider: str) -> None:
        wait = self.breakers[provider].retry_after()
        raise ServiceUnavailable(
            f"Provider {provider} is failing; new jobs are refused for about "
            f"{max(1, round(wait))} s while it recovers.",
            code="provider_unavailable",
            param="model",
            headers={"Retry-After": str(max(1, round(wait)))},
        )


def _submitted(record: JobRecord) -> JobRecord:
    lost.settled(record)
    record.version += 1
    return record


def _replayed_error(record: JobRecord) -> GatewayError:
    """The answer a failed create gave, rebuilt from its record (same status and code)."""
    error = record.error or JobError(code="upstream_error", message="The create failed.")
    status = record.answer_status or 502
    return GatewayError(
        f"{record.provider}: {error.message}",
        code=error.code,
        status_code=status,
        headers={"Retry-After": "10"} if status in (429, 503) else None,
    )
