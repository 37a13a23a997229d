"""One provider API over HTTP: a call answers a 2xx ``Answer`` or raises from the
``ProviderError`` tree, the same way for every provider.

Usage::

    api = Upstream(
        provider="musicgpt", label="MusicGPT",
        http=UpstreamHTTP(base, headers={"Authorization": key}), secret=key,
        error_text=mapping.error_message,           # the provider's own error bodies
    )
    answer = await api.call("create", "POST", "/v2/MusicAI", content=body)

Mapping (DESIGN.md's table)::

    no credential set        UpstreamAuthError     sent=False
    ConnectError             UpstreamError         sent=False (provably never left)
    ConnectTimeout           UpstreamTimeout       sent=False (no connection, pool wait)
    ReadTimeout              UpstreamTimeout       sent=True
    ReadError, ProtocolError UpstreamError         sent=True (reset, cut short, malformed)
    HTTP 4xx/5xx             ``error_for_status``  with ``Retry-After`` read as seconds
                                                   (``rate_limit_retry`` for a 429 without)

Every message passes through the credential scrubber, and so does every error body before
it is decoded or shortened: a key an upstream echoes reaches neither a client nor a log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import msgspec
import structlog

from providers.base import (
    ProviderError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamTimeout,
    error_for_status,
)
from providers.kit.http import (
    Answer,
    ConnectError,
    ConnectTimeout,
    ReadTimeout,
    TransportError,
    UpstreamHTTP,
)
from providers.kit.retry_after import retry_after
from providers.kit.scrub import scrub, scrub_bytes

log = structlog.get_logger("providers.kit")


class _Envelope(msgspec.Struct):
    error: object = None
    message: object = None


_envelope = msgspec.json.Decoder(_Envelope)


def json_error_text(body: bytes) -> str | None:
    """The ``error`` or ``message`` string of a JSON error body, if any (300 chars)."""
    try:
        view = _envelope.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    for value in (view.error, view.message):
        if isinstance(value, str) and value.strip():
            return value.strip()[:300]
    return None


@dataclass
class Upstream:
    """A provider's HTTP API as the provider's client sees it."""

    provider: str  # the provider name errors carry
    label: str  # how messages name the upstream ("MusicGPT", "useapi.net")
    http: UpstreamHTTP
    secret: str | None  # the credential: checked before a call, scrubbed from all text
    error_text: Callable[[bytes], str | None] = json_error_text
    rate_limit_retry: float | None = None  # a 429's wait when it sends no Retry-After
    unconfigured: str = "credential is not configured"  # message when secret is unset

    async def call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request; the 2xx answer, or a ``ProviderError``."""
        if not self.secret:
            raise UpstreamAuthError(
                f"{self.label}: {self.unconfigured}", provider=self.provider, sent=False
            )
        started = time.perf_counter()
        try:
            answer = await self.http.request(
                method, path, content=content, params=params, headers=headers
            )
        except (ConnectTimeout, ReadTimeout) as exc:
            raise self._fail(UpstreamTimeout, f"{op} call timed out", exc) from None
        except ConnectError as exc:
            raise self._fail(UpstreamError, f"{op}: could not connect", exc) from None
        except TransportError as exc:  # reset, disconnect, malformed answer, cut short
            raise self._fail(UpstreamError, f"{op} call failed", exc) from None
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        if answer.ok:
            log.debug("upstream_call", provider=self.provider, op=op, status=answer.status)
            return answer
        raise self.status_error(op, answer, latency_ms)

    def status_error(self, op: str, answer: Answer, latency_ms: float = 0.0) -> ProviderError:
        """The ``ProviderError`` for a non-2xx answer."""
        native = self.error_text(scrub_bytes(answer.body, self.secret))
        text = native or answer.reason or "error"
        message = self.scrub(f"{self.label} {op} answered {answer.status}: {text}")
        wait = retry_after(answer.headers.get("Retry-After"))
        if answer.status == 429 and wait is None:
            wait = self.rate_limit_retry
        log.warning(
            "upstream_call_failed",
            provider=self.provider,
            op=op,
            status=answer.status,
            latency_ms=latency_ms,
            message=message,
        )
        return error_for_status(answer.status, message, provider=self.provider, retry_after=wait)

    def scrub(self, text: str) -> str:
        return scrub(text, self.secret)

    def _fail(self, cls: type[ProviderError], what: str, exc: TransportError) -> ProviderError:
        message = self.scrub(f"{self.label} {what} ({type(exc).__name__})")
        sent = exc.sent
        log.warning(
            "upstream_call_failed",
            provider=self.provider,
            error=cls.code,
            message=message,
            sent=sent,
        )
        return cls(message, provider=self.provider, sent=sent)

    async def aclose(self) -> None:
        await self.http.aclose()
