"""``Retry-After`` (RFC 9110 §10.2.3) as seconds, one reading for every provider.

Usage::

    wait = retry_after(answer.headers.get("Retry-After"))      # "12" -> 12.0
    wait = retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now=t)  # seconds until then, >= 0
"""

from __future__ import annotations

import email.utils
import time


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Delay-seconds or an HTTP-date, as seconds from ``now`` (never negative); None for
    a missing or unreadable value."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is unreadable
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
