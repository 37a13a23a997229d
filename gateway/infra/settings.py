"""Gateway settings: one frozen, documented dataclass read from the environment.

Usage::

    settings = get_settings()                 # cached, from os.environ
    settings = Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0"})

Provider settings are not read here: each provider package reads its own names from
``Settings.env`` and declares its credentials (see ``providers/registry.py``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

_DAY = 86_400

#: Environment names whose values are secrets whatever the providers declare.
SECRET_NAMES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GATEWAY_ARTEFACT_SECRET")


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    value = _float(env, name, default)
    if value < 0 or value != int(value):
        raise ValueError(f"{name} must be a whole number >= 0, got {env.get(name)!r}")
    return int(value)


def _schedule(value: str | None) -> tuple[float, ...]:
    if not (value or "").strip():
        return Settings.webhook_schedule
    try:
        delays = tuple(float(part) for part in _csv(value))
    except ValueError:
        delays = ()
    if not delays or any(d < 0 for d in delays):
        raise ValueError("GATEWAY_WEBHOOK_RETRY_SCHEDULE: comma-separated seconds >= 0")
    return delays


def _store_url(value: str | None) -> str | None:
    """``GATEWAY_ARTEFACT_STORE``: unset, ``file:///absolute/path`` or ``s3://bucket/prefix``."""
    raw = (value or "").strip()
    if not raw:
        return None
    scheme, sep, rest = raw.partition("://")
    scheme = scheme.lower()
    if sep and scheme == "file" and rest.startswith("/"):
        return "file://" + rest.rstrip("/")
    if sep and scheme == "s3" and rest.split("/", 1)[0]:
        return "s3://" + rest.rstrip("/")
    raise ValueError(
        f"GATEWAY_ARTEFACT_STORE must be file:///absolute/path or s3://bucket/prefix, got {raw!r}"
    )


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def _redis(env: Mapping[str, str]) -> tuple[str | None, bool, str | None]:
    """``REDIS_URL``, ``REDIS_CLUSTER`` and ``GATEWAY_QUEUE_REDIS_URL``, checked: (the URL
    in redis-py's own schemes, whether it is a cluster, the queue's URL or None)."""
    url = (env.get("REDIS_URL") or "").strip() or None
    cluster = _bool(env, "REDIS_CLUSTER")
    if url is not None:
        scheme, sep, rest = url.partition("://")
        if sep and scheme.lower() in CLUSTER_SCHEMES:
            url, cluster = f"{CLUSTER_SCHEMES[scheme.lower()]}://{rest}", True
    if cluster:
        scheme, _, rest = (url or "").partition("://")
        if scheme.lower() not in {"redis", "rediss"}:
            raise ValueError(
                "REDIS_CLUSTER needs REDIS_URL=redis://host:port (or rediss://), a seed node "
                "of the cluster; the embedded Redis and unix sockets are single servers"
            )
        database = rest.split("?", 1)[0].partition("/")[2]
        if database not in {"", "0"}:
            raise ValueError("REDIS_URL: a Redis Cluster has database 0 only")
    queue = (env.get("GATEWAY_QUEUE_REDIS_URL") or "").strip() or None
    if queue is not None and queue.partition("://")[0].lower() in CLUSTER_SCHEMES:
        raise ValueError("GATEWAY_QUEUE_REDIS_URL must be a single Redis, not a cluster")
    return url, cluster, queue


def _prefix(value: str | None) -> str:
    prefix = value or "mgw:"
    if "{" in prefix or "}" in prefix:  # the keys' hash tags are ours (Redis Cluster)
        raise ValueError("GATEWAY_REDIS_PREFIX must not contain { or }")
    return prefix


def _budgets(value: str | None) -> dict[str, float]:
    budgets = {}
    for part in _csv(value):
        name, sep, number = part.partition("=")
        try:
            budgets[name.strip()] = float(number)
        except ValueError:
            sep = ""
        if not sep or budgets.get(name.strip(), -1) < 0:
            raise ValueError(
                f"GATEWAY_UPSTREAM_BUDGETS: expected provider=calls_per_minute, got {part!r}"
            )
    return budgets


