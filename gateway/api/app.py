"""The app factory: ``create_app(settings)`` with one init plugin and a lifespan.

Usage::

    app = create_app()                                   # settings from the environment
    app = create_app(Settings.from_env(env), providers=[MyTestProvider()])

The lifespan starts the embedded Redis when ``REDIS_URL`` is unset, opens the Redis
client (one server's, or a cluster's: ``REDIS_CLUSTER``), seeds bootstrap keys, opens
the artefact store (``app.state.artefacts``), runs the webhook outbox and the background
refresher, and stops them and closes every client (providers included) on the way out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import stamina
import structlog
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.plugins import InitPluginProtocol
from redis.exceptions import RedisError

from gateway.api.auth import BearerAuthMiddleware, RateLimitMiddleware
from gateway.api.controllers import (
    health,
    list_models,
    metrics_endpoint,
    music_handlers,
    provider_callback,
    ready,
)
from gateway.api.downloads import DOWNLOAD_HANDLERS
from gateway.api.errors import EXCEPTION_HANDLERS
from gateway.api.openapi import openapi_config, schema_plugins
from gateway.api.schemas import build_request_type
from gateway.infra.log import RequestContextMiddleware, configure_logging
from gateway.infra.metrics import Metrics
from gateway.infra.pinning import PinnedTransport
from gateway.infra.settings import Settings, get_settings
from gateway.jobs.admission import Admission
from gateway.jobs.providers import credential_names, load_providers
from gateway.jobs.refresher import Refresher
from gateway.jobs.service import JobService, needs_queue
from gateway.jobs.sink import ArtefactSink
from gateway.notify.ssrf import check_webhook_url
from gateway.notify.webhooks import WebhookOutbox
from gateway.store.artefacts import ArtefactStore
from gateway.store.embedded import EmbeddedRedis
from gateway.store.redis_pool import open_client
from gateway.store.signing import UrlSigner, redis_secret
from gateway.store.store import Store
from providers.base import Provider

log = structlog.get_logger("gateway.api.app")

REDIS_POOL_SIZE = 256  # connections per process


class GatewayPlugin(InitPluginProtocol):
    """Wires routes, middleware, error handlers, dependencies and the lifespan."""

    def __init__(self, settings: Settings, providers: list[Provider] | None) -> None:
        self.settings = settings
        self.providers = providers if providers is not None else load_providers(settings.env)
        self.request_type = build_request_type(self.providers)
        self.metrics = Metrics()

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        s = self.settings
        queue_url = s.queue_redis_url or (None if s.redis_cluster else s.redis_url)
        if queue_url is None and s.redis_cluster and needs_queue(s, self.providers):
            raise RuntimeError(
                "REDIS_URL is a Redis Cluster: set GATEWAY_QUEUE_REDIS_URL to a single Redis "
                "for the generation queue (SAQ cannot run on a cluster; README, Redis Cluster)"
            )
        embedded: EmbeddedRedis | None = None
        url = s.redis_url
        if url is None:
            embedded = EmbeddedRedis(s.data_dir)
            url = embedded.start()
            queue_url = queue_url or url

        redis, close_redis = open_client(
            url, cluster=s.redis_cluster, timeout=s.redis_timeout, max_connections=REDIS_POOL_SIZE
        )
        store = Store(redis, prefix=s.redis_prefix, retention_seconds=s.job_retention_seconds)
        app.state.store = store
        # Outbound fetches of URLs we were given connect only to the addresses the SSRF
        # guard approved for that request (pinned: no second DNS answer is ever used).
        webhook_http = httpx.AsyncClient(
            transport=PinnedTransport(),
            timeout=httpx.Timeout(10.0, connect=5.0),
            follow_redirects=False,
            trust_env=False,
        )
        artefact_http = httpx.AsyncClient(  # put_url follows redirects itself, checked
            transport=PinnedTransport(),
            timeout=httpx.Timeout(60.0, connect=5.0),
            follow_redirects=False,
            trust_env=False,
        )
        signer = (
            UrlSigner(s.artefact_secret)
            if s.artefact_secret
            else UrlSigner(load=redis_secret(redis, s.redis_prefix))
        )
        artefacts = ArtefactStore.from_settings(s, signer=signer, http=artefact_http)
        app.state.artefacts = artefacts

        async def url_check(target: str) -> object:  # the SSRF guard, for outbound fetches
            return await check_webhook_url(target, allow_private=s.webhook_allow_private)

        sink = ArtefactSink(artefacts, {p.name: p for p in self.providers}, guard=url_check)
        jobs = app.state.jobs = JobService(
            store, self.providers, s, self.metrics, queue_url=queue_url, sink=sink
        )
        jobs.notifier.artefacts = artefacts
        app.state.admission = Admission(jobs.limits, s)

        jobs.outbox = WebhookOutbox(
            redis,
            prefix=s.redis_prefix,
            http=webhook_http,
            url_check=url_check,
            schedule=s.webhook_schedule,
            on_delivery=lambda outcome: self.metrics.webhooks.labels(outcome).inc(),
        )
        stop = asyncio.Event()
        workers = [asyncio.create_task(jobs.outbox.run(stop))]
        if s.background_refresh:
            workers.append(asyncio.create_task(Refresher(jobs).run(stop)))
        if jobs.generations is not None:  # a synchronous provider is configured
            workers.append(asyncio.create_task(jobs.generations.run(stop)))
        seeding: asyncio.Task[None] | None = None
        try:
            await self._seed_once(store)
        except RedisError as exc:  # start anyway (503s until Redis is back); retry seeding
            log.warning("redis_unavailable_at_start", error=type(exc).__name__)
            seeding = asyncio.create_task(self._seed_keys(store))
        try:
            yield
        finally:
            if seeding is not None:
                seeding.cancel()
            stop.set()
            _, pending = await asyncio.wait(workers, timeout=5)
            for task in pending:
                task.cancel()
            await jobs.notifier.aclose()
            await webhook_http.aclose()
            await artefact_http.aclose()
            for provider in self.providers:
                await provider.aclose()
            await close_redis()
            if embedded is not None:
                embedded.stop()

    async def _seed_once(self, store: Store) -> None:
        for raw in self.settings.api_keys:
            await store.keys.seed_key(raw)

    async def _seed_keys(self, store: Store) -> None:
        """Seed bootstrap keys; while Redis is unreachable, keep trying in the background
        (every 0.5 s at first, backing off to every 10 s; stamina logs each retry)."""
        retrying = stamina.retry_context(
            on=RedisError, attempts=None, timeout=None, wait_initial=0.5, wait_max=10.0
        )
        async for attempt in retrying:
            with attempt:
                await self._seed_once(store)
        log.info("keys_seeded")

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        configure_logging(
            self.settings.log_level,
            self.settings.log_format,
            self.settings.secrets(credential_names(self.providers)),
        )
        app_config.route_handlers += [
            *music_handlers(self.request_type),
            list_models,
            provider_callback,
            health,
            ready,
            metrics_endpoint,
            *DOWNLOAD_HANDLERS,
        ]
        app_config.dependencies["jobs"] = Provide(_jobs, sync_to_thread=False)
        app_config.state["metrics"] = self.metrics
        auth = DefineMiddleware(BearerAuthMiddleware, exclude=["^/docs"])
        app_config.middleware = [auth, RateLimitMiddleware, *app_config.middleware]
        app_config.exception_handlers = {**EXCEPTION_HANDLERS, **app_config.exception_handlers}
        app_config.lifespan = [*app_config.lifespan, self.lifespan]
        app_config.openapi_config = openapi_config()
        return app_config


def _jobs(state: State) -> JobService:
    return state.jobs


class GatewayApp(Litestar):
    """Litestar with the request-context layer outside routing, so that every answer,
    the framework's own 404/405 included, carries ``X-Request-ID`` and is logged once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._outer = RequestContextMiddleware(super().__call__, self.state.metrics.request)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._outer(scope, receive, send)


def create_app(
    settings: Settings | None = None, *, providers: list[Provider] | None = None, **kwargs: Any
) -> Litestar:
    """Build the gateway. ``providers`` overrides the registry (tests, embedding)."""
    settings = settings or get_settings()
    # Litestar 2.25 reads the body limit from the constructor, not from AppConfig.
    kwargs.setdefault("request_max_body_size", settings.max_body_bytes)
    # Ours first: schema plugins are consulted before Litestar's own.
    return GatewayApp(plugins=[GatewayPlugin(settings, providers), *schema_plugins()], **kwargs)
