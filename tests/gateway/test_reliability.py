"""Idempotent creates, no lost or doubled jobs, upstream fault handling, circuit breaker.

Driven through the HTTP API with the test-only echo provider, whose fault knobs raise
the provider error classes a real client raises (tests/providers/ drive the simulators).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gateway.api.app import create_app
from providers.base import UpstreamError, UpstreamRejected, UpstreamTimeout
from tests.conftest import OTHER_KEY, app_client
from tests.support.clock import FakeClock, age_job, use_breaker_clock
from tests.support.echo import EchoProvider

BODY = {"model": "echo/v1", "prompt": "a quiet song"}


async def _create(client: httpx.AsyncClient, key: str | None = None, **body: Any) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return await client.post("/v1/music/generate", json={**BODY, **body}, headers=headers)


# ---------------------------------------------------------------------- idempotency


async def test_same_key_same_body_answers_the_same_job_without_a_second_call(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    first = await _create(echo_client, "order-1")
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    # Same request, other key order and spacing: still the same request.
    raw = b'{ "prompt": "a quiet song",   "model": "echo/v1" }'
    again = await echo_client.post(
        "/v1/music/generate",
        content=raw,
        headers={"Idempotency-Key": "order-1", "Content-Type": "application/json"},
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert echo.calls["submit"] == 1


async def test_same_key_other_body_is_409(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    assert (await _create(echo_client, "order-2")).status_code == 200
    r = await _create(echo_client, "order-2", prompt="something else")
    assert r.status_code == 409
    assert r.json()["error"] == "idempotency_conflict"
    assert r.json()["param"] == "Idempotency-Key"
    assert echo.calls["submit"] == 1


async def test_idempotency_keys_are_scoped_per_client_key(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    mine = await _create(echo_client, "shared-name")
    theirs = await echo_client.post(
        "/v1/music/generate",
        json=BODY,
        headers={"Idempotency-Key": "shared-name", "Authorization": f"Bearer {OTHER_KEY}"},
    )
    assert theirs.status_code == 200 and "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert echo.calls["submit"] == 2


async def test_concurrent_requests_with_one_key_create_one_job(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    echo.submit_delay = 0.3  # the first create is still upstream while the others arrive
    answers = await asyncio.gather(*(_create(echo_client, "burst-1") for _ in range(20)))
    created = [r for r in answers if r.status_code == 200]
    waiting = [r for r in answers if r.status_code == 409]
    assert len(created) + len(waiting) == 20, [r.text for r in answers]
    assert len({r.json()["id"] for r in created}) == 1
    # Those that raced the create under way are told to retry, not shown a job that
    # might still fail: after the create settles, the retry answers the same job.
    for r in waiting:
        assert r.json()["error"] == "request_in_progress" and r.headers["retry-after"] == "1"
    again = await _create(echo_client, "burst-1")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == created[0].json()["id"]
    assert again.json()["nativeResponseId"] == "echo-1"
    assert echo.calls["submit"] == 1


async def test_a_429_releases_the_key_for_a_later_retry(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    echo.rate_limited = True
    first = await _create(echo_client, "order-429")
    assert first.status_code == 429 and first.headers["retry-after"] == "7"
    echo.rate_limited = False
    later = await _create(echo_client, "order-429")
    assert later.status_code == 200 and "idempotent-replayed" not in later.headers
    assert (await _create(echo_client, "order-429")).json()["id"] == later.json()["id"]
    assert echo.calls["submit"] == 2


async def test_invalid_idempotency_key_is_400(echo_client: httpx.AsyncClient) -> None:
    r = await _create(echo_client, "x" * 300)
    assert r.status_code == 400
    assert r.json()["param"] == "Idempotency-Key"


async def test_failed_create_is_stored_failed_and_replayed(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    echo.submit_errors = [UpstreamError("boom", provider="echo", native_status=500)]
    first = await _create(echo_client, "order-3")
    assert first.status_code == 502 and first.json()["error"] == "upstream_error"
    again = await _create(echo_client, "order-3")
    assert (again.status_code, again.json()["error"]) == (502, "upstream_error")
    assert again.json()["description"] == first.json()["description"]
    assert echo.calls["submit"] == 1
    store = echo_client.app.state.store  # type: ignore[attr-defined]
    entry = await store.indexes.get_idempotency("key_" + _key_digest(echo_client), "order-3")
    record = await store.get_job(entry.job_id)
    assert record.status == "failed" and record.error.code == "upstream_error"


def _key_digest(client: httpx.AsyncClient) -> str:
    from gateway.store.keys import hash_key

    return hash_key(client.headers["Authorization"].split()[1])[:16]


# ------------------------------------------------------------ outcome unknown / retries


async def test_lost_create_answer_is_never_resent_and_is_reconciled_by_callback(
    make_settings: Any, echo: EchoProvider
) -> None:
    settings = make_settings(GATEWAY_PUBLIC_URL="http://gateway.test", GATEWAY_REFRESH_INTERVAL="0")
    async with app_client(create_app(settings, providers=[echo])) as client:
        echo.submit_errors = [UpstreamTimeout("read timeout", provider="echo", sent=True)]
        r = await _create(client, "lost-1")
        assert r.status_code == 200, r.text
        job = r.json()
        assert job["status"] == "queued" and job["nativeResponseId"] is None
        assert echo.calls["submit"] == 1
        # Polling neither re-sends nor fails it while the callback may still come.
        polled = (await client.get(f"/v1/music/generate/{job['id']}")).json()
        assert polled["status"] == "queued"
        assert echo.calls == {"submit": 1, "fetch": 0, "callback": 0}
        record = await client.app.state.store.get_job(job["id"])  # type: ignore[attr-defined]
        url = f"/v1/callbacks/echo/{job['id']}/{record.callback_token}"
        ack = await client.post(url, json={"native_id": "echo-native-77", "step": 1})
        assert ack.status_code == 200, ack.text
        reconciled = (await client.get(f"/v1/music/generate/{job['id']}")).json()
        assert reconciled["nativeResponseId"] == "echo-native-77"
        assert reconciled["status"] in ("in_progress", "completed")
        while reconciled["status"] != "completed":  # normal polling from here on
            reconciled = (await client.get(f"/v1/music/generate/{job['id']}")).json()
        assert echo.calls["submit"] == 1


async def test_lost_create_answer_fails_after_the_bound(
    make_settings: Any, echo: EchoProvider
) -> None:
    settings = make_settings(
        GATEWAY_PUBLIC_URL="http://gateway.test",
        GATEWAY_UNKNOWN_OUTCOME_SECONDS="60",
        GATEWAY_MAX_INFLIGHT_JOBS="1",
    )
    async with app_client(create_app(settings, providers=[echo])) as client:
        echo.submit_errors = [UpstreamTimeout("read timeout", provider="echo", sent=True)]
        job = (await _create(client)).json()
        busy = await _create(client)  # the unknown job holds the key's only slot
        assert busy.status_code == 429 and busy.json()["error"] == "too_many_jobs"
        await age_job(client.app.state.store, job["id"], 60)  # type: ignore[attr-defined]
        failed = (await client.get(f"/v1/music/generate/{job['id']}")).json()
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "upstream_outcome_unknown"
        assert (await _create(client)).status_code == 200  # the slot was released
        assert echo.calls["submit"] == 2


async def test_lost_create_answer_without_callback_url_fails_at_once(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    echo.submit_errors = [UpstreamTimeout("read timeout", provider="echo", sent=True)]
    r = await _create(echo_client, "lost-2")
    assert (r.status_code, r.json()["error"]) == (504, "upstream_outcome_unknown")
    again = await _create(echo_client, "lost-2")
    assert (again.status_code, again.json()["error"]) == (504, "upstream_outcome_unknown")
    assert echo.calls["submit"] == 1


async def test_create_is_retried_only_when_it_never_left(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    echo.submit_errors = [
        UpstreamError("connection refused", provider="echo", sent=False),
        UpstreamTimeout("connect timeout", provider="echo", sent=False),
    ]
    r = await _create(echo_client)
    assert r.status_code == 200, r.text
    assert echo.calls["submit"] == 3
    # A 5xx answer means the request arrived: it is not sent again.
    echo.submit_errors = [UpstreamError("boom", provider="echo", native_status=503)]
    assert (await _create(echo_client)).status_code == 502
    assert echo.calls["submit"] == 4


async def test_poll_retries_transient_failures_then_answers_stale(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    job = (await _create(echo_client)).json()
    echo.fetch_errors = [UpstreamError("502 from upstream", provider="echo", native_status=502)]
    r = await echo_client.get(f"/v1/music/generate/{job['id']}")
    assert r.status_code == 200 and "x-gateway-stale" not in r.headers
    assert r.json()["status"] == "in_progress"
    assert echo.calls["fetch"] == 2  # one failure, one retry
    echo.fetch_error = UpstreamTimeout("read timeout", provider="echo")
    r = await echo_client.get(f"/v1/music/generate/{job['id']}")
    assert r.status_code == 200 and r.headers["x-gateway-stale"] == "true"
    assert r.json()["status"] == "in_progress"  # the last known snapshot
    assert echo.calls["fetch"] == 2 + 3  # GATEWAY_POLL_RETRIES=2: three attempts
    # A non-transient answer is not retried.
    echo.fetch_error = UpstreamRejected("bad id", provider="echo", native_status=400)
    r = await echo_client.get(f"/v1/music/generate/{job['id']}")
    assert r.headers["x-gateway-stale"] == "true" and echo.calls["fetch"] == 6


# ------------------------------------------------------------------- circuit breaker


async def test_circuit_opens_fails_fast_and_recovers(
    make_settings: Any, echo: EchoProvider
) -> None:
    settings = make_settings(GATEWAY_BREAKER_FAILURES="2", GATEWAY_BREAKER_COOLDOWN="0.5")
    async with app_client(create_app(settings, providers=[echo])) as client:
        clock = FakeClock()  # the cooldown passes when the test says so, not before
        breaker = use_breaker_clock(client.app, "echo", clock)
        echo.submit_errors = [
            UpstreamError("boom", provider="echo", native_status=500) for _ in range(2)
        ]
        assert (await _create(client)).status_code == 502
        assert (await _create(client)).status_code == 502
        fast = await _create(client)
        assert fast.status_code == 503 and fast.json()["error"] == "provider_unavailable"
        assert int(fast.headers["retry-after"]) >= 1
        assert echo.calls["submit"] == 2  # failed fast: no upstream call
        ready = (await client.get("/ready")).json()
        assert ready["providers"]["echo"]["circuit"] == "open"
        clock.advance(breaker.cooldown)
        assert (await client.get("/ready")).json()["providers"]["echo"]["circuit"] == "half_open"
        assert (await _create(client)).status_code == 200  # the trial call succeeds
        assert (await client.get("/ready")).json()["providers"]["echo"]["circuit"] == "closed"


async def test_client_errors_do_not_open_the_circuit(
    make_settings: Any, echo: EchoProvider
) -> None:
    settings = make_settings(GATEWAY_BREAKER_FAILURES="2")
    async with app_client(create_app(settings, providers=[echo])) as client:
        echo.submit_errors = [
            UpstreamRejected("bad", provider="echo", native_status=422) for _ in range(3)
        ]
        for _ in range(3):
            assert (await _create(client)).status_code == 400
        assert (await _create(client)).status_code == 200
