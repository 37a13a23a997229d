"""Prometheus metrics, one registry per app, served as text at ``GET /metrics``.

Usage::

    metrics = Metrics()
    metrics.request("/v1/music/generate", "POST", 200, 0.012)
    with metrics.upstream("musicgpt", "submit"):
        await provider.submit(req)
    metrics.job_finished("musicgpt", "completed")
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from providers.base import ProviderError

# Litestar appends "; charset=utf-8" to text/* media types itself.
CONTENT_TYPE = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")

_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        # (route template, method, status) -> its counter and histogram children; routes
        # are templates and methods and statuses few, so this stays small.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "gateway_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "gateway_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["route", "method"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self.upstream_calls = Counter(
            "gateway_upstream_calls",
            "Calls to providers, by operation (submit, fetch, callback) and outcome "
            "(ok or the error code).",
            ["provider", "operation", "outcome"],
            registry=r,
        )
        self.upstream_latency = Histogram(
            "gateway_upstream_call_duration_seconds",
            "Time spent in a provider call.",
            ["provider", "operation"],
            buckets=_UPSTREAM_BUCKETS,
            registry=r,
        )
        self.jobs_created = Counter(
            "gateway_jobs_created", "Jobs accepted, by provider.", ["provider"], registry=r
        )
        self.jobs_finished = Counter(
            "gateway_jobs_finished",
            "Jobs that reached a final status, by provider and status.",
            ["provider", "status"],
            registry=r,
        )
        self.callbacks = Counter(
            "gateway_provider_callbacks",
            "Provider callbacks received, by provider and outcome (applied, rejected).",
            ["provider", "outcome"],
            registry=r,
        )
        self.webhooks = Counter(
            "gateway_webhook_deliveries",
            "Client webhook delivery attempts, by outcome (delivered, retry, failed).",
            ["outcome"],
            registry=r,
        )
        self.generations_requeued = Counter(
            "gateway_generations_requeued",
            "Synchronous generations put back in the queue, by provider and reason "
            "(concurrency_busy, rate, or the code of a request that never left).",
            ["provider", "reason"],
            registry=r,
        )
        self.budget_denied = Counter(
            "gateway_upstream_budget_denied",
            "Refreshes skipped because the provider's shared status-call budget was spent.",
            ["provider"],
            registry=r,
        )

        self.refresher_claims = Counter(
            "gateway_refresher_claims",
            "Claims the background refresher made on the refresh schedule (one Redis round "
            "trip each, empty ones included).",
            registry=r,
        )
        self.refresher_claimed = Counter(
            "gateway_refresher_claimed_jobs",
            "Jobs the background refresher claimed (each then refreshed, expired or put "
            "back on the schedule).",
            registry=r,
        )

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        children = self._request_children.get((route, method, status))
        if children is None:  # label lookups cost more than the updates: done once
            children = (
                self.http_requests.labels(route, method, str(status)),
                self.http_latency.labels(route, method),
            )
            self._request_children[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    @contextmanager
    def upstream(self, provider: str, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        outcome = "ok"
        try:
            yield
        except ProviderError as exc:
            outcome = exc.code
            raise
        except ValueError:
            outcome = "invalid_payload"
            raise
        finally:
            self.upstream_calls.labels(provider, operation, outcome).inc()
            self.upstream_latency.labels(provider, operation).observe(time.perf_counter() - started)

    def job_finished(self, provider: str, status: str) -> None:
        self.jobs_finished.labels(provider, status).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
