"""Thin HTTP I/O against MiniMax Music over the provider kit (one pooled aiohttp session).

``generate`` sends one ``POST /v1/music_generation`` (``Authorization: Bearer``) and
answers the 2xx ``UpstreamStream`` with its JSON body still on the wire
(``providers.minimax.streams`` reads it). A non-2xx answer leaves as a ``ProviderError``
(the kit's mapping; ``mapping.error_class`` picks the class from a ``base_resp`` code,
``mapping.error_message`` the message), never holding the API key: it travels only in
the ``Authorization`` header and is scrubbed from every text. A 429 without
``Retry-After`` waits ``RATE_LIMIT_RETRY`` seconds.

The generation happens while the request is open and nothing comes back before it ends
(a song of up to about five minutes: one to a few minutes), so the read timeout is long:
600 s by default.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from providers.kit import Timeouts, Upstream, UpstreamHTTP, UpstreamStream, text, timeouts_from
from providers.minimax import mapping

DEFAULT_BASE_URL = "https://api.minimax.io"
MUSIC_PATH = "/v1/music_generation"
DEFAULT_TIMEOUTS = Timeouts(connect=5.0, read=600.0, write=10.0, pool=5.0)
RATE_LIMIT_RETRY = 10.0  # seconds, for a 429 without Retry-After
_HEADERS = {"Content-Type": "application/json"}


class ClientSettings(msgspec.Struct, frozen=True, kw_only=True):
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = None
    connect_timeout: float = DEFAULT_TIMEOUTS.connect
    read_timeout: float = DEFAULT_TIMEOUTS.read
    write_timeout: float = DEFAULT_TIMEOUTS.write
    pool_timeout: float = DEFAULT_TIMEOUTS.pool

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClientSettings:
        """``MINIMAX_*`` names (``providers.minimax``'s docstring); a value set but
        unusable is a ``ValueError`` naming it."""
        t = timeouts_from(env, "MINIMAX", DEFAULT_TIMEOUTS)
        return cls(
            base_url=text(env, "MINIMAX_BASE_URL", DEFAULT_BASE_URL).rstrip("/"),
            api_key=text(env, "MINIMAX_API_KEY") or None,
            connect_timeout=t.connect,
            read_timeout=t.read,
            write_timeout=t.write,
            pool_timeout=t.pool,
        )

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )


class MiniMaxClient:
    """``generate`` answers the JSON answer's stream; the caller reads or closes it."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        # No I/O here: the session is made on the first call, in the loop that makes it.
        http = UpstreamHTTP(
            settings.base_url,
            headers={
                "User-Agent": "music-gateway",
                **({"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}),
            },
            timeouts=settings.timeouts,
        )
        self.api = Upstream(
            provider=mapping.PROVIDER,
            label=mapping.LABEL,
            http=http,
            secret=settings.api_key,
            error_text=mapping.error_message,
            error_class=mapping.error_class,
            rate_limit_retry=RATE_LIMIT_RETRY,
            unconfigured="MINIMAX_API_KEY is not set",
        )

    async def generate(self, body: bytes) -> UpstreamStream:
        """``POST /v1/music_generation``: never retried here (not idempotent)."""
        return await self.api.stream(mapping.OP, "POST", MUSIC_PATH, content=body, headers=_HEADERS)

    async def aclose(self) -> None:
        await self.api.aclose()
