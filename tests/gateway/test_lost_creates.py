"""A create's deadline (the provider's ``create_timeout``) bounds how long its job can be
"in progress": a replay of its ``Idempotency-Key`` past the deadline (plus a margin) means
the process that sent it is gone, and answers the settled job instead of 409; nothing
settles a create before its deadline, however short ``GATEWAY_UNKNOWN_OUTCOME_SECONDS``.

In-process, with the echo provider; a create "whose process died" is a request task
cancelled mid-create (the record stays marked under way, as after a SIGKILL), and the
deadline passing is the job's stored times aged (``age_job``). The real thing, a gateway
process killed with SIGKILL, is ``tests/gateway/test_create_death.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from gateway.jobs.lost import OWNER_MARGIN
from gateway.store.keys import hash_key
from gateway.store.store import JobRecord, Store
from tests.conftest import TEST_KEY, app_client
from tests.support.clock import age_job, wall_clock_reaches
from tests.support.echo import EchoProvider
from tests.support.waiting import eventually

BODY = {"model": "echo/v1", "prompt": "a quiet song"}
URL = "/v1/music/generate"
OWNER = "key_" + hash_key(TEST_KEY)[:16]


def post(client: httpx.AsyncClient, key: str) -> Any:
    return client.post(URL, json=BODY, headers={"Idempotency-Key": key})


async def stored(store: Store, key: str) -> JobRecord:
    """The job of ``key``, once its record is written (the create under way)."""

    async def found() -> JobRecord | None:
        entry = await store.indexes.get_idempotency(OWNER, key)
        return None if entry is None else await store.get_job(entry.job_id)

    return await eventually(found, what=f"the job of {key}")


@pytest.fixture
def gateway(make_settings: Callable[..., Settings], echo: EchoProvider) -> Callable[..., Any]:
    def make(**env: str) -> Any:
        return app_client(create_app(make_settings(**env), providers=[echo]))

    return make


@pytest.fixture
async def client(gateway: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway(GATEWAY_BACKGROUND_REFRESH="off") as client:
        yield client


async def die_mid_create(client: httpx.AsyncClient, echo: EchoProvider, key: str) -> JobRecord:
    """Start a create that hangs upstream, then stop it the way a killed process stops:
    no code of ours runs after. Answers the record it left (still under way)."""
    echo.submit_delay = 3600
    request = asyncio.ensure_future(post(client, key))
    store = client.app.state.store  # type: ignore[attr-defined]
    await eventually(lambda: echo.calls["submit"] == 1, what="the create sent")
    busy = await post(client, key)
    assert busy.status_code == 409 and busy.json()["error"] == "request_in_progress"
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    record = await stored(store, key)
    assert record.submitting and record.submit_until is not None
    return record


async def test_a_replay_after_the_deadline_answers_the_settled_job(
    client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    record = await die_mid_create(client, echo, "dies-1")
    store = client.app.state.store  # type: ignore[attr-defined]
    timeout = echo.catalog.create_timeout
    assert record.submit_until == pytest.approx(record.created_at + timeout)
    # Up to the deadline and its margin the sender might be alive: still 409.
    await age_job(store, record.id, timeout + OWNER_MARGIN - 5)
    assert (await post(client, "dies-1")).status_code == 409
    await age_job(store, record.id, 5)  # now past it
    r = await post(client, "dies-1")
    assert r.status_code == 200, r.text
    assert r.headers["idempotent-replayed"] == "true"
    job = r.json()
    assert job["id"] == record.id and job["status"] == "failed"
    assert job["error"]["code"] == "upstream_outcome_unknown"
    assert "stopped before the provider answered" in job["error"]["message"]
    assert echo.calls["submit"] == 1  # never sent again
    again = await post(client, "dies-1")  # settled once: the same answer from the store
    assert again.status_code == 200 and again.json()["error"] == job["error"]
    polled = (await client.get(f"{URL}/{record.id}")).json()
    assert polled["status"] == "failed"


async def test_a_get_after_the_deadline_settles_it_too(
    client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    record = await die_mid_create(client, echo, "dies-2")
    store = client.app.state.store  # type: ignore[attr-defined]
    polled = (await client.get(f"{URL}/{record.id}")).json()
    assert polled["status"] == "queued"  # its sender may be alive
    await age_job(store, record.id, echo.catalog.create_timeout + OWNER_MARGIN)
    polled = (await client.get(f"{URL}/{record.id}")).json()
    assert polled["status"] == "failed"
    assert polled["error"]["code"] == "upstream_outcome_unknown"
    replay = await post(client, "dies-2")
    assert replay.status_code == 200 and replay.json()["status"] == "failed"
    assert echo.calls["submit"] == 1


async def test_a_dead_senders_create_still_waits_for_its_callback(
    gateway: Callable[..., Any], echo: EchoProvider
) -> None:
    """With a callback URL sent, the lost answer may still be reconciled: past the
    deadline the replay answers the job as it stands (no 409), and the callback that
    names the native job completes it."""
    async with gateway(
        GATEWAY_PUBLIC_URL="http://gateway.test",
        GATEWAY_BACKGROUND_REFRESH="off",
        GATEWAY_REFRESH_INTERVAL="0",
    ) as client:
        record = await die_mid_create(client, echo, "dies-3")
        assert record.reconcilable
        store = client.app.state.store  # type: ignore[attr-defined]
        await age_job(store, record.id, echo.catalog.create_timeout + OWNER_MARGIN)
        r = await post(client, "dies-3")
        assert r.status_code == 200 and r.json()["status"] == "queued", r.text
        url = f"/v1/callbacks/echo/{record.id}/{record.callback_token}"
        ack = await client.post(url, json={"native_id": "echo-native-9", "step": 1})
        assert ack.status_code == 200, ack.text
        echo.submit_delay = 0
        done = await eventually(
            lambda: _final(client, record.id), what="the reconciled job completed"
        )
        assert done["status"] == "completed" and done["nativeResponseId"] == "echo-native-9"
        assert echo.calls["submit"] == 1


async def _final(client: httpx.AsyncClient, job_id: str) -> dict[str, Any] | None:
    job = (await client.get(f"{URL}/{job_id}")).json()
    return job if job["status"] in ("completed", "failed") else None


async def test_nothing_settles_a_create_before_its_deadline(
    gateway: Callable[..., Any], echo: EchoProvider
) -> None:
    """GATEWAY_UNKNOWN_OUTCOME_SECONDS shorter than the create: neither the background
    refresher's turn nor a poll fails a create still under way in a live process."""
    async with gateway(
        GATEWAY_PUBLIC_URL="http://gateway.test", GATEWAY_UNKNOWN_OUTCOME_SECONDS="0.2"
    ) as client:
        gate = asyncio.Event()
        echo.submit_gate = gate
        request = asyncio.ensure_future(post(client, "slow-1"))
        store = client.app.state.store  # type: ignore[attr-defined]
        record = await stored(store, "slow-1")
        await eventually(lambda: echo.calls["submit"] == 1, what="the create sent")
        await wall_clock_reaches(record.created_at + 0.2)  # past the unknown-outcome bound
        jobs = client.app.state.jobs  # type: ignore[attr-defined]
        await jobs.refresh_due(record.id)  # the background refresher's turn
        polled = (await client.get(f"{URL}/{record.id}")).json()
        assert polled["status"] == "queued", polled
        gate.set()  # the provider answers
        r = await request
        assert r.status_code == 200 and r.json()["status"] != "failed", r.text
        assert r.json()["nativeResponseId"]


