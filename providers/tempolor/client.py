"""Thin HTTP I/O against useapi.net's TemPolor API over ``providers.http`` (one pooled
aiohttp session).

Every call answers the raw body of a 2xx response or raises from the ``ProviderError``
tree: useapi's ``{"error", "code"}`` envelope becomes the message, the HTTP status picks
the class (``error_for_status``), a ``Retry-After`` header (or, for 429, useapi's advice
of 10-30 s) becomes ``retry_after``. The token is sent only in the ``Authorization``
header and is scrubbed from every message we build. A transport failure that provably
never left (connect error, connect or pool timeout) is ``sent=False``; anything after
sending is ``sent=True``.

Job ids go raw into the path (``user:12345-tempolor:...-job:...``): ``:`` and ``@`` are
legal path characters and useapi expects them unencoded; only characters that would
change the URL's structure (``/ ? #``, spaces, ...) are percent-encoded.
"""

from __future__ import annotations

import email.utils
import time
from typing import Literal
from urllib.parse import quote

import msgspec

from providers.base import (
    ProviderError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamTimeout,
    error_for_status,
)
from providers.http import (
    Answer,
    ConnectError,
    ConnectTimeout,
    ReadTimeout,
    Timeouts,
    TransportError,
    UpstreamHTTP,
)
from providers.scrub import scrub, scrub_bytes
from providers.tempolor.schemas import ErrorView

PROVIDER = "tempolor"
DEFAULT_BASE_URL = "https://api.useapi.net/v1"
DEFAULT_RATE_LIMIT_RETRY = 10.0  # ref: "retry after 10-30 s"; Retry-After is unconfirmed
_PATH_SAFE = ":@-._~!$&'()*+,;="
_error_decoder = msgspec.json.Decoder(ErrorView)
_JSON_BODY = {"Content-Type": "application/json"}


Operation = Literal["create", "status", "download"]


class UseapiClient:
    """``create`` / ``status`` / ``download`` over one pooled connection set."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: Timeouts | None = None,
    ) -> None:
        self._token = token
        # No I/O here: the session is made on the first call, in the loop that makes it.
        self._http = UpstreamHTTP(
            base_url,
            headers={
                "Accept": "application/json",
                "User-Agent": "music-gateway/tempolor",
                **({"Authorization": f"Bearer {token}"} if token else {}),
            },
            timeouts=timeout or Timeouts(),
            limit=50,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create(self, endpoint: Literal["song", "instrumental"], body: bytes) -> bytes:
        """``POST /tempolor/music/{song|instrumental}``; never retried (not idempotent)."""
        return await self._call(
            "create",
            "POST",
            f"/tempolor/music/{endpoint}",
            content=body,
            headers=_JSON_BODY,
        )

    async def status(self, job_id: str) -> bytes:
        """``GET /tempolor/music/{job_id}``."""
        return await self._call("status", "GET", f"/tempolor/music/{_raw(job_id)}")

    async def download(self, job_id: str, file_format: str) -> bytes:
        """``GET /tempolor/music/download/{job_id}?file_format=...``."""
        return await self._call(
            "download",
            "GET",
            f"/tempolor/music/download/{_raw(job_id)}",
            params={"file_format": file_format},
        )

    async def _call(
        self,
        op: Operation,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        if not self._token:
            raise UpstreamAuthError("USEAPI_TOKEN is not set", provider=PROVIDER, sent=False)
        try:
            resp = await self._http.request(
                method, path, content=content, params=params, headers=headers
            )
        except (ConnectTimeout, ReadTimeout) as exc:
            raise UpstreamTimeout(
                scrub(f"useapi.net {op}: {type(exc).__name__}", self._token),
                provider=PROVIDER,
                sent=exc.sent,
            ) from None
        except ConnectError as exc:
            raise UpstreamError(
                scrub(f"useapi.net {op}: cannot connect ({type(exc).__name__})", self._token),
                provider=PROVIDER,
                sent=False,
            ) from None
        except TransportError as exc:  # reset, disconnect, malformed answer, ...
            raise UpstreamError(
                scrub(f"useapi.net {op}: {type(exc).__name__}", self._token), provider=PROVIDER
            ) from None
        if resp.ok:
            return resp.body
        raise self._error(op, resp)

    def _error(self, op: Operation, resp: Answer) -> ProviderError:
        status = resp.status
        native = _envelope_message(scrub_bytes(resp.body, self._token))
        text = native or resp.reason or "error"
        message = scrub(f"useapi.net {op} answered {status}: {text}", self._token)
        retry_after = _retry_after(resp.headers.get("Retry-After"))
        if status == 429 and retry_after is None:
            retry_after = DEFAULT_RATE_LIMIT_RETRY
        return error_for_status(status, message, provider=PROVIDER, retry_after=retry_after)


def _raw(job_id: str) -> str:
    return quote(job_id, safe=_PATH_SAFE)


def _envelope_message(body: bytes) -> str | None:
    try:
        view = _error_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return view.error.strip()[:300] if isinstance(view.error, str) and view.error.strip() else None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
