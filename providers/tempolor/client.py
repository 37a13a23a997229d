"""Thin HTTP I/O against useapi.net's TemPolor API over the provider kit (one pooled
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

from typing import Literal
from urllib.parse import quote

import msgspec

from providers.kit import Timeouts, Upstream, UpstreamHTTP
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
        # No I/O here: the session is made on the first call, in the loop that makes it.
        http = UpstreamHTTP(
            base_url,
            headers={
                "Accept": "application/json",
                "User-Agent": "music-gateway/tempolor",
                **({"Authorization": f"Bearer {token}"} if token else {}),
            },
            timeouts=timeout or Timeouts(),
            limit=50,
        )
        self.api = Upstream(
            provider=PROVIDER,
            label="useapi.net",
            http=http,
            secret=token,
            error_text=_envelope_message,
            rate_limit_retry=DEFAULT_RATE_LIMIT_RETRY,
            unconfigured="USEAPI_TOKEN is not set",
        )

    async def aclose(self) -> None:
        await self.api.aclose()

    async def create(self, endpoint: Literal["song", "instrumental"], body: bytes) -> bytes:
        """``POST /tempolor/music/{song|instrumental}``; never retried (not idempotent)."""
        path = f"/tempolor/music/{endpoint}"
        return (await self.api.call("create", "POST", path, content=body, headers=_JSON_BODY)).body

    async def status(self, job_id: str) -> bytes:
        """``GET /tempolor/music/{job_id}``."""
        return (await self.api.call("status", "GET", f"/tempolor/music/{_raw(job_id)}")).body

    async def download(self, job_id: str, file_format: str) -> bytes:
        """``GET /tempolor/music/download/{job_id}?file_format=...``."""
        path = f"/tempolor/music/download/{_raw(job_id)}"
        answer = await self.api.call("download", "GET", path, params={"file_format": file_format})
        return answer.body


def _raw(job_id: str) -> str:
    return quote(job_id, safe=_PATH_SAFE)


def _envelope_message(body: bytes) -> str | None:
    try:
        view = _error_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return view.error.strip()[:300] if isinstance(view.error, str) and view.error.strip() else None