async def test_a_create_past_its_deadline_is_cut_as_outcome_unknown(
    make_settings: Callable[..., Settings], echo: EchoProvider
) -> None:
    """The deadline holds whatever the provider's own timeouts: a create still running
    then is an upstream timeout whose outcome is unknown (never sent again)."""
    echo.catalog = dataclasses.replace(EchoProvider.catalog, create_timeout=0.3)
    echo.submit_delay = 3600
    app = create_app(make_settings(GATEWAY_BACKGROUND_REFRESH="off"), providers=[echo])
    async with app_client(app) as client:
        r = await asyncio.wait_for(post(client, "cut-1"), timeout=30)
        assert r.status_code == 504 and r.json()["error"] == "upstream_outcome_unknown"
        assert "within 0.3 s" in r.json()["description"]
        again = await post(client, "cut-1")
        assert again.status_code == 504 and again.json()["error"] == "upstream_outcome_unknown"
        assert echo.calls["submit"] == 1


@pytest.mark.parametrize(
    ("module", "env"),
    [
        ("providers.musicgpt", {"MUSICGPT_READ_TIMEOUT": "7.5"}),
        ("providers.tempolor", {"USEAPI_READ_TIMEOUT": "7.5"}),
        ("providers.suno", {"SUNO_READ_TIMEOUT": "7.5"}),
    ],
)
def test_a_providers_create_deadline_is_its_read_timeout(module: str, env: dict[str, str]) -> None:
    provider = importlib.import_module(module).create(env)
    assert provider.catalog.create_timeout == 7.5
    default = importlib.import_module(module).create({})
    assert default.catalog.create_timeout == 30.0  # the read timeout's default
