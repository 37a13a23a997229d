"""Per-key rate limits (requests per minute, jobs in flight), atomic in Redis and shared by
every gateway process; and tenant isolation on every route."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gateway.api.app import create_app
from gateway.store.keys import hash_key, key_id_for
from tests.conftest import OTHER_KEY, TEST_KEY, app_client
from tests.support.echo import EchoProvider

pytestmark = pytest.mark.both_redis

BODY = {"model": "echo/v1", "prompt": "a quiet song"}
MINE = key_id_for(hash_key(TEST_KEY))


async def test_requests_per_minute_429_with_retry_after(make_settings: Any) -> None:
    app = create_app(make_settings(GATEWAY_RATE_LIMIT_RPM="3"), providers=[EchoProvider()])
    async with app_client(app) as client:
        codes = [(await client.get("/v1/models")).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = await client.get("/v1/models")
        assert r.status_code == 429
        assert r.json()["error"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 20  # one token back at 3/min
        # Another key has its own budget; public routes are not counted.
        other = await client.get("/v1/models", headers={"Authorization": f"Bearer {OTHER_KEY}"})
        assert other.status_code == 200
        assert (await client.get("/health")).status_code == 200


async def test_rate_limit_is_shared_by_two_gateway_processes(make_settings: Any) -> None:
    settings = make_settings(GATEWAY_RATE_LIMIT_RPM="10")
    a = create_app(settings, providers=[EchoProvider()])
    b = create_app(settings, providers=[EchoProvider()])
    async with app_client(a) as ca, app_client(b) as cb:
        answers = await asyncio.gather(*(c.get("/v1/models") for c in (ca, cb) for _ in range(10)))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) == 10 and codes.count(429) == 10


async def test_per_key_override(make_settings: Any) -> None:
    app = create_app(make_settings(GATEWAY_RATE_LIMIT_RPM="2"), providers=[EchoProvider()])
    async with app_client(app) as client:
        store = client.app.state.store  # type: ignore[attr-defined]
        assert await store.keys.set_key_limits(MINE, rpm=0, max_inflight=None)  # 0: unlimited
        codes = {(await client.get("/v1/models")).status_code for _ in range(8)}
        assert codes == {200}
        other = {"Authorization": f"Bearer {OTHER_KEY}"}
        codes = [(await client.get("/v1/models", headers=other)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]


async def test_jobs_in_flight_limit_and_release(make_settings: Any) -> None:
    settings = make_settings(GATEWAY_MAX_INFLIGHT_JOBS="2", GATEWAY_REFRESH_INTERVAL="0")
    async with app_client(create_app(settings, providers=[EchoProvider()])) as client:
        first = (await client.post("/v1/music/generate", json=BODY)).json()
        assert (await client.post("/v1/music/generate", json=BODY)).status_code == 200
        r = await client.post("/v1/music/generate", json=BODY)
        assert r.status_code == 429 and r.json()["error"] == "too_many_jobs"
        assert "retry-after" in r.headers
        other = {"Authorization": f"Bearer {OTHER_KEY}"}
        assert (await client.post("/v1/music/generate", json=BODY, headers=other)).is_success
        job = first
        while job["status"] != "completed":  # echo: one step per poll
            job = (await client.get(f"/v1/music/generate/{first['id']}")).json()
        assert (await client.post("/v1/music/generate", json=BODY)).status_code == 200
        # A key's own limit overrides the default.
        store = client.app.state.store  # type: ignore[attr-defined]
        await store.keys.set_key_limits(MINE, rpm=None, max_inflight=3)
        assert (await client.post("/v1/music/generate", json=BODY)).status_code == 200
        assert (await client.post("/v1/music/generate", json=BODY)).status_code == 429


async def test_in_flight_limit_is_atomic_under_concurrency(make_settings: Any) -> None:
    settings = make_settings(GATEWAY_MAX_INFLIGHT_JOBS="5")
    a = create_app(settings, providers=[EchoProvider()])
    b = create_app(settings, providers=[EchoProvider()])
    async with app_client(a) as ca, app_client(b) as cb:
        answers = await asyncio.gather(
            *(c.post("/v1/music/generate", json=BODY) for c in (ca, cb) for _ in range(15))
        )
    codes = [r.status_code for r in answers]
    assert codes.count(200) == 5 and codes.count(429) == 25


# ------------------------------------------------------------------ tenant isolation


async def test_tenant_isolation_on_every_route(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    job = (await echo_client.post("/v1/music/generate", json=BODY)).json()
    missing = await echo_client.get("/v1/music/generate/mus_01aaaaaaaaaaaaaaaaaaaaaaaa")
    theirs = await echo_client.get(f"/v1/music/generate/{job['id']}", headers=other)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["description"].replace(job["id"], "X") == missing.json()[
        "description"
    ].replace("mus_01aaaaaaaaaaaaaaaaaaaaaaaa", "X")
    # The same Idempotency-Key from another tenant never reveals this tenant's job.
    mine = await echo_client.post(
        "/v1/music/generate", json=BODY, headers={"Idempotency-Key": "k1"}
    )
    stranger = await echo_client.post(
        "/v1/music/generate", json=BODY, headers={"Idempotency-Key": "k1", **other}
    )
    assert stranger.json()["id"] != mine.json()["id"]
    # Callbacks: the job's own token only, for its own provider only.
    store = echo_client.app.state.store  # type: ignore[attr-defined]
    token = (await store.get_job(job["id"])).callback_token
    for url in (
        f"/v1/callbacks/echo/{job['id']}/wrong-token",
        f"/v1/callbacks/musicgpt/{job['id']}/{token}",
        f"/v1/callbacks/echo/{mine.json()['id']}/{token}",
    ):
        r = await echo_client.post(url, json={"step": 2})
        assert r.status_code == 404, url
    assert echo.calls["callback"] == 0
    assert (await store.get_job(job["id"])).status == "queued"
