"""RFC 7240 ``Prefer`` on a create: how long the answer may wait for the job's result.

Usage::

    wait, applied = prefer_wait(request.headers.getall("prefer", []))
    # "wait=10" -> (10.0, "wait=10"); "respond-async" -> (0.0, "respond-async");
    # none -> (None, None): the gateway's default (GATEWAY_SYNC_WAIT for a synchronous
    # provider, 0 otherwise)

Preferences are comma-separated ``token[=value]`` with optional ``;parameters``; names are
case-insensitive; unknown ones are ignored (RFC 7240 §2). ``respond-async`` wins over
``wait``. A malformed ``wait`` value is ignored, as the RFC asks of unusable preferences.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_WAIT = 3600.0  # seconds; a longer wait is capped


def prefer_wait(values: Iterable[str]) -> tuple[float | None, str | None]:
    wait: float | None = None
    for value in values:
        for preference in value.split(","):
            token = preference.split(";", 1)[0].strip()
            name, _, raw = token.partition("=")
            name = name.strip().lower()
            if name == "respond-async":
                return 0.0, "respond-async"
            if name == "wait":
                try:
                    seconds = float(raw.strip().strip('"'))
                except ValueError:
                    continue
                if seconds >= 0 and seconds == seconds:  # not NaN
                    wait = min(seconds, MAX_WAIT)
    if wait is None:
        return None, None
    return wait, f"wait={wait:g}"
