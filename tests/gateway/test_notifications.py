"""Status changes pushed to clients: signed webhooks from the job service, and the
server-sent event stream of one job."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec
import pytest
import standardwebhooks

from gateway.api.app import create_app
from gateway.store.keys import hash_key, key_id_for
from tests.conftest import OTHER_KEY, TEST_KEY, app_client
from tests.support.echo import EchoProvider, SyncEchoProvider
from tests.support.receiver import Receiver
from tests.support.waiting import eventually

URL = "/v1/music/generate"


def _settings(make_settings: Any, **env: str) -> Any:
    return make_settings(
        GATEWAY_REFRESH_INTERVAL="0.2",
        GATEWAY_WEBHOOK_ALLOW_PRIVATE="true",  # the receiver is on loopback
        GATEWAY_WEBHOOK_RETRY_SCHEDULE="0,0.2,0.2,0.2",
        **env,
    )


async def test_every_status_change_is_posted_signed_and_verifiable(
    make_settings: Any, receiver: Receiver, echo: EchoProvider
) -> None:
    hook, rec = receiver.add()
    async with app_client(create_app(_settings(make_settings), providers=[echo])) as client:
        job = (
            await client.post(URL, json={"model": "echo/v1", "prompt": "p", "webhook_url": hook})
        ).json()

        async def delivered() -> bool:  # the refresher advances it; nobody polls
            return [b for _, b in rec.calls][-1:] != [] and b'"completed"' in rec.calls[-1][1]

        await eventually(delivered, what="the completed webhook")
        store = client.app.state.store  # type: ignore[attr-defined]
        key = await store.keys.get_key(key_id_for(hash_key(TEST_KEY)))
    verifier = standardwebhooks.Webhook(key.webhook_secret)
    statuses = []
    for headers, body in rec.calls:
        payload = verifier.verify(body, headers)  # raises if the signature is wrong
        assert payload["id"] == job["id"] and payload["object"] == "music"
        assert headers["webhook-id"] == f"{job['id']}.{payload['status']}"
        statuses.append(payload["status"])
    assert statuses == ["in_progress", "completed"]
    assert payload["output"][0]["audio_url"]
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(key.webhook_secret).verify(body + b" ", headers)


async def test_a_failing_receiver_gets_the_same_message_again(
    make_settings: Any, receiver: Receiver, echo: EchoProvider
) -> None:
    hook, rec = receiver.add(500, 503)  # the first two attempts fail
    async with app_client(create_app(_settings(make_settings), providers=[echo])) as client:
        body = {"model": "echo/v1", "prompt": "p", "webhook_url": hook, "echo": {"steps": 1}}
        job = (await client.post(URL, json=body)).json()

        async def done() -> bool:
            return len(rec.calls) >= 3 and rec.calls[-1][0]["webhook-id"].endswith(".completed")

        await eventually(done, what="the third attempt")
        outbox = client.app.state.jobs.outbox  # type: ignore[attr-defined]
        await eventually(lambda: _zero(outbox), what="the outbox drained")
        metrics = (await client.get("/metrics")).text
    ids = rec.ids()
    assert ids == [f"{job['id']}.completed"] * 3  # one webhook-id: receivers deduplicate
    assert 'gateway_webhook_deliveries_total{outcome="retry"} 2.0' in metrics
    assert 'gateway_webhook_deliveries_total{outcome="delivered"} 1.0' in metrics


async def _zero(outbox: Any) -> bool:
    return await outbox.pending() == 0


async def test_webhook_url_must_be_public_https_by_default(
    make_settings: Any, echo: EchoProvider
) -> None:
    async with app_client(create_app(make_settings(), providers=[echo])) as client:
        for url in ("http://example.com/hook", "https://127.0.0.1/hook", "https://10.1.2.3/x"):
            r = await client.post(URL, json={"model": "echo/v1", "prompt": "p", "webhook_url": url})
            assert r.status_code == 400, url
            assert (r.json()["error"], r.json()["param"]) == ("invalid_webhook_url", "webhook_url")
    assert echo.calls["submit"] == 0


# --------------------------------------------------------------------------- SSE


def _events(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if fields:
            events.append(fields)
    return events


async def test_event_stream_sends_each_status_change_then_ends(
    make_settings: Any, echo: EchoProvider
) -> None:
    settings = make_settings(GATEWAY_REFRESH_INTERVAL="0.2")
    async with app_client(create_app(settings, providers=[echo])) as client:
        job = (await client.post(URL, json={"model": "echo/v1", "prompt": "p"})).json()
        async with asyncio.timeout(30):  # the stream ends by itself after the final event
            r = await client.get(f"{URL}/{job['id']}/events")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    assert [e["event"] for e in events] == ["status"] * 3
    assert [e["id"] for e in events] == [
        f"{job['id']}.{s}" for s in ("queued", "in_progress", "completed")
    ]
    import json

    assert json.loads(events[-1]["data"])["output"][0]["audio_url"]


async def test_event_stream_of_a_final_job_is_one_event(echo_client: httpx.AsyncClient) -> None:
    job = (await echo_client.post(URL, json={"model": "echo/v1", "prompt": "p"})).json()
    while job["status"] != "completed":
        job = (await echo_client.get(f"{URL}/{job['id']}")).json()
    r = await echo_client.get(f"{URL}/{job['id']}/events")
    assert [e["id"] for e in _events(r.text)] == [f"{job['id']}.completed"]


async def test_event_stream_is_isolated_per_tenant(echo_client: httpx.AsyncClient) -> None:
    job = (await echo_client.post(URL, json={"model": "echo/v1", "prompt": "p"})).json()
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    r = await echo_client.get(f"{URL}/{job['id']}/events", headers=other)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await echo_client.get(f"{URL}/{job['id']}/events", headers={"Authorization": ""})
    assert r.status_code == 401


async def test_a_create_answered_with_an_error_sends_no_webhook(
    make_settings: Any, receiver: Receiver, echo: EchoProvider
) -> None:
    from providers.base import UpstreamRejected

    hook, rec = receiver.add()
    echo.submit_errors = [UpstreamRejected("no", provider="echo", native_status=422)]
    async with app_client(create_app(_settings(make_settings), providers=[echo])) as client:
        body = {"model": "echo/v1", "prompt": "p", "webhook_url": hook}
        assert (await client.post(URL, json=body)).status_code == 400
        outbox = client.app.state.jobs.outbox  # type: ignore[attr-defined]
        assert await outbox.pending() == 0
    assert rec.calls == []


async def test_a_synchronous_job_notifies_and_streams_like_any_other(
    make_settings: Any, receiver: Receiver
) -> None:
    """The client let go at once (``respond-async``): the webhook brings the result, with
    a signed download URL; the event stream of the job ends on ``completed`` too."""
    hook, rec = receiver.add()
    sync = SyncEchoProvider()
    app = create_app(
        _settings(make_settings, GATEWAY_PUBLIC_URL="https://gw.example"), providers=[sync]
    )
    async with app_client(app) as client:
        body = {"model": "echo-sync/v1", "prompt": "p", "webhook_url": hook}
        r = await client.post(URL, json=body, headers={"Prefer": "respond-async"})
        job = r.json()
        assert job["status"] == "queued"

        async def delivered() -> bool:
            return any(b'"completed"' in b for _, b in rec.calls)

        await eventually(delivered, what="the completed webhook")
        events = (await client.get(f"{URL}/{job['id']}/events")).text
    payloads = [msgspec.json.decode(b) for _, b in rec.calls]
    # one webhook per change; the two may be sent at once and arrive in either order
    assert sorted(p["status"] for p in payloads) == ["completed", "in_progress"]
    completed = next(p for p in payloads if p["status"] == "completed")
    url = completed["output"][0]["audio_url"]
    assert url.startswith("https://gw.example/v1/artefacts/") and "sig=" in url
    assert "event: status" in events and f"id: {job['id']}.completed" in events