def _concurrency(value: str | None) -> dict[str, int]:
    limits = {}
    for part in _csv(value):
        name, sep, number = part.partition("=")
        if not sep or not number.strip().isdigit() or int(number) < 1:
            raise ValueError(
                f"GATEWAY_CONCURRENCY: expected provider=positive whole number, got {part!r}"
            )
        limits[name.strip()] = int(number)
    return limits


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the gateway reads from its environment (names in brackets)."""

    redis_url: str | None = None
    """[REDIS_URL] Redis to store jobs and keys in. Unset: start an embedded redis-server
    persisting under ``data_dir`` with an append-only file. ``redis+cluster://host:port``
    (or ``rediss+cluster://``): a Redis Cluster, reached through that seed node (stored
    here with the plain ``redis://`` / ``rediss://`` scheme and ``redis_cluster`` set)."""

    redis_cluster: bool = False
    """[REDIS_CLUSTER] ``REDIS_URL`` (``redis://host:port``) is a seed node of a Redis
    Cluster (or Valkey cluster, or a managed cluster-mode Redis): the gateway uses
    redis-py's cluster client. Every key a script touches shares one hash tag."""

    queue_redis_url: str | None = None
    """[GATEWAY_QUEUE_REDIS_URL] A single Redis (never a cluster) for the generation queue
    of synchronous providers and the artefact mirror (SAQ, which cannot run on a cluster:
    its scripts touch keys of several slots). Unset: ``REDIS_URL`` (or the embedded
    Redis); with a cluster it must be set when the queue is needed, else the gateway
    does not start."""

    data_dir: Path = Path(".data")
    """[GATEWAY_DATA_DIR] Where the embedded Redis keeps its files (default ``.data``)."""

    redis_prefix: str = "mgw:"
    """[GATEWAY_REDIS_PREFIX] Prefix of every Redis key the gateway writes."""

    api_keys: tuple[str, ...] = ()
    """[GATEWAY_API_KEYS] Comma-separated bootstrap client keys, seeded (hashed) at start."""

    public_url: str | None = None
    """[GATEWAY_PUBLIC_URL] The gateway's own URL as providers can reach it; when set, each
    create asks the provider to call back at a per-job URL with an unguessable token."""

    job_retention_seconds: int = 30 * _DAY
    """[GATEWAY_JOB_RETENTION_DAYS] How long job records are kept (default 30 days)."""

    refresh_interval: float = 2.0
    """[GATEWAY_REFRESH_INTERVAL] Seconds between upstream refreshes of one in-flight job."""

    max_body_bytes: int = 64 * 1024
    """[GATEWAY_MAX_BODY_BYTES] Largest accepted request body (413 beyond)."""

    redis_timeout: float = 2.0
    """[GATEWAY_REDIS_TIMEOUT] Seconds before a Redis call is given up (503)."""

    idempotency_seconds: int = _DAY
    """[GATEWAY_IDEMPOTENCY_HOURS] How long an ``Idempotency-Key`` is remembered, per client
    key (default 24 hours)."""

    rate_limit_rpm: int = 600
    """[GATEWAY_RATE_LIMIT_RPM] Requests per minute per client key (token bucket, bursts up
    to the same number). 0 turns the limit off. A key's own limit overrides it."""

    max_inflight_jobs: int = 50
    """[GATEWAY_MAX_INFLIGHT_JOBS] Jobs one client key may have queued or in progress at
    once. 0 turns the limit off. A key's own limit overrides it."""

    unknown_outcome_seconds: float = 900.0
    """[GATEWAY_UNKNOWN_OUTCOME_SECONDS] A job whose create answer was lost (timeout after
    sending, or the process sending it died) waits this long from its creation for the
    provider's callback, then fails with ``upstream_outcome_unknown``; never before its
    create's deadline (the provider's ``create_timeout``, plus a margin) has passed, so a
    create still under way is never failed for it. A synchronous job not final this long
    after its last attempt began fails the same way. Never re-sent."""

    poll_retries: int = 2
    """[GATEWAY_POLL_RETRIES] Extra attempts for a status poll that failed transiently
    (5xx, timeout, reset), with jittered exponential backoff."""

    breaker_failures: int = 5
    """[GATEWAY_BREAKER_FAILURES] Consecutive transient upstream failures that open a
    provider's circuit (creates then fail fast with 503 ``provider_unavailable``)."""

    breaker_cooldown: float = 30.0
    """[GATEWAY_BREAKER_COOLDOWN] Seconds an open circuit waits before letting one trial
    call through; success closes it again."""

    upstream_budgets: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    """[GATEWAY_UPSTREAM_BUDGETS] Status calls per minute each provider may receive from all
    gateway processes together, e.g. ``musicgpt=200,tempolor=600`` (token bucket in Redis).
    Unset for a provider: its documented limit (MusicGPT: 20/min, the smallest plan)."""

    upstream_burst_seconds: float = 5.0
    """[GATEWAY_UPSTREAM_BURST_SECONDS] How many seconds of a provider's budget may be
    spent at once (the bucket's size, at least one refresh): in any T seconds the
    gateway makes at most budget x (burst + T) / 60 status calls, so no minute sees more
    than budget x (1 + burst / 60)."""

    sync_wait: float = 300.0
    """[GATEWAY_SYNC_WAIT] Seconds a create for a synchronous provider (its answer is the
    audio) waits for the result before answering the job as it stands (still queued or
    in progress: poll it). RFC 7240 ``Prefer: wait=N`` sets it per request (for
    asynchronous providers too, where the default is 0); ``Prefer: respond-async``
    answers at once."""

    concurrency: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """[GATEWAY_CONCURRENCY] Generations each synchronous provider may run at once across
    all gateway processes, e.g. ``elevenlabs=2`` (leases in Redis). Unset for a provider:
    its documented limit."""

    worker_concurrency: int = 16
    """[GATEWAY_WORKER_CONCURRENCY] Generations one gateway process's worker runs at once
    (every process runs one worker; ``GATEWAY_CONCURRENCY`` caps them all together)."""

    worker_heartbeat: float = 10.0
    """[GATEWAY_WORKER_HEARTBEAT] Seconds between heartbeats of a running generation. One
    silent for three heartbeats is taken for dead (its process stopped): its job is
    handed back and, as the request may have reached the provider, failed
    ``upstream_outcome_unknown`` rather than sent again."""

    background_refresh: bool = True
    """[GATEWAY_BACKGROUND_REFRESH] Refresh in-flight jobs on a schedule even when nobody
    polls them, so statuses advance and webhooks fire."""

    callback_defer: float = 30.0
    """[GATEWAY_CALLBACK_DEFER] After a provider callback, seconds until the background
    refresher polls that job again."""

    webhook_schedule: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    """[GATEWAY_WEBHOOK_RETRY_SCHEDULE] Seconds before each webhook delivery attempt,
    comma-separated (Standard Webhooks' recommendation: at once, 5 s, 5 min, 30 min, 2 h,
    5 h, 10 h, 10 h); after the last one fails the message goes to the dead letters."""

    webhook_allow_private: bool = False
    """[GATEWAY_WEBHOOK_ALLOW_PRIVATE] Allow ``webhook_url`` on http and on loopback,
    private or link-local addresses (local development only; SSRF protection off)."""

    artefact_store: str | None = None
    """[GATEWAY_ARTEFACT_STORE] Where stored artefacts (audio) live. Unset: the folder
    ``artefacts/`` under ``data_dir``; ``file:///abs/path``: that folder;
    ``s3://bucket/prefix``: an S3 bucket, or an S3-compatible server, configured by the
    standard ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
    ``AWS_REGION`` (or ``AWS_DEFAULT_REGION``) and ``AWS_ENDPOINT_URL`` (an ``http://``
    endpoint is allowed)."""

    artefact_secret: str | None = None
    """[GATEWAY_ARTEFACT_SECRET] Key of the HMAC-SHA256 signing the download URLs the
    gateway serves (a file store). Unset: a random key made once and kept in Redis
    (``{prefix}artefact:secret``), so every replica and every restart shares it."""

    artefact_url_ttl: float = 3600.0
    """[GATEWAY_ARTEFACT_URL_TTL] Seconds a download URL of a stored artefact stays valid
    (default one hour); a job read later is answered with fresh URLs."""

    artefact_mirror: bool = False
    """[GATEWAY_ARTEFACT_MIRROR] Also copy asynchronous providers' outputs into the
    artefact store when their jobs complete (their own URLs expire: MusicGPT's WAV after
    7 days, TemPolor's after minutes). Until the copy is done the provider's URLs are
    served. Synchronous providers' audio is always stored."""

    require_parameters: bool = False
    """[GATEWAY_REQUIRE_PARAMETERS] A request field the chosen model cannot use is a 400
    ``unsupported_parameter`` naming it, for every request (a request's own
    ``provider.require_parameters`` overrides it either way). Default: the job runs and its
    answer lists the field in ``warnings`` (``parameter_ignored``)."""

    log_level: str = "info"
    """[GATEWAY_LOG_LEVEL] debug | info | warning | error."""

    log_format: str = "auto"
    """[GATEWAY_LOG_FORMAT] json | console | auto (console on a TTY, JSON otherwise)."""

    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The whole environment mapping, handed to provider factories."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``)."""
        env = dict(os.environ if env is None else env)
        retention_days = _float(env, "GATEWAY_JOB_RETENTION_DAYS", 30.0)
        if retention_days <= 0:
            raise ValueError("GATEWAY_JOB_RETENTION_DAYS must be positive")
        public_url = (env.get("GATEWAY_PUBLIC_URL") or "").strip().rstrip("/") or None
        log_format = env.get("GATEWAY_LOG_FORMAT", "auto").strip().lower() or "auto"
        if log_format not in {"auto", "json", "console"}:
            raise ValueError("GATEWAY_LOG_FORMAT must be json, console or auto")
        url_ttl = _float(env, "GATEWAY_ARTEFACT_URL_TTL", 3600.0)
        if url_ttl <= 0:
            raise ValueError("GATEWAY_ARTEFACT_URL_TTL must be a positive number of seconds")
        redis_url, redis_cluster, queue_redis_url = _redis(env)
        return cls(
            redis_url=redis_url,
            redis_cluster=redis_cluster,
            queue_redis_url=queue_redis_url,
            data_dir=Path(env.get("GATEWAY_DATA_DIR") or ".data"),
            redis_prefix=_prefix(env.get("GATEWAY_REDIS_PREFIX")),
            api_keys=_csv(env.get("GATEWAY_API_KEYS")),
            public_url=public_url,
            job_retention_seconds=int(retention_days * _DAY),
            refresh_interval=_float(env, "GATEWAY_REFRESH_INTERVAL", 2.0),
            max_body_bytes=int(_float(env, "GATEWAY_MAX_BODY_BYTES", 64 * 1024)),
            redis_timeout=_float(env, "GATEWAY_REDIS_TIMEOUT", 2.0),
            idempotency_seconds=int(_float(env, "GATEWAY_IDEMPOTENCY_HOURS", 24.0) * 3600),
            rate_limit_rpm=_count(env, "GATEWAY_RATE_LIMIT_RPM", 600),
            max_inflight_jobs=_count(env, "GATEWAY_MAX_INFLIGHT_JOBS", 50),
            unknown_outcome_seconds=_float(env, "GATEWAY_UNKNOWN_OUTCOME_SECONDS", 900.0),
            poll_retries=_count(env, "GATEWAY_POLL_RETRIES", 2),
            breaker_failures=_count(env, "GATEWAY_BREAKER_FAILURES", 5),
            breaker_cooldown=_float(env, "GATEWAY_BREAKER_COOLDOWN", 30.0),
            webhook_allow_private=_bool(env, "GATEWAY_WEBHOOK_ALLOW_PRIVATE"),
            webhook_schedule=_schedule(env.get("GATEWAY_WEBHOOK_RETRY_SCHEDULE")),
            upstream_budgets=MappingProxyType(_budgets(env.get("GATEWAY_UPSTREAM_BUDGETS"))),
            upstream_burst_seconds=max(0.0, _float(env, "GATEWAY_UPSTREAM_BURST_SECONDS", 5.0)),
            sync_wait=max(0.0, _float(env, "GATEWAY_SYNC_WAIT", 300.0)),
            concurrency=MappingProxyType(_concurrency(env.get("GATEWAY_CONCURRENCY"))),
            worker_concurrency=max(1, _count(env, "GATEWAY_WORKER_CONCURRENCY", 16)),
            worker_heartbeat=max(0.2, _float(env, "GATEWAY_WORKER_HEARTBEAT", 10.0)),
            background_refresh=_bool(env, "GATEWAY_BACKGROUND_REFRESH", True),
            callback_defer=_float(env, "GATEWAY_CALLBACK_DEFER", 30.0),
            artefact_store=_store_url(env.get("GATEWAY_ARTEFACT_STORE")),
            artefact_secret=env.get("GATEWAY_ARTEFACT_SECRET") or None,
            artefact_mirror=_bool(env, "GATEWAY_ARTEFACT_MIRROR"),
            artefact_url_ttl=url_ttl,
            require_parameters=_bool(env, "GATEWAY_REQUIRE_PARAMETERS"),
            log_level=(env.get("GATEWAY_LOG_LEVEL") or "info").lower(),
            log_format=log_format,
            env=MappingProxyType(env),
        )

    def secrets(self, names: Iterable[str] = ()) -> tuple[str, ...]:
        """Values that must never appear in a log line or a response: the client keys,
        the artefact store's credentials and URL-signing key, and the values of the
        environment ``names`` (the providers' credentials, which each provider declares)."""
        found = [self.env.get(n, "") for n in (*SECRET_NAMES, *names)]
        return tuple(s for s in (*self.api_keys, *found) if s and len(s) >= 6)


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from ``os.environ``."""
    return Settings.from_env()
