"""Wait for a condition, with a deadline: never a fixed sleep as synchronisation.

A test that needs something to have happened (a callback arrived, a worker drained its
queue, a server is ready) polls for exactly that, and fails with a clear message when it
does not happen within ``timeout``. The timeout is a hang detector, not a speed target:
it is generous, so that a loaded CI machine passes as surely as an idle laptop.

Usage::

    await eventually(lambda: len(rec.calls) == 3)                # a plain predicate
    await eventually(outbox_is_empty, what="the outbox drained")  # or an async one
    job = await eventually(lambda: store.get_job(job_id), what="the job stored")
    wait_until(lambda: proc.poll() is not None, timeout=30)     # the sync twin

The predicate may return an awaitable (``eventually`` awaits it); the first truthy value
is returned. An exception raised by the predicate (e.g. an ``assert`` inside it) ends
the wait at once. Checks start 10 ms apart and back off to 100 ms; ``interval`` fixes
the pace instead (a poll that records every state it sees, or that costs a request).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NoReturn, TypeVar

__all__ = ["TIMEOUT", "eventually", "wait_until"]

T = TypeVar("T")

TIMEOUT = 30.0  # seconds: far beyond any condition's normal latency, within pytest's 120 s
FIRST_INTERVAL = 0.01  # seconds between two checks at first (doubling up to MAX_INTERVAL)
MAX_INTERVAL = 0.1


def _pace(interval: float | None) -> Iterator[float]:
    if interval is not None:
        yield from itertools.repeat(interval)
    delay = FIRST_INTERVAL
    while True:
        yield delay
        delay = min(delay * 2, MAX_INTERVAL)


def _fail(what: str | None, predicate: Callable[..., Any], timeout: float, last: Any) -> NoReturn:
    name = what or getattr(predicate, "__qualname__", repr(predicate))
    raise AssertionError(f"{name}: not true within {timeout} s (last value: {last!r})")


async def eventually(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = TIMEOUT,
    interval: float | None = None,
    what: str | None = None,
) -> T:
    """Poll ``predicate`` until it returns a truthy value (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    for delay in _pace(interval):
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            _fail(what, predicate, timeout, value)
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = TIMEOUT,
    interval: float | None = None,
    what: str | None = None,
) -> T:
    """``eventually`` for synchronous code (threads, subprocesses, blocking clients)."""
    deadline = time.monotonic() + timeout
    for delay in _pace(interval):
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            _fail(what, predicate, timeout, value)
        time.sleep(delay)
    raise AssertionError("unreachable")
