"""Thin HTTP I/O against ElevenLabs Music over the provider kit (one pooled aiohttp
session).

``compose`` sends one ``POST /v1/music`` and answers the 2xx ``UpstreamStream`` with
the audio still on the wire; every failure leaves as a ``ProviderError`` (the kit's
mapping, with ``mapping.error_class`` picking the class from ElevenLabs' ``detail.status``
word and ``mapping.error_message`` the message) that never contains the API key: the key
travels only in the ``xi-api-key`` header and is scrubbed from every text. A 429 without
``Retry-After`` waits ``RATE_LIMIT_RETRY`` seconds.

The generation happens while the request is open (seconds to minutes), so the read
timeout (the longest wait for the next bytes, the first ones included) is long: 330 s by
default. A streamed answer has no total cap (``providers.kit.http``).
"""

from __future__ import annotations

from collections.abc import Mapping

from providers.elevenlabs import mapping
from providers.kit import ProviderSettings, Timeouts, Upstream, UpstreamHTTP, UpstreamStream

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
MUSIC_PATH = "/v1/music"
DEFAULT_TIMEOUTS = Timeouts(connect=5.0, read=330.0, write=10.0, pool=5.0)
RATE_LIMIT_RETRY = 5.0  # seconds, for a 429 without Retry-After (the docs give none)
_HEADERS = {
    "Content-Type": "application/json",
    # Content-Length must count the audio itself: it sizes a WAV header.
    "Accept-Encoding": "identity",
}


class ClientSettings(ProviderSettings, frozen=True, kw_only=True):
    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClientSettings:
        """``ELEVENLABS_*`` names (``providers.elevenlabs``'s docstring); a value set but
        unusable is a ``ValueError`` naming it."""
        return cls.load(env, "ELEVENLABS", base_url=DEFAULT_BASE_URL, timeouts=DEFAULT_TIMEOUTS)  # type: ignore[return-value]


class ElevenLabsClient:
    """``compose`` answers the audio stream; the caller reads or closes it."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        # No I/O here: the session is made on the first call, in the loop that makes it.
        http = UpstreamHTTP(
            settings.base_url,
            headers={
                "User-Agent": "music-gateway",
                **({"xi-api-key": settings.api_key} if settings.api_key else {}),
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
            unconfigured="ELEVENLABS_API_KEY is not set",
        )

    async def compose(self, params: Mapping[str, str], body: bytes) -> UpstreamStream:
        """``POST /v1/music?output_format=...``: never retried here (not idempotent)."""
        return await self.api.stream(
            "compose", "POST", MUSIC_PATH, content=body, params=params, headers=_HEADERS
        )

    async def aclose(self) -> None:
        await self.api.aclose()
