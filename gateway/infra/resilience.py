"""Fault tolerance for upstream calls: which failures are transient, jittered backoff, and
a per-provider circuit breaker.

Usage::

    breaker = CircuitBreaker("musicgpt", failures=5, cooldown=30.0)
    if not breaker.allow():
        raise ...                       # fail fast: 503 provider_unavailable
    try:
        result = await call()
    except ProviderError as exc:
        breaker.record(exc)             # only transient failures count
        raise
    breaker.record(None)

The breaker is per process: each replica learns on its own that a provider is down,
which needs no coordination and recovers just as fast (one trial call per cooldown).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Literal

from providers.base import ProviderError, UpstreamError, UpstreamTimeout

CircuitState = Literal["closed", "open", "half_open"]


def is_transient(exc: ProviderError) -> bool:
    """The provider itself is in trouble (5xx, malformed answer, reset, timeout).

    Answers about the request or our account (4xx: rejected, auth, credits, not found,
    rate limited) are not: retrying them changes nothing, and they say the provider is up.
    """
    return isinstance(exc, (UpstreamError, UpstreamTimeout))


def backoff(attempt: int, base: float = 0.1, cap: float = 1.0) -> float:
    """Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * (2**attempt)))


class CircuitBreaker:
    """closed → (``failures`` consecutive transient failures) → open → (``cooldown``
    seconds) → half_open: one trial call; success closes, failure opens again."""

    def __init__(
        self,
        name: str,
        *,
        failures: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = failures
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_at: float | None = None

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self.cooldown:
            return "open"
        return "half_open"

    def allow(self) -> bool:
        """May a call go upstream now? In half_open, only one trial at a time."""
        if self.threshold <= 0:
            return True
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        now = self._clock()
        if self._trial_at is not None and now - self._trial_at < self.cooldown:
            return False  # a trial is under way (a lost trial is forgotten after a cooldown)
        self._trial_at = now
        return True

    def release_trial(self) -> None:
        """The call ``allow`` admitted was not made after all: free the trial slot."""
        self._trial_at = None

    def retry_after(self) -> float:
        """Seconds until the next trial may go through (0 when closed)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def record(self, exc: ProviderError | None) -> None:
        """Record a call's outcome: ``None`` (success) or the error it raised."""
        if exc is None or not is_transient(exc):
            self._failures = 0
            self._opened_at = None
            self._trial_at = None
            return
        self._failures += 1
        if self._opened_at is not None or self._failures >= self.threshold > 0:
            self._opened_at = self._clock()  # (re)open: a failed trial restarts the cooldown
            self._trial_at = None
