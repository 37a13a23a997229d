"""Client webhooks: signed (Standard Webhooks) and delivered at least once from Redis.

Every message is signed per https://www.standardwebhooks.com (headers ``webhook-id``,
``webhook-timestamp``, ``webhook-signature`` = ``v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">``) with the signing secret of the key that created the job, so
receivers verify with ``standardwebhooks.Webhook(secret).verify(body, headers)`` and
deduplicate by ``webhook-id`` (the same on every attempt).

Redis keys (under the configured prefix), all with one hash tag, ``{wh}``: the scripts
touch the schedule with messages, so on a Redis Cluster the outbox is one slot::

    {wh}:msg:ID    hash: ``m`` (msgpack: url, secret, type, payload, created_at),
                   ``attempts``, ``last_error``, ``claim`` (token of the worker holding it)
    {wh}:seen:ID   dedup marker: enqueuing an id seen within the TTL is a no-op
    {wh}:due       sorted set: id -> when it is next due (unix seconds, this host's clock)
    {wh}:dead      capped list (newest first) of messages given up on (no secret, no body)

Delivery: a worker claims due ids atomically (Lua) by moving them ``claim_seconds`` into
the future; a crashed worker's claims therefore come back on their own. 2xx deletes the
message; 410 Gone gives up at once; anything else (status, network error, timeout, a
rejection by ``url_check``) is retried after ``schedule[attempts]`` ±20 % jitter, and once
the schedule is exhausted the message goes to the dead-letter list. A result is only
recorded while its claim token still matches, so a slow worker never overwrites the
outcome of one that took the message over. Messages and markers expire after a few days.

Each attempt resolves the URL's host once, in ``url_check`` (the SSRF guard), and connects
only to the addresses it approved (``gateway.infra.pinning``): the receiving host cannot
rebind its name to a private address between the check and the connection.

Usage::

    secret = key.webhook_secret                      # the key record's (``whsec_...``)
    http = httpx.AsyncClient(transport=PinnedTransport(), trust_env=False)
    outbox = WebhookOutbox(redis, prefix="mgw:", http=http, url_check=check)
    await outbox.enqueue(msg_id=f"{job.id}.{job.status}", url=job.webhook_url,
                         secret=secret, event_type="music.completed",
                         payload=encode_event("music.completed", job_object))
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))     # in the app lifespan; stop.set() to end
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import structlog
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError
from standardwebhooks import Webhook

from gateway.infra.pinning import addresses_of, approved
from gateway.notify.outbox_lua import CLAIM, ENQUEUE, FINISH, READ

__all__ = [
    "DEAD_LETTER_LIMIT",
    "DEFAULT_SCHEDULE",
    "MESSAGE_TTL_SECONDS",
    "DeadLetter",
    "WebhookOutbox",
    "encode_event",
    "sign_headers",
]

log = structlog.get_logger("gateway.notify.webhooks")

#: Delay before each attempt, the Standard Webhooks / Svix recommendation: immediately,
#: then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after the previous failure
#: (8 attempts over about 27.6 hours). ``schedule[n]`` is the wait after n failed attempts.
DEFAULT_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
#: How long a message (and its dedup marker) lives at least; longer if the schedule needs it.
MESSAGE_TTL_SECONDS = 3 * 86400
#: Dead letters kept (newest first).
DEAD_LETTER_LIMIT = 1000
#: Upper bound for one attempt (url check + POST), also capped at half the claim time.
ATTEMPT_TIMEOUT = 15.0
USER_AGENT = "music-gateway-webhooks"
JITTER = 0.2

_MSG_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,200}$")


class _Message(msgspec.Struct, array_like=True):
    """The immutable part of a queued message (field ``m`` of its hash)."""

    url: str
    secret: str
    event_type: str
    payload: bytes
    created_at: float


class DeadLetter(msgspec.Struct, kw_only=True):
    id: str
    url: str
    event_type: str
    attempts: int
    last_error: str
    created_at: float
    dead_at: float


class _Result(msgspec.Struct):
    """One attempt's outcome, before it is recorded."""

    msg_id: str
    host: str
    attempt: int
    status: int | None
    error: str
    action: str  # done | retry | dead
    outcome: str  # delivered | retry | failed
    next_due: float = 0.0
    dead: bytes = b""


_msg_encoder = msgspec.msgpack.Encoder()
_msg_decoder = msgspec.msgpack.Decoder(_Message)
_dead_encoder = msgspec.json.Encoder()
_dead_decoder = msgspec.json.Decoder(DeadLetter)
_event_encoder = msgspec.json.Encoder()


