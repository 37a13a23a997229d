"""Thin HTTP I/O against MusicGPT over the provider kit (one pooled aiohttp session).

Every failure leaves as a ``ProviderError`` subclass (``providers.kit.Upstream``) whose
message never contains the API key: it travels only in the ``Authorization`` header, raw,
without ``Bearer``. A transport failure that provably never left is ``sent=False``
(connect errors, connect or pool timeouts); anything after sending is ``sent=True``.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from providers.kit import Timeouts, Upstream, UpstreamHTTP, count, text, timeouts_from
from providers.musicgpt import mapping

DEFAULT_BASE_URL = "https://api.musicgpt.com/api/public"
CREATE_PATH = "/v2/MusicAI"
BY_ID_PATH = "/v1/byId"
_JSON_BODY = {"Content-Type": "application/json"}


class ClientSettings(msgspec.Struct, frozen=True, kw_only=True):
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    write_timeout: float = 10.0
    pool_timeout: float = 5.0
    max_connections: int = 50

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClientSettings:
        """``MUSICGPT_*`` names (module docstring of ``providers.musicgpt``); a value set
        but unusable is a ``ValueError`` naming it."""
        t = timeouts_from(env, "MUSICGPT")
        return cls(
            base_url=text(env, "MUSICGPT_BASE_URL", DEFAULT_BASE_URL).rstrip("/"),
            api_key=text(env, "MUSICGPT_API_KEY") or None,
            connect_timeout=t.connect,
            read_timeout=t.read,
            write_timeout=t.write,
            pool_timeout=t.pool,
            max_connections=count(env, "MUSICGPT_MAX_CONNECTIONS", 50),
        )

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )


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
