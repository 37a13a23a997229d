"""One provider API over HTTP: a call answers a 2xx ``Answer`` or raises from the
``ProviderError`` tree, the same way for every provider.

Usage::

    api = Upstream(
        provider="musicgpt", label="MusicGPT",
        http=UpstreamHTTP(base, headers={"Authorization": key}), secret=key,
        error_text=mapping.error_message,           # the provider's own error bodies
    )
    answer = await api.call("create", "POST", "/v2/MusicAI", content=body)
    audio = await api.stream("compose", "POST", "/v1/music", content=body)  # 2xx, unread
    try:
        async for chunk in audio: ...          # ProviderError (sent) if the body breaks
    finally:
        await audio.aclose()

Mapping (DESIGN.md's table)::

    no credential set        UpstreamAuthError     sent=False
    ConnectError             UpstreamError         sent=False (provably never left)
    ConnectTimeout           UpstreamTimeout       sent=False (no connection, pool wait)
    ReadTimeout              UpstreamTimeout       sent=True
    ReadError, ProtocolError UpstreamError         sent=True (reset, cut short, malformed)
    HTTP 4xx/5xx             ``error_for_status``  with ``Retry-After`` read as seconds
                                                   (``rate_limit_retry`` for a 429 without);
                                                   ``error_class`` may pick the class from
                                                   the body (an API that answers 401 for
                                                   an empty balance)
    body cut while streaming UpstreamError         sent=True (UpstreamTimeout on a stall)

``stream`` answers a 2xx ``UpstreamStream`` whose body is still on the wire; a non-2xx
answer's body is read (its first ``ERROR_BODY_LIMIT`` bytes) and raised as above.

Every message passes through the credential scrubber, and so does every error body before
it is decoded or shortened: a key an upstream echoes reaches neither a client nor a log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import msgspec
import structlog

from providers import diagnostics
from providers.base import (
    ProviderError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    error_for_status,
)
from providers.kit.http import (
    Answer,
    ConnectError,
    ConnectTimeout,
    ReadTimeout,
    StreamedAnswer,
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

ERROR_BODY_LIMIT = 64 * 1024  # how much of a streamed error answer is read


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
    # the class for a non-2xx answer from its status and (scrubbed) body; None: the table
    error_class: Callable[[int, bytes], type[ProviderError] | None] | None = None

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
        self._check_secret()
        started = time.perf_counter()
        try:
            answer = await self.http.request(
                method, path, content=content, params=params, headers=headers
            )
        except TransportError as exc:
            self._record(op, method, path, params, content, None)
            raise self.transport_error(op, exc) from None
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        self._record(op, method, path, params, content, answer)
        if answer.ok:
            log.debug("upstream_call", provider=self.provider, op=op, status=answer.status)
            return answer
        raise self.status_error(op, answer, latency_ms)

    async def stream(
        self,
        op: str,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> UpstreamStream:
        """Send one request; the 2xx answer with its body unread (``UpstreamStream``, to
        be read or closed by the caller), or a ``ProviderError``."""
        self._check_secret()
        started = time.perf_counter()
        try:
            streamed = await self.http.stream(
                method, path, content=content, params=params, headers=headers
            )
        except TransportError as exc:
            self._record(op, method, path, params, content, None)
            raise self.transport_error(op, exc) from None
        if streamed.ok:
            log.debug("upstream_call", provider=self.provider, op=op, status=streamed.status)
            head = Answer(streamed.status, streamed.reason, streamed.headers, b"")
            self._record(op, method, path, params, content, head, streamed=True)
            return UpstreamStream(self, op, streamed)
        try:
            body = await streamed.read(ERROR_BODY_LIMIT)
        except TransportError:  # the status says enough
            body = b""
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        answer = Answer(streamed.status, streamed.reason, streamed.headers, body)
        self._record(op, method, path, params, content, answer)
        raise self.status_error(op, answer, latency_ms)

    def status_error(self, op: str, answer: Answer, latency_ms: float = 0.0) -> ProviderError:
        """The ``ProviderError`` for a non-2xx answer."""
        body = scrub_bytes(answer.body, self.secret)
        native = self.error_text(body)
        text = native or answer.reason or "error"
        message = self.scrub(f"{self.label} {op} answered {answer.status}: {text}")
        cls = self.error_class(answer.status, body) if self.error_class else None
        wait = retry_after(answer.headers.get("Retry-After"))
        limited = answer.status == 429 if cls is None else issubclass(cls, UpstreamRateLimited)
        if limited and wait is None:
            wait = self.rate_limit_retry
        log.warning(
            "upstream_call_failed",
            provider=self.provider,
            op=op,
            status=answer.status,
            latency_ms=latency_ms,
            message=message,
        )
        if cls is None:
            return error_for_status(
                answer.status, message, provider=self.provider, retry_after=wait
            )
        return cls(
            message,
            provider=self.provider,
            native_status=answer.status,
            retry_after=wait if limited else None,
        )

    def transport_error(self, op: str, exc: TransportError) -> ProviderError:
        """The ``ProviderError`` for a transport failure (``sent`` kept)."""
        if isinstance(exc, (ConnectTimeout, ReadTimeout)):
            return self._fail(UpstreamTimeout, f"{op} call timed out", exc)
        if isinstance(exc, ConnectError):
            return self._fail(UpstreamError, f"{op}: could not connect", exc)
        # reset, disconnect, malformed answer, cut short
        return self._fail(UpstreamError, f"{op} call failed", exc)

    def scrub(self, text: str) -> str:
        return scrub(text, self.secret)

    def _record(
        self,
        op: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        answer: Answer | None,
        *,
        streamed: bool = False,
    ) -> None:
        """The exchange, scrubbed, for a client that asked to see it (``diagnostics``)."""
        if not diagnostics.capturing():
            return
        url = self.http.base_url + path
        if params:
            url += "?" + urlencode(params)
        sent = diagnostics.SentRequest(
            method=method,
            url=self.scrub(url),
            body=diagnostics.body_json(scrub_bytes(content, self.secret) if content else None),
        )
        if answer is None:
            got = diagnostics.Answer(status=None)
        else:
            kind = answer.headers.get("Content-Type")
            if streamed:
                body = diagnostics.streamed_note(kind)
            else:
                body = diagnostics.body_json(scrub_bytes(answer.body, self.secret), kind)
            got = diagnostics.Answer(status=answer.status, content_type=kind, body=body)
        diagnostics.record(diagnostics.Exchange(op=op, request=sent, response=got))

    def _check_secret(self) -> None:
        if not self.secret:
            raise UpstreamAuthError(
                f"{self.label}: {self.unconfigured}", provider=self.provider, sent=False
            )

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


class UpstreamStream:
    """A 2xx answer whose body is still on the wire (``Upstream.stream``): ``status``,
    ``headers``, ``length`` (``Content-Length`` when it is the length read), and the body
    as an async iterator of chunks, read once, that raises ``UpstreamError`` (or
    ``UpstreamTimeout`` on a stall), always ``sent``, if it breaks. ``aclose`` releases the
    connection (idempotent); it fits ``providers.base.ByteStream``'s ``chunks``."""

    def __init__(self, upstream: Upstream, op: str, streamed: StreamedAnswer) -> None:
        self.upstream = upstream
        self.op = op
        self.status = streamed.status
        self.headers = streamed.headers
        self.length = streamed.length
        self._streamed = streamed

    def __aiter__(self) -> UpstreamStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._streamed)
        except TransportError as exc:
            error = self.upstream.transport_error(f"{self.op} body", exc)
        raise error

    async def aclose(self) -> None:
        await self._streamed.aclose()
