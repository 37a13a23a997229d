"""The provider contract v2 end to end through the gateway, with the test-only providers.

* Capabilities: a synchronous provider (``start`` answers ``Finished``) is neither polled
  nor called back; its job completes from the create's own answer.
* Callbacks reach the provider with their headers, JSON or form bodies alike.
* The native-id index routes a callback sent to one account-level URL.
* A stored provider state that no longer decodes is logged, never reset in silence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest
from structlog.testing import capture_logs

from gateway.api.app import create_app
from gateway.infra.errors import NotFound
from gateway.infra.settings import Settings
from gateway.jobs.records import decode_state
from gateway.store.store import JobRecord
from providers.base import CallsBack, Pollable, Provider
from providers.registry import REGISTRY, create_providers
from tests.conftest import app_client
from tests.support.echo import EchoProvider, EchoState, SyncEchoProvider

URL = "/v1/music/generate"


@pytest.fixture
async def both(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[tuple[httpx.AsyncClient, EchoProvider, SyncEchoProvider]]:
    echo, sync = EchoProvider(), SyncEchoProvider()
    settings = make_settings(
        GATEWAY_REFRESH_INTERVAL="0",
        GATEWAY_BACKGROUND_REFRESH="off",
        GATEWAY_PUBLIC_URL="https://gw.example",
    )
    async with app_client(create_app(settings, providers=[echo, sync])) as client:
        yield client, echo, sync


def test_capabilities_are_declared_not_assumed() -> None:
    echo, sync = EchoProvider(), SyncEchoProvider()
    assert isinstance(echo, Provider) and isinstance(sync, Provider)
    assert isinstance(echo, Pollable) and isinstance(echo, CallsBack)
    assert not isinstance(sync, Pollable) and not isinstance(sync, CallsBack)
    for provider in create_providers({}):  # every registered provider
        assert isinstance(provider, Provider)
        assert provider.catalog.native_block == provider.name
        assert provider.catalog.models and provider.credentials
        assert all(m.provider == provider.name for m in provider.catalog.models)
        assert REGISTRY[provider.name].credentials == provider.credentials


async def test_a_synchronous_provider_completes_from_its_start(
    both: tuple[httpx.AsyncClient, EchoProvider, SyncEchoProvider],
) -> None:
    client, _, sync = both
    r = await client.post(URL, json={"model": "echo-sync/v1", "prompt": "x", "title": "T"})
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["status"] == "completed" and job["nativeResponseId"] == "sync-1"
    assert job["output"][0]["audio_url"].startswith("https://gw.example/v1/artefacts/")
    assert job["output"][0]["title"] == "T" and job["usage"]["output_audio_count"] == 1
    polled = (await client.get(f"{URL}/{job['id']}")).json()
    assert polled["status"] == "completed" and sync.calls == {"submit": 1}
    # Not a provider that calls back: its callback URL is a 404, nothing changes.
    record = await client.app.state.store.get_job(job["id"])  # type: ignore[attr-defined]
    path = f"/v1/callbacks/echo-sync/{record.id}/{record.callback_token}"
    assert (await client.post(path, json={"step": 1})).status_code == 404


async def test_audio_bytes_are_stored_and_served_signed(
    both: tuple[httpx.AsyncClient, EchoProvider, SyncEchoProvider],
) -> None:
    client, _, sync = both
    job = (await client.post(URL, json={"model": "echo-sync/v1", "prompt": "x"})).json()
    assert job["status"] == "completed", job
    url = job["output"][0]["audio_url"]
    assert url.startswith("https://gw.example/v1/artefacts/") and "sig=" in url
    path = url.removeprefix("https://gw.example")  # GATEWAY_PUBLIC_URL
    audio = await client.get(path, headers={"Authorization": ""})
    assert audio.status_code == 200 and audio.content == b"ID3"
    assert audio.headers["content-type"] == "audio/mpeg"
    assert sync.closed_streams == 1  # read to its end


async def test_callbacks_get_headers_and_form_or_json_bodies(
    both: tuple[httpx.AsyncClient, EchoProvider, SyncEchoProvider],
) -> None:
    client, echo, _ = both
    job = (await client.post(URL, json={"model": "echo/v1", "prompt": "x"})).json()
    record = await client.app.state.store.get_job(job["id"])  # type: ignore[attr-defined]
    path = f"/v1/callbacks/echo/{record.id}/{record.callback_token}"
    form = {"Content-Type": "application/x-www-form-urlencoded", "X-Signature": "sig-1"}
    r = await client.post(path, content=b"step=1", headers=form)
    assert r.status_code == 200 and r.json()["status"] == "in_progress", r.text
    assert echo.callback_headers[-1]["x-signature"] == "sig-1"
    r = await client.post(path, json={"step": 2})
    assert r.status_code == 200 and r.json()["status"] == "completed"
    assert echo.callback_headers[-1]["content-type"] == "application/json"
    assert echo.calls["fetch"] == 0  # the callbacks alone moved it


async def test_the_native_index_routes_an_account_level_callback(
    both: tuple[httpx.AsyncClient, EchoProvider, SyncEchoProvider],
) -> None:
    client, _, _ = both
    app: Any = client.app  # type: ignore[attr-defined]
    job = (await client.post(URL, json={"model": "echo/v1", "prompt": "x"})).json()
    native = job["nativeResponseId"]
    assert await app.state.store.indexes.job_for_native("echo", native) == job["id"]
    assert await app.state.store.indexes.job_for_native("echo", "echo-unknown") is None
    done = await app.state.jobs.callback_for_native("echo", native, {}, b'{"step": 2}')
    assert done.id == job["id"] and done.status == "completed"
    with pytest.raises(NotFound, match="No such callback"):
        await app.state.jobs.callback_for_native("echo", "echo-unknown", {}, b"{}")


async def test_an_undecodable_state_is_logged_not_silently_reset(
    both: tuple[httpx.AsyncClient, EchoProvider, SyncEchoProvider],
) -> None:
    client, echo, _ = both
    store = client.app.state.store  # type: ignore[attr-defined]
    job = (await client.post(URL, json={"model": "echo/v1", "prompt": "x", "title": "Kept"})).json()
    record: JobRecord = await store.get_job(job["id"])
    state = decode_state(record, EchoState)
    assert state is not None and state.title == "Kept" and state.step == 0
    garbled = msgspec.structs.replace(record, state=msgspec.msgpack.encode({"step": "two"}))
    await store.put_job(garbled)
    with capture_logs() as logs:
        r = await client.get(f"{URL}/{job['id']}")
    assert r.status_code == 200
    events = [e for e in logs if e["event"] == "provider_state_undecodable"]
    assert events and events[0]["job_id"] == job["id"] and events[0]["state_type"] == "EchoState"
    assert echo.calls["fetch"] == 1  # the provider was still asked, from an empty state
