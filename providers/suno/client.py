"""Thin HTTP I/O against sunoapi.org over the provider kit (one pooled aiohttp session).

Every call answers the raw body of an answer whose request-level ``code`` is 200, or
raises from the ``ProviderError`` tree. sunoapi.org reports errors as a body ``code``,
usually inside an HTTP 200 (``{"code": 430, "msg": "..."}``): such an answer goes
through the kit's error path as if its status were that code, so it is scrubbed, logged
and classed the same way (``errors.error_class``: 429 is insufficient credits, 405/430
a rate limit, 455 maintenance). An HTTP error status is read the same way. The key
travels only in ``Authorization: Bearer`` and is scrubbed from every message.
"""

from __future__ import annotations

from providers.kit import Answer, Timeouts, Upstream, UpstreamHTTP
from providers.suno import errors
from providers.suno.catalog import PROVIDER

DEFAULT_BASE_URL = "https://api.sunoapi.org"
CREATE_PATH = "/api/v1/generate"
RECORD_PATH = "/api/v1/generate/record-info"
_JSON_BODY = {"Content-Type": "application/json"}


class SunoClient:
    """``create`` and ``record_info`` return the raw body; the mapping decodes it."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: Timeouts | None = None,
        max_connections: int = 50,
    ) -> None:
        # No I/O here: the session is made on the first call, in the loop that makes it.
        http = UpstreamHTTP(
            base_url,
            headers={
                "Accept": "application/json",
                "User-Agent": "music-gateway/suno",
                **({"Authorization": f"Bearer {api_key}"} if api_key else {}),
            },
            timeouts=timeout or Timeouts(),
            limit=max_connections,
        )
        self.api = Upstream(
            provider=PROVIDER,
            label="sunoapi.org",
            http=http,
            secret=api_key,
            error_text=errors.error_message,
            rate_limit_retry=errors.RATE_LIMIT_RETRY,
            unconfigured="SUNO_API_KEY is not set",
            error_class=errors.error_class,
        )

    async def aclose(self) -> None:
        await self.api.aclose()

    async def create(self, body: bytes) -> bytes:
        """``POST /api/v1/generate``; sent once (not idempotent)."""
        answer = await self.api.call(
            "create", "POST", CREATE_PATH, content=body, headers=_JSON_BODY
        )
        return self._checked("create", answer)

    async def record_info(self, task_id: str) -> bytes:
        """``GET /api/v1/generate/record-info?taskId=...``."""
        answer = await self.api.call("status", "GET", RECORD_PATH, params={"taskId": task_id})
        return self._checked("status", answer)

    def _checked(self, op: str, answer: Answer) -> bytes:
        code = errors.body_code(answer.body)
        if code is None:
            return answer.body
        # The error inside a 2xx: the kit's error path, as if the code were the status.
        raise self.api.status_error(op, Answer(code, answer.reason, answer.headers, answer.body))
