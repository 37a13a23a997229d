"""One envelope for every error, the framework's own included; X-Request-ID everywhere."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.api.app import create_app
from providers.base import Pending, SubmitRequest, UpstreamAuthError, UpstreamTimeout
from tests.conftest import TEST_KEY, app_client
from tests.support.echo import EchoProvider

ENVELOPE = {"error", "description", "status_code", "request_id"}


def _check(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert ENVELOPE <= set(body) <= ENVELOPE | {"param", "details"}
    assert body["error"] == code
    assert body["status_code"] == status
    assert body["request_id"] == r.headers["x-request-id"]
    return body


async def test_framework_404_and_405(echo_client: httpx.AsyncClient) -> None:
    _check(await echo_client.get("/v1/nothing-here"), 404, "not_found")
    _check(await echo_client.delete("/v1/music/generate"), 405, "method_not_allowed")
    _check(await echo_client.put("/health"), 405, "method_not_allowed")


async def test_every_response_has_a_request_id(echo_client: httpx.AsyncClient) -> None:
    for r in (
        await echo_client.get("/health"),
        await echo_client.get("/v1/models"),
        await echo_client.get("/nope"),
        await echo_client.get("/docs/openapi.json"),
    ):
        assert r.headers["x-request-id"].startswith("req_")
    r = await echo_client.get("/health", headers={"X-Request-ID": "client-abc.123"})
    assert r.headers["x-request-id"] == "client-abc.123"
    # A hostile id is replaced, never echoed.
    r = await echo_client.get("/health", headers={"X-Request-ID": "x" * 200})
    assert r.headers["x-request-id"].startswith("req_")


class _Exploding(EchoProvider):
    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc

    async def start(self, req: SubmitRequest) -> Pending:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (RuntimeError("secret internals sk-test-alpha-0001"), 500, "internal_error"),
        (
            UpstreamAuthError("bad key", provider="echo", native_status=401),
            502,
            "upstream_auth_error",
        ),
        (UpstreamTimeout("connect timeout", provider="echo", sent=False), 504, "upstream_timeout"),
        # Sent, answer lost, no callback URL to reconcile with: failed, never re-sent.
        (UpstreamTimeout("read timeout", provider="echo"), 504, "upstream_outcome_unknown"),
    ],
)
async def test_unexpected_and_upstream_errors(
    make_settings: Any, exc: Exception, status: int, code: str
) -> None:
    app = create_app(make_settings(), providers=[_Exploding(exc)])
    async with app_client(app) as client:
        r = await client.post("/v1/music/generate", json={"model": "echo/v1", "prompt": "x"})
    body = _check(r, status, code)
    assert TEST_KEY not in r.text
    assert "Traceback" not in body["description"]


async def test_store_unavailable_is_503(make_settings: Any) -> None:
    # Port 1 on loopback: nothing listens there, so every Redis call fails fast.
    app = create_app(make_settings(REDIS_URL="redis://127.0.0.1:1/0"), providers=[EchoProvider()])
    async with app_client(app) as client:  # starts although Redis is down
        r = await client.get("/v1/models")
        ready = await client.get("/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
    _check(r, 503, "store_unavailable")
    assert r.headers["retry-after"] == "2"


async def test_callback_without_a_body_is_a_clear_400(echo_client: httpx.AsyncClient) -> None:
    job = await echo_client.post("/v1/music/generate", json={"model": "echo/v1", "prompt": "x"})
    record = await echo_client.app.state.store.get_job(job.json()["id"])  # type: ignore[attr-defined]
    r = await echo_client.post(f"/v1/callbacks/echo/{record.id}/{record.callback_token}")
    body = _check(r, 400, "validation_error")
    assert "JSON" in body["description"], body
