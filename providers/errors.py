"""The errors a provider raises; ``providers.base`` re-exports them (import from there).

Errors are raised from the ``ProviderError`` tree; the gateway maps each class to one
client-facing answer. ``sent`` says whether the request may have reached the provider: one
that may have is never sent again::

    ProviderError                      (502 upstream_error unless a subclass says otherwise)
     ├── UpstreamRejected              400 upstream_rejected       native 400/422 on create
     ├── UpstreamAuthError             502 upstream_auth_error     native 401/403 (our key)
     ├── UpstreamInsufficientCredits   402 upstream_insufficient_credits  native 402/412
     ├── UpstreamRateLimited           429 upstream_rate_limited   native 429 (+ retry_after)
     ├── UpstreamNotFound              502 upstream_not_found      native 404 on a status call
     ├── UpstreamError                 502 upstream_error          5xx, malformed JSON, reset
     │    └── UpstreamUnavailable      503 upstream_unavailable    provider down for maintenance
     └── UpstreamTimeout               504 upstream_timeout        connect/read timeout

    RequestRejected                    400 (code chosen by the provider) for input the
                                       provider's models cannot honour, raised by ``check``.
"""

from __future__ import annotations

from typing import ClassVar


class ProviderError(Exception):
    """Base of every upstream failure. ``message`` must never contain a credential."""

    code: ClassVar[str] = "upstream_error"
    http_status: ClassVar[int] = 502

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        native_status: int | str | None = None,
        retry_after: float | None = None,
        sent: bool = True,
        reason: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.native_status = native_status  # upstream HTTP status or native status word
        self.retry_after = retry_after  # seconds, for rate limits
        self.sent = sent  # False only when the request provably never left (connect error)
        self.reason = reason  # a finer cause in AI Stats' words (the error's ``reason``)
        self.param = param  # the request field the provider named, when it did


class UpstreamRejected(ProviderError):
    code = "upstream_rejected"
    http_status = 400


class UpstreamAuthError(ProviderError):
    code = "upstream_auth_error"
    http_status = 502


class UpstreamInsufficientCredits(ProviderError):
    code = "upstream_insufficient_credits"
    http_status = 402


class UpstreamRateLimited(ProviderError):
    code = "upstream_rate_limited"
    http_status = 429


class UpstreamNotFound(ProviderError):
    code = "upstream_not_found"
    http_status = 502


class UpstreamError(ProviderError):
    code = "upstream_error"
    http_status = 502


class UpstreamUnavailable(UpstreamError):
    """The provider says it is down for maintenance: transient, like a 5xx, but the
    client is told 503 (try again later) rather than 502."""

    code = "upstream_unavailable"
    http_status = 503


class UpstreamTimeout(ProviderError):
    code = "upstream_timeout"
    http_status = 504


def error_for_status(
    status: int, message: str, *, provider: str, retry_after: float | None = None
) -> ProviderError:
    """Map an upstream HTTP status to the ProviderError class of DESIGN.md's table."""
    if status in (400, 409, 422):
        return UpstreamRejected(message, provider=provider, native_status=status)
    if status in (401, 403):
        return UpstreamAuthError(message, provider=provider, native_status=status)
    if status in (402, 412):
        return UpstreamInsufficientCredits(message, provider=provider, native_status=status)
    if status == 429:
        return UpstreamRateLimited(
            message, provider=provider, native_status=status, retry_after=retry_after
        )
    if status == 404:
        return UpstreamNotFound(message, provider=provider, native_status=status)
    return UpstreamError(message, provider=provider, native_status=status)


class RequestRejected(Exception):
    """Input a provider's model cannot honour; becomes a 400 with ``code`` and ``param``."""

    def __init__(
        self, code: str, message: str, param: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.reason = reason  # a finer cause in AI Stats' words, e.g. a validation rule
