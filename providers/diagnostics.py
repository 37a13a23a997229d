"""Diagnostics: the upstream HTTP exchanges of one create, captured when a client asks.

Part of the contract beside ``providers.base``. The gateway opens a capture around a
provider's ``start``; the shared transport (``providers.kit.upstream``) records every
request it sends there, scrubbed of the provider's credential, with its answer. Outside a
capture nothing is recorded and recording costs one context-variable read::

    with capture() as exchanges:           # the gateway, around ``provider.start``
        finished = await provider.start(req)
    exchanges[0].request.url               # what was sent, exactly (secrets redacted)

    record(Exchange(...))                  # the transport, after each call
    capturing()                            # whether anyone listens (skip the work if not)

Bodies are kept as JSON (``msgspec.Raw``): a JSON body as it was sent, any other text as
a JSON string, binary content (audio) as a short description, never the bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import msgspec

BODY_LIMIT = 64 * 1024  # bytes of a body kept (a longer one is described, not copied)


class SentRequest(msgspec.Struct, kw_only=True):
    """One request as the provider received it (credentials redacted)."""

    method: str
    url: str
    body: msgspec.Raw | None = None


class Answer(msgspec.Struct, kw_only=True):
    """The provider's answer to it (``status`` None: no answer arrived)."""

    status: int | None
    content_type: str | None = None
    body: msgspec.Raw | None = None


class Exchange(msgspec.Struct, kw_only=True):
    op: str
    request: SentRequest
    response: Answer


_EXCHANGES: ContextVar[list[Exchange] | None] = ContextVar("upstream_exchanges", default=None)


@contextlib.contextmanager
def capture() -> Iterator[list[Exchange]]:
    """Collect the exchanges made inside the block (this task and the tasks it starts)."""
    sink: list[Exchange] = []
    token = _EXCHANGES.set(sink)
    try:
        yield sink
    finally:
        _EXCHANGES.reset(token)


def capturing() -> bool:
    return _EXCHANGES.get() is not None


def record(exchange: Exchange) -> None:
    sink = _EXCHANGES.get()
    if sink is not None:
        sink.append(exchange)


def body_json(raw: bytes | None, content_type: str | None = None) -> msgspec.Raw | None:
    """A body as JSON: itself when it is JSON, a string when it is text, else a note."""
    if not raw:
        return None
    kind = (content_type or "").split(";")[0].strip().lower()
    if len(raw) > BODY_LIMIT:
        return _note(f"{len(raw)} bytes of {kind or 'content'} (not echoed)")
    if not kind or "json" in kind:
        try:
            msgspec.json.decode(raw)
        except msgspec.DecodeError:
            pass
        else:
            return msgspec.Raw(raw)
    if not kind or kind.startswith("text/") or "json" in kind or "form" in kind:
        try:
            return msgspec.Raw(msgspec.json.encode(raw.decode("utf-8")))
        except UnicodeDecodeError:
            pass
    return _note(f"{len(raw)} bytes of {kind or 'binary content'} (not echoed)")


def streamed_note(content_type: str | None) -> msgspec.Raw:
    """What stands for a body streamed on (the audio itself): never the bytes."""
    kind = (content_type or "content").split(";")[0].strip()
    return _note(f"{kind}, streamed into the artefact store (not echoed)")


def _note(text: str) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(f"<{text}>"))
