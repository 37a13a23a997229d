"""Thin HTTP I/O against MusicGPT over ``providers.http`` (one pooled aiohttp session).

Every failure leaves as a ``ProviderError`` subclass whose message never contains the
API key (it travels only in the ``Authorization`` header, raw, without ``Bearer``): a
transport failure that provably never left is ``sent=False`` (connect errors and connect
or pool timeouts), anything after sending is ``sent=True``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import msgspec
import structlog

from providers.base import (
    ProviderError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamTimeout,
    error_for_status,
)
from providers.http import (
    ConnectError,
    ConnectTimeout,
    ReadTimeout,
    Timeouts,
    TransportError,
    UpstreamHTTP,
)
from providers.musicgpt import mapping
from providers.scrub import scrub, scrub_bytes

log = structlog.get_logger(__name__)

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
        def num(name: str, default: float) -> float:
            raw = (env.get(name) or "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                return default
            return value if value > 0 else default

        return cls(
            base_url=(env.get("MUSICGPT_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
            api_key=env.get("MUSICGPT_API_KEY") or None,
            connect_timeout=num("MUSICGPT_CONNECT_TIMEOUT", 5.0),
            read_timeout=num("MUSICGPT_READ_TIMEOUT", 30.0),
            write_timeout=num("MUSICGPT_WRITE_TIMEOUT", 10.0),
            pool_timeout=num("MUSICGPT_POOL_TIMEOUT", 5.0),
            max_connections=int(num("MUSICGPT_MAX_CONNECTIONS", 50)),
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
        self._http = UpstreamHTTP(
            settings.base_url,
            headers={
                "Accept": "application/json",
                "User-Agent": "music-gateway",
                **({"Authorization": settings.api_key} if settings.api_key else {}),
            },
            timeouts=settings.timeouts,
            limit=settings.max_connections,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create(self, body: bytes) -> bytes:
        return await self._send("create", "POST", CREATE_PATH, content=body)

    async def by_id(self, task_id: str) -> bytes:
        params = {"conversionType": "MUSIC_AI", "task_id": task_id}
        return await self._send("status", "GET", BY_ID_PATH, params=params)

    async def _send(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> bytes:
        key = self.settings.api_key
        if not key:
            raise UpstreamAuthError(
                "MusicGPT API key is not configured", provider=mapping.PROVIDER, sent=False
            )
        started = time.perf_counter()
        try:
            resp = await self._http.request(
                method,
                path,
                content=content,
                params=params,
                headers=_JSON_BODY if content is not None else None,
            )
        except (ConnectTimeout, ReadTimeout) as exc:
            raise self._fail(
                UpstreamTimeout, f"MusicGPT {kind} call timed out ({type(exc).__name__})", exc.sent
            ) from None
        except ConnectError as exc:
            raise self._fail(
                UpstreamError, f"could not connect to MusicGPT ({type(exc).__name__})", False
            ) from None
        except TransportError as exc:  # reset, disconnect, malformed answer, body cut short
            raise self._fail(
                UpstreamError, f"MusicGPT {kind} call failed ({type(exc).__name__})", True
            ) from None
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        if resp.ok:
            log.debug("musicgpt_call", kind=kind, status=resp.status, latency_ms=latency_ms)
            return resp.body
        raw = scrub_bytes(resp.body, key)
        message = scrub(mapping.error_message(raw, resp.status), key)
        log.warning(
            "musicgpt_call_failed",
            kind=kind,
            status=resp.status,
            latency_ms=latency_ms,
            message=message,
        )
        raise error_for_status(
            resp.status,
            f"MusicGPT {kind} failed: {message}",
            provider=mapping.PROVIDER,
            retry_after=mapping.retry_after_seconds(resp.headers.get("Retry-After")),
        )

    def _fail(self, cls: type[ProviderError], message: str, sent: bool) -> ProviderError:
        message = scrub(message, self.settings.api_key)
        log.warning("musicgpt_call_failed", error=cls.code, message=message, sent=sent)
        return cls(message, provider=mapping.PROVIDER, sent=sent)
