"""sunoapi.org's errors: a request-level ``code`` (in the body, usually inside an HTTP 200;
the codes as sunoapi.org's docs index summarizes them, *codes*) -> the ProviderError class
the gateway maps to an answer (``providers/base.py``)::

    400 invalid parameters, 413 theme or prompt too long   UpstreamRejected             400
    401 unauthorized (our key)                              UpstreamAuthError            502
    429 insufficient credits (not a rate limit!)            UpstreamInsufficientCredits  402
    405 rate limit exceeded, 430 call frequency too high    UpstreamRateLimited          429
    455 system maintenance                                  UpstreamUnavailable          503
    404 (on record-info: no such task)                      UpstreamNotFound             502
    500 and anything else                                   UpstreamError                502
"""

from __future__ import annotations

from typing import Any

import msgspec

from providers.base import (
    ProviderError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamInsufficientCredits,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from providers.suno.catalog import PROVIDER
from providers.suno.coerce import as_code, as_str
from providers.suno.schemas import Envelope

_envelope = msgspec.json.Decoder(Envelope)

#: Request-level ``code`` (in the body, usually inside an HTTP 200; *codes*) -> error.
CODE_ERRORS: dict[int, type[ProviderError]] = {
    400: UpstreamRejected,  # invalid parameters
    401: UpstreamAuthError,  # unauthorized: our key
    403: UpstreamAuthError,
    404: UpstreamNotFound,  # invalid method or path (on record-info: no such task)
    405: UpstreamRateLimited,  # rate limit exceeded
    409: UpstreamRejected,
    413: UpstreamRejected,  # theme or prompt too long
    422: UpstreamRejected,
    429: UpstreamInsufficientCredits,  # insufficient credits (not a rate limit!)
    430: UpstreamRateLimited,  # call frequency too high
    455: UpstreamUnavailable,  # system maintenance
}
RATE_LIMIT_RETRY = 10.0  # *generate*: "20 requests every 10 seconds"; no Retry-After seen


def body_code(raw: bytes) -> int | None:
    """The envelope's ``code`` when it says error (not 200), else None."""
    try:
        code = as_code(_envelope.decode(raw).code)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return code if code is not None and code != 200 else None


def error_message(raw: bytes) -> str | None:
    """The envelope's ``msg`` (300 characters)."""
    try:
        view = _envelope.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    text = as_str(view.msg)
    return text[:300] if text else None


def class_for(code: int) -> type[ProviderError]:
    """The ProviderError class for a request-level code (or an HTTP status)."""
    if code in CODE_ERRORS:
        return CODE_ERRORS[code]
    if 400 <= code < 500:
        return UpstreamRejected
    return UpstreamError  # 5xx and anything else


def error_class(status: int, body: bytes) -> type[ProviderError]:
    """For a non-2xx answer: the body's ``code`` decides when it has one (429 there is
    credits), else the HTTP status (an HTTP 429 without a body code is a rate limit)."""
    code = body_code(body)
    if code is not None:
        return class_for(code)
    return UpstreamRateLimited if status == 429 else class_for(status)


def malformed(what: str) -> UpstreamError:
    return UpstreamError(f"sunoapi.org {what} answer is not the expected JSON", provider=PROVIDER)


def raise_for_code(what: str, code: Any, msg: Any) -> None:
    """Raise the error a request-level ``code`` other than 200 stands for."""
    n = as_code(code)
    if n is not None and n != 200:
        text = as_str(msg) or "error"
        cls = class_for(n)
        wait = RATE_LIMIT_RETRY if issubclass(cls, UpstreamRateLimited) else None
        raise cls(
            f"sunoapi.org {what} answered code {n}: {text[:300]}",
            provider=PROVIDER,
            native_status=n,
            retry_after=wait,
        )
