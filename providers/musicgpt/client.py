"""Thin HTTP I/O against MusicGPT over the provider kit (one pooled aiohttp session).

Every failure leaves as a ``ProviderError`` subclass (``providers.kit.Upstream``) whose
message never contains the API key: it travels only in the ``Authorization`` header, raw,
without ``Bearer``. A transport failure that provably never left is ``sent=False``
(connect errors, connect or pool timeouts); anything after sending is ``sent=True``.
"""

from __future__ import annotations

from collections.abc import Mapping

from providers.kit import ProviderSettings, Upstream, UpstreamHTTP
from providers.musicgpt import mapping

DEFAULT_BASE_URL = "https://api.musicgpt.com/api/public"
CREATE_PATH = "/v2/MusicAI"
BY_ID_PATH = "/v1/byId"
_JSON_BODY = {"Content-Type": "application/json"}


class ClientSettings(ProviderSettings, frozen=True, kw_only=True):
    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClientSettings:
        """``MUSICGPT_*`` names (``providers.musicgpt``'s docstring); a value set but
        unusable is a ``ValueError`` naming it."""
        return cls.load(env, "MUSICGPT", base_url=DEFAULT_BASE_URL, pooled=True)  # type: ignore[return-value]


class MusicGPTClient:
    """``create`` and ``by_id`` return the raw 2xx body; the mapping decodes it."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        # No I/O here: the session is made on the first call, in the loop that makes it.
        http = UpstreamHTTP(
            settings.base_url,
            headers={
                "Accept": "application/json",
                "User-Agent": "music-gateway",
                **({"Authorization": settings.api_key} if settings.api_key else {}),
            },
            timeouts=settings.timeouts,
            limit=settings.max_connections,
        )
        self.api = Upstream(
            provider=mapping.PROVIDER,
            label="MusicGPT",
            http=http,
            secret=settings.api_key,
            error_text=mapping.error_message,
            unconfigured="API key is not configured",
        )

    async def aclose(self) -> None:
        await self.api.aclose()

    async def create(self, body: bytes) -> bytes:
        answer = await self.api.call(
            "create", "POST", CREATE_PATH, content=body, headers=_JSON_BODY
        )
        return answer.body

    async def by_id(self, task_id: str) -> bytes:
        params = {"conversionType": "MUSIC_AI", "task_id": task_id}
        return (await self.api.call("status", "GET", BY_ID_PATH, params=params)).body
