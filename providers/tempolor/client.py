"""Thin HTTP I/O against useapi.net's TemPolor API (one pooled ``httpx.AsyncClient``).

Every call answers the raw body of a 2xx response or raises from the ``ProviderError``
tree: useapi's ``{"error", "code"}`` envelope becomes the message, the HTTP status picks
the class (``error_for_status``), a ``Retry-After`` header (or, for 429, useapi's advice
of 10-30 s) becomes ``retry_after``. The token is sent only in the ``Authorization``
header and is scrubbed from every message we build.

Job ids go raw into the path (``user:12345-tempolor:...-job:...``): ``:`` and ``@`` are
legal path characters and useapi expects them unencoded; only characters that would
change the URL's structure (``/ ? #``, spaces, ...) are percent-encoded.
"""

from __future__ import annotations

import email.utils
import time
from typing import Literal
from urllib.parse import quote

import httpx
import msgspec

from providers.base import (
    ProviderError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamTimeout,
    error_for_status,
)
from providers.scrub import scrub, scrub_bytes
from providers.tempolor.schemas import ErrorView

PROVIDER = "tempolor"
DEFAULT_BASE_URL = "https://api.useapi.net/v1"
DEFAULT_RATE_LIMIT_RETRY = 10.0  # ref: "retry after 10-30 s"; Retry-After is unconfirmed
_PATH_SAFE = ":@-._~!$&'()*+,;="
_error_decoder = msgspec.json.Decoder(ErrorView)


Operation = Literal["create", "status", "download"]


class UseapiClient:
    """``create`` / ``status`` / ``download`` over one pooled connection set."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._token = token
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout or httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0),
            headers={"Accept": "application/json", "User-Agent": "music-gateway/tempolor"},
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            transport=transport,
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
            headers={"Content-Type": "application/json"},
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
        hdrs = {"Authorization": f"Bearer {self._token}", **(headers or {})}
        try:
            resp = await self._http.request(
                method, path, content=content, params=params, headers=hdrs
            )
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise UpstreamTimeout(
                f"useapi.net {op}: {type(exc).__name__}", provider=PROVIDER, sent=False
            ) from None
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(
                f"useapi.net {op}: {type(exc).__name__}", provider=PROVIDER
            ) from None
        except httpx.ConnectError as exc:
            raise UpstreamError(
                f"useapi.net {op}: cannot connect ({type(exc).__name__})",
                provider=PROVIDER,
                sent=False,
            ) from None
        except httpx.HTTPError as exc:  # reset, protocol error, ...
            raise UpstreamError(
                f"useapi.net {op}: {type(exc).__name__}", provider=PROVIDER
            ) from None
        if 200 <= resp.status_code < 300:
            return resp.content
        raise self._error(op, resp)

    def _error(self, op: Operation, resp: httpx.Response) -> ProviderError:
        status = resp.status_code
        native = _envelope_message(scrub_bytes(resp.content, self._token))
        text = native or resp.reason_phrase or "error"
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
