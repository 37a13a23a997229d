"""Jobs without a native id: when their create counts as lost, and settling them.

A job has no native id while its create is under way (``submitting``), after a create
whose answer was lost (it waits for a callback naming the native job), and, for a
synchronous provider, until its generation worker has finished. None of them is ever
sent again; each ends by a bound:

* A create under way is given up by its own process at ``submit_until`` (the provider's
  ``Catalog.create_timeout`` after it began: the create path enforces it). A record still
  ``submitting`` ``OWNER_MARGIN`` seconds later belongs to a process that died mid-create
  (killed, crashed): its answer is lost for good, and ``owner_gone_at`` says from when.
* A lost answer for which a callback URL was sent (``reconcilable``) waits for that
  callback until ``GATEWAY_UNKNOWN_OUTCOME_SECONDS`` after the job's creation, and never
  ends before its create's process is done with it; with no callback URL nothing can
  reconcile it, and it fails as soon as the process is known gone.
* A synchronous job: ``GATEWAY_UNKNOWN_OUTCOME_SECONDS`` after its last attempt began.

``expiry`` says when a job ends so; ``expire`` fails it ``upstream_outcome_unknown``
(unless reconciled meanwhile). A GET, the background refresher and an Idempotency-Key
replay all go through them, so whichever comes first settles the job the same way.

Usage::

    if lost.in_progress(record, time.time()):       # the create's process may be alive
        ...                                           # 409 request_in_progress
    if time.time() >= lost.expiry(record, settings.unknown_outcome_seconds):
        record = await lost.expire(core, record)      # failed upstream_outcome_unknown
"""

from __future__ import annotations

import time

import structlog

from gateway.jobs.core import JobCore
from gateway.jobs.records import UNKNOWN_OUTCOME
from gateway.store.store import JobRecord
from providers.base import JobError, is_final

log = structlog.get_logger("gateway.jobs.service")

#: Seconds past a create's deadline after which its process is presumed gone: room for
#: writing the outcome after the deadline, and for clock skew between hosts.
OWNER_MARGIN = 10.0
#: A record written before creates had a deadline: the fixed grace it had then.
LEGACY_GRACE = 120.0


def owner_gone_at(record: JobRecord) -> float:
    """When the process that sent ``record``'s create has surely finished with it."""
    if record.submit_until is None:
        return record.created_at + LEGACY_GRACE
    return record.submit_until + OWNER_MARGIN


def in_progress(record: JobRecord, now: float) -> bool:
    """The create is under way in a process that may still be alive."""
    return record.submitting and now < owner_gone_at(record)


def expiry(record: JobRecord, unknown_outcome_seconds: float) -> float:
    """When a job without a native id is given up (see the module docstring)."""
    if record.request is not None:  # a synchronous job: from its last attempt
        return record.refreshed_at + unknown_outcome_seconds
    waited = record.created_at + unknown_outcome_seconds
    if not record.submitting:  # a lost answer, waiting for the callback
        return waited
    gone = owner_gone_at(record)
    return max(waited, gone) if record.reconcilable else gone


def settled(record: JobRecord) -> None:
    """Mark ``record``'s create as no longer under way (in place)."""
    record.submitting = False
    record.submit_until = None
    record.reconcilable = False


async def expire(core: JobCore, record: JobRecord) -> JobRecord:
    """Fail a job whose create never got an answer nor a callback in time."""

    def apply(current: JobRecord) -> JobRecord | None:
        if current.native_id is not None or is_final(current.status):
            return None  # reconciled meanwhile
        if current.request is not None:
            message = _SYNC_LOST
        elif current.submitting:
            message = _OWNER_LOST
        else:
            message = _NEVER_CONFIRMED
        current.status = "failed"
        current.error = JobError(code=UNKNOWN_OUTCOME, message=message)
        settled(current)
        current.updated_at = time.time()
        current.version += 1
        return current

    done = await core.store.update_job(record.id, apply, follow=core.follow())
    if done is None:
        return record
    if is_final(done.record.status) and not is_final(done.before):
        log.warning("create_outcome_expired", job_id=record.id, provider=record.provider)
        await core.changed(done.before, done.record, prior=done.prior)
    return done.record


_SYNC_LOST = (
    "The generation never finished in time (its worker stopped or the queue lost it); "
    "it was not sent again."
)
_OWNER_LOST = (
    "The gateway process sending this job's create stopped before the provider answered; "
    "the provider may or may not have started the job. It was not sent again."
)
_NEVER_CONFIRMED = (
    "The provider never confirmed this job (its create answer was lost and no callback "
    "came); it was not sent again."
)
