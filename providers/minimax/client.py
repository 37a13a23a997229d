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

from providers.kit import ProviderSettings, Timeouts, Upstream, UpstreamHTTP, UpstreamStream
from providers.minimax import mapping

DEFAULT_BASE_URL = "https://api.minimax.io"
MUSIC_PATH = "/v1/music_generation"
DEFAULT_TIMEOUTS = Timeouts(connect=5.0, read=600.0, write=10.0, pool=5.0)
RATE_LIMIT_RETRY = 10.0  # seconds, for a 429 without Retry-After
_HEADERS = {"Content-Type": "application/json"}


class ClientSettings(ProviderSettings, frozen=True, kw_only=True):
    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClientSettings:
        """``MINIMAX_*`` names (``providers.minimax``'s docstring); a value set but
        unusable is a ``ValueError`` naming it."""
        return cls.load(env, "MINIMAX", base_url=DEFAULT_BASE_URL, timeouts=DEFAULT_TIMEOUTS)  # type: ignore[return-value]


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
