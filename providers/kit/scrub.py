"""Scrubbing a provider's credential out of upstream text before it goes anywhere.

Some APIs echo the key they received in their error bodies. Provider clients pass every
upstream body through ``scrub_bytes`` before decoding or shortening it, and every message
through ``scrub``, so a key can reach neither a client nor a log.

Usage::

    raw = scrub_bytes(response.content, self._key)
    message = scrub(f"upstream said: {text}", self._key)
"""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import msgspec

REDACTED = "[redacted]"


def secret_forms(secret: str) -> list[str]:
    """``secret`` as an upstream may echo it: raw, JSON-escaped (also with ``\\/``) and
    URL-encoded; longest first."""
    as_json = msgspec.json.encode(secret).decode()[1:-1]
    forms = {
        secret,
        as_json,
        as_json.replace("/", "\\/"),
        quote(secret, safe=""),
        quote_plus(secret),
    }
    return sorted(forms, key=len, reverse=True)


def scrub(text: str, secret: str | None) -> str:
    """``text`` with every form of ``secret`` replaced by ``[redacted]``."""
    for form in secret_forms(secret) if secret else ():
        text = text.replace(form, REDACTED)
    return text


def scrub_bytes(raw: bytes, secret: str | None) -> bytes:
    """``scrub`` for a raw upstream body, before it is decoded or cut short (a key cut in
    half by a length limit would no longer match)."""
    for form in secret_forms(secret) if secret else ():
        raw = raw.replace(form.encode(), REDACTED.encode())
    return raw
