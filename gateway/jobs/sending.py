"""The upstream create of an asynchronous job: sent once, over by its deadline.

``send_create`` calls the provider's ``start``. It tries again (``CREATE_RETRIES`` times,
full-jitter backoff, through stamina) only when the create provably never left (a connect
failure), the breaker allows and the wait ends before the deadline: a create that may
have reached the provider is never sent twice. The first attempt goes straight out
(stamina's machinery costs ~0.2 ms).

The deadline (epoch seconds: the job's ``submit_until``, the provider's ``create_timeout``
after the create began) holds whatever the provider's own timeouts: a create still
running then is an ``UpstreamTimeout`` that may have been sent (its outcome unknown). So a
live process is always done with a create by its deadline, which is what lets another
process take a job still marked under way well past it for one whose sender died
(``gateway/jobs/lost.py``).

Usage::

    started = await send_create(metrics, "musicgpt", provider, submit, breaker, deadline)
    pending = await as_pending(started)
"""

from __future__ import annotations

import asyncio
import time

import stamina

from gateway.infra.metrics import Metrics
from gateway.infra.resilience import CircuitBreaker, backoff, is_transient
from providers.base import (
    Finished,
    JobError,
    Pending,
    Provider,
    ProviderError,
    Snapshot,
    SubmitRequest,
    UpstreamTimeout,
)

CREATE_RETRIES = 2  # extra attempts for a create that provably never left (connect failure)


async def send_create(
    metrics: Metrics,
    name: str,
    provider: Provider,
    submit: SubmitRequest,
    breaker: CircuitBreaker,
    deadline: float,
) -> Pending | Finished:
    """The upstream create (module docstring); raises ``ProviderError``."""
    try:
        return await _once(metrics, name, provider, submit, breaker, deadline)
    except ProviderError as exc:
        wait = backoff(0, base=0.2)
        if exc.sent or not is_transient(exc) or not breaker.allow():
            raise
        if time.time() + wait >= deadline:
            raise
    await asyncio.sleep(wait)
    tries = 1

    def again(exc: Exception) -> bool | float:
        if not isinstance(exc, ProviderError) or exc.sent or not is_transient(exc):
            return False
        if tries > CREATE_RETRIES or not breaker.allow():
            return False
        wait = backoff(tries - 1, base=0.2)
        return wait if time.time() + wait < deadline else False

    retrying = stamina.retry_context(on=again, attempts=CREATE_RETRIES, timeout=None)
    async for attempt in retrying:
        with attempt:
            tries = attempt.num + 1
            return await _once(metrics, name, provider, submit, breaker, deadline)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _once(
    metrics: Metrics,
    name: str,
    provider: Provider,
    submit: SubmitRequest,
    breaker: CircuitBreaker,
    deadline: float,
) -> Pending | Finished:
    try:
        with metrics.upstream(name, "submit"):
            try:
                async with asyncio.timeout(deadline - time.time()):
                    started = await provider.start(submit)
            except TimeoutError:  # the deadline, whatever the provider's own timeouts
                raise UpstreamTimeout(
                    f"No answer to the create within {provider.catalog.create_timeout:g} s",
                    provider=name,
                    sent=True,
                ) from None
    except ProviderError as exc:
        breaker.record(exc)
        raise
    breaker.record(None)
    return started


async def as_pending(started: Pending | Finished) -> Pending:
    """``start``'s answer as native ids and a snapshot: a ``Finished`` one is a completed
    snapshot of its artefacts. Artefacts given as bytes need the artefact store (a
    synchronous provider runs on the generation worker, which stores them): here they
    are an upstream error, never a job that completes without audio."""
    if isinstance(started, Pending):
        return started
    native_ids = [started.native_id] if started.native_id else []
    snapshot = Snapshot(status="completed", progress=100, outputs=started.artefacts)
    if started.streams:
        for stream in started.streams.values():  # never read: release the connections
            await stream.aclose()
        error = JobError(
            code="artefact_store_unavailable",
            message="The provider answered with the audio itself; storing it needs the "
            "generation worker's artefact store.",
        )
        snapshot = Snapshot(status="failed", error=error)
    return Pending(native_id=started.native_id or "", native_ids=native_ids, snapshot=snapshot)