def encode_event(event_type: str, data: Any, at: float) -> bytes:
    """The Standard Webhooks payload shape: ``{"type", "timestamp" (RFC 3339), "data"}``."""
    stamp = dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")
    return _event_encoder.encode({"type": event_type, "timestamp": stamp, "data": data})


def sign_headers(msg_id: str, secret: str, payload: bytes, at: int) -> dict[str, str]:
    """The three Standard Webhooks headers for ``payload`` sent at unix second ``at``."""
    when = dt.datetime.fromtimestamp(at, dt.UTC)
    signature = Webhook(secret).sign(msg_id, when, payload.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(at), "webhook-signature": signature}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


class WebhookOutbox:
    """A durable, deduplicating webhook queue in Redis with concurrent, signed delivery.

    ``url_check(url)`` (e.g. the SSRF guard) runs before every attempt; raising or
    returning ``False`` rejects the attempt. When it answers a list of addresses (the
    guard does), the attempt connects to those only (``gateway.infra.pinning``: give
    ``http`` a ``PinnedTransport``), so the host is resolved once per attempt, by the
    check. ``on_delivery(outcome)`` is called once per recorded attempt with
    ``"delivered"``, ``"retry"`` or ``"failed"`` (given up).
    ``clock`` (epoch seconds, default ``time.time``) is what due times and claims are
    measured on; the signatures' ``webhook-timestamp`` is always the real time.
    """

    def __init__(
        self,
        redis: Redis | RedisCluster,
        *,
        prefix: str,
        http: httpx.AsyncClient,
        url_check: Callable[[str], Awaitable[object]] | None = None,
        schedule: Sequence[float] = DEFAULT_SCHEDULE,
        claim_seconds: float = 60.0,
        on_delivery: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not schedule or any(s < 0 for s in schedule):
            raise ValueError("schedule must be a non-empty sequence of delays >= 0")
        if claim_seconds <= 0:
            raise ValueError("claim_seconds must be > 0")
        self._redis = redis
        self._http = http
        self._url_check = url_check
        self._schedule = tuple(float(s) for s in schedule)
        self._claim_seconds = float(claim_seconds)
        self._on_delivery = on_delivery
        self._clock = clock
        self._attempt_timeout = min(ATTEMPT_TIMEOUT, self._claim_seconds / 2)
        worst = sum(self._schedule) * (1 + JITTER) + self._claim_seconds * len(self._schedule)
        self._ttl = int(max(MESSAGE_TTL_SECONDS, worst + 3600))
        self._msg_prefix = f"{prefix}{{wh}}:msg:"
        self._seen_prefix = f"{prefix}{{wh}}:seen:"
        self._due = f"{prefix}{{wh}}:due"
        self._dead = f"{prefix}{{wh}}:dead"
        self._enqueue_script = redis.register_script(ENQUEUE)
        self._claim_script = redis.register_script(CLAIM)
        self._read_script = redis.register_script(READ)
        self._finish_script = redis.register_script(FINISH)

    async def enqueue(
        self, *, msg_id: str, url: str, secret: str, event_type: str, payload: bytes
    ) -> bool:
        """Queue one message; ``False`` when ``msg_id`` was already queued (within the TTL)."""
        if not _MSG_ID.match(msg_id):
            raise ValueError("msg_id must be 1-200 characters of [A-Za-z0-9._:-]")
        if urlsplit(url).scheme not in {"http", "https"}:
            raise ValueError("webhook url must be http(s)")
        Webhook(secret)  # fail now on a malformed secret, not at every attempt
        payload.decode()  # signatures cover the body as text: it must be UTF-8
        now = self._clock()
        blob = _msg_encoder.encode(_Message(url, secret, event_type, payload, now))
        added = await self._enqueue_script(
            keys=[self._seen_prefix + msg_id, self._msg_prefix + msg_id, self._due],
            args=[msg_id, self._ttl, repr(now + self._schedule[0]), blob],
        )
        log.debug("webhook_enqueued", msg_id=msg_id, host=_host(url), duplicate=not added)
        return bool(added)

    async def deliver_due(self, limit: int = 64) -> int:
        """Claim up to ``limit`` due messages, attempt them concurrently; return how many.

        Claiming is two scripts (the due ids, then their messages, named as keys); the
        outcomes of the batch are recorded in one script, however large the batch.
        """
        now = self._clock()
        token = secrets.token_hex(8)
        ids = await self._claim_script(
            keys=[self._due], args=[repr(now), repr(now + self._claim_seconds), limit]
        )
        if not ids:
            return 0
        ids = [_text(i) for i in ids]
        flat = await self._read_script(
            keys=[self._due, *(self._msg_prefix + i for i in ids)], args=[token, *ids]
        )
        claimed = [
            (_text(flat[i]), _msg_decoder.decode(flat[i + 1]), int(flat[i + 2]))
            for i in range(0, len(flat), 3)
        ]
        if not claimed:
            return 0
        results = await asyncio.gather(
            *(self._attempt(msg_id, msg, attempts) for msg_id, msg, attempts in claimed)
        )
        args: list[Any] = [token, DEAD_LETTER_LIMIT]
        for r in results:
            args += [r.msg_id, r.action, repr(r.next_due), r.attempt, r.error, r.dead]
        try:
            recorded: list[Any] = await self._finish_script(
                keys=[self._due, self._dead, *(self._msg_prefix + r.msg_id for r in results)],
                args=args,
            )
        except RedisError as exc:  # not recorded: the claims come back later
            recorded = [exc] * len(results)
        for r, ok in zip(results, recorded, strict=True):
            fields = {"msg_id": r.msg_id, "host": r.host, "attempt": r.attempt, "error": r.error}
            if isinstance(ok, Exception):
                log.warning("webhook_record_failed", **fields, cause=type(ok).__name__)
            elif not ok:  # another worker took the message over after our claim expired
                log.info("webhook_claim_lost", **fields)
            else:
                log.info("webhook_attempt", **fields, outcome=r.outcome, status=r.status)
                if self._on_delivery is not None:
                    self._on_delivery(r.outcome)
        return len(claimed)

    async def run(self, stop: asyncio.Event, idle: float = 0.5) -> None:
        """Deliver until ``stop`` is set; errors are logged and retried with backoff."""
        backoff = 0.0
        while not stop.is_set():
            try:
                attempted = await self.deliver_due()
            except Exception as exc:  # noqa: BLE001 - the loop must survive anything
                backoff = min(max(backoff * 2, 0.5), 30.0)
                log.warning("webhook_loop_error", error=type(exc).__name__, retry_in=backoff)
                await _wait(stop, backoff)
                continue
            backoff = 0.0
            if attempted == 0:
                await _wait(stop, idle)

    async def pending(self) -> int:
        """Messages queued or in flight."""
        return int(await self._redis.zcard(self._due))

    async def dead_letters(self) -> list[dict[str, Any]]:
        """Messages given up on, newest first: id, url, event_type, attempts, last_error."""
        raw = await self._redis.lrange(self._dead, 0, -1)
        return [msgspec.structs.asdict(_dead_decoder.decode(item)) for item in raw]

    # ------------------------------------------------------------------ internals

    async def _attempt(self, msg_id: str, msg: _Message, attempts: int) -> _Result:
        """Send once and decide what happens next (recorded by the caller)."""
        attempt = attempts + 1
        status, error = await self._send(msg_id, msg)
        now = self._clock()
        result = _Result(msg_id, _host(msg.url), attempt, status, error, "dead", "failed")
        if status is not None and 200 <= status < 300:
            result.action, result.outcome = "done", "delivered"
        elif status == 410 or attempt >= len(self._schedule):
            letter = DeadLetter(
                id=msg_id,
                url=msg.url,
                event_type=msg.event_type,
                attempts=attempt,
                last_error=error,
                created_at=msg.created_at,
                dead_at=now,
            )
            result.dead = _dead_encoder.encode(letter)
        else:
            result.action, result.outcome = "retry", "retry"
            jitter = random.uniform(1 - JITTER, 1 + JITTER)
            result.next_due = now + self._schedule[attempt] * jitter
        return result

    async def _send(self, msg_id: str, msg: _Message) -> tuple[int | None, str]:
        """One attempt: (HTTP status or None, short error text; "" on 2xx)."""
        try:
            async with asyncio.timeout(self._attempt_timeout):
                verdict: object = None
                if self._url_check is not None:
                    try:
                        verdict = await self._url_check(msg.url)
                    except Exception as exc:  # noqa: BLE001 - any rejection is a failed attempt
                        return None, f"url_rejected: {type(exc).__name__}"
                    if verdict is False:
                        return None, "url_rejected"
                headers = sign_headers(msg_id, msg.secret, msg.payload, int(time.time()))
                headers["content-type"] = "application/json"
                headers["user-agent"] = USER_AGENT
                with approved(msg.url, addresses_of(verdict)):  # resolved once, by the check
                    async with self._http.stream(
                        "POST",
                        msg.url,
                        content=msg.payload,
                        headers=headers,
                        follow_redirects=False,
                    ) as response:  # the body is never read: a receiver's answer is its status
                        status = response.status_code
        except TimeoutError:
            return None, "timeout"
        except Exception as exc:  # noqa: BLE001 - network errors, bad URLs: a failed attempt
            return None, type(exc).__name__
        return status, "" if 200 <= status < 300 else f"http {status}"


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set, whichever comes first."""
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass
