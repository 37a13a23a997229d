"""The hot path's per-process caches and the canonical log line's direct rendering.

``Store`` keeps key records (``keys.lookup_key``) and final job records (``get_job_cached``)
in memory for ``cache_seconds`` and shares concurrent reads of one job. Two ``Store``
objects on one Redis stand for two gateway processes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest
import structlog
from redis.asyncio import Redis

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from gateway.store.keys import hash_key, key_id_for
from gateway.store.store import JobRecord, Store
from providers.base import Output
from tests.conftest import OTHER_KEY, TEST_KEY, app_client
from tests.support.clock import FakeClock
from tests.support.echo import EchoProvider

BODY = {"model": "echo/v1", "prompt": "a calm piano piece"}


@pytest.fixture
async def stores(redis_url: str) -> AsyncIterator[Callable[..., Store]]:
    """``make(cache_seconds=..., clock=..., wall_clock=...)``: Stores sharing one fresh
    prefix, like two processes (on the real clocks unless given fake ones)."""
    redis = Redis.from_url(redis_url)
    prefix = f"c{secrets.token_hex(4)}:"

    def make(cache_seconds: float = 60.0, **clocks: Any) -> Store:
        return Store(
            redis, prefix=prefix, retention_seconds=3600, cache_seconds=cache_seconds, **clocks
        )

    yield make
    await redis.aclose()


def final_job(job_id: str, url: str, refresh_after: float | None = None) -> JobRecord:
    now = time.time()
    return JobRecord(
        id=job_id,
        owner="key_owner",
        provider="tempolor",
        model="tempolor/v4.8",
        status="completed",
        created_at=now,
        updated_at=now,
        native_id="n1",
        native_ids=["n1"],
        outputs=[Output(index=0, audio_url=url)],
        refresh_after=refresh_after,
    )


async def completed(client: httpx.AsyncClient) -> str:
    job = (await client.post("/v1/music/generate", json=BODY)).json()
    for _ in range(10):  # echo: one step per poll
        if job["status"] == "completed":
            return str(job["id"])
        job = (await client.get(f"/v1/music/generate/{job['id']}")).json()
    raise AssertionError(f"never completed: {job}")


# ------------------------------------------------------------------------ keys


async def test_revocation_by_another_process_applies_within_cache_seconds(
    stores: Callable[..., Store],
) -> None:
    clock = FakeClock()
    here, elsewhere = stores(cache_seconds=0.3, clock=clock), stores()
    raw, record = await elsewhere.keys.create_key("temp")
    found = await here.keys.lookup_key(raw)
    assert found is not None and not found.revoked
    assert await elsewhere.keys.revoke_key(record.id)
    clock.advance(here.cache_seconds)
    found = await here.keys.lookup_key(raw)
    assert found is not None and found.revoked


async def test_key_changes_through_this_store_apply_at_once(
    stores: Callable[..., Store],
) -> None:
    store = stores(cache_seconds=60)
    raw, record = await store.keys.create_key("temp")
    assert (await store.keys.lookup_key(raw)).rpm is None  # type: ignore[union-attr]
    await store.keys.set_key_limits(record.id, rpm=7, max_inflight=None)
    assert (await store.keys.lookup_key(raw)).rpm == 7  # type: ignore[union-attr]
    assert await store.keys.revoke_key(record.id)
    assert (await store.keys.lookup_key(raw)).revoked  # type: ignore[union-attr]


async def test_unknown_keys_are_not_remembered(stores: Callable[..., Store]) -> None:
    here, elsewhere = stores(cache_seconds=60), stores()
    raw = "mgw_" + secrets.token_urlsafe(16)
    assert await here.keys.lookup_key(raw) is None
    await elsewhere.keys.create_key("new", raw_key=raw)
    assert await here.keys.lookup_key(raw) is not None  # no waiting for a cached miss


async def test_gateway_rejects_a_key_revoked_elsewhere_after_cache_seconds(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    settings = make_settings(GATEWAY_REFRESH_INTERVAL="0", GATEWAY_BACKGROUND_REFRESH="off")
    async with app_client(create_app(settings, providers=[EchoProvider()])) as client:
        store = client.app.state.store  # type: ignore[attr-defined]
        store.keys.clock = clock = FakeClock()  # the key cache's clock
        assert (await client.get("/v1/models")).status_code == 200  # the key is cached now
        redis = Redis.from_url(redis_url)
        other_process = Store(redis, prefix=settings.redis_prefix, retention_seconds=60)
        assert await other_process.keys.revoke_key(key_id_for(hash_key(TEST_KEY)))
        await redis.aclose()
        clock.advance(store.keys.cache_seconds)
        r = await client.get("/v1/models")
        assert r.status_code == 401 and r.json()["error"] == "invalid_api_key"


# ------------------------------------------------------------------------ jobs


async def test_cached_final_job_is_still_owner_checked(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    settings = make_settings(GATEWAY_REFRESH_INTERVAL="0", GATEWAY_BACKGROUND_REFRESH="off")
    async with app_client(create_app(settings, providers=[EchoProvider()])) as client:
        client.app.state.store.cache_seconds = 60  # type: ignore[attr-defined]
        job_id = await completed(client)
        assert (await client.get(f"/v1/music/generate/{job_id}")).status_code == 200
        redis = Redis.from_url(redis_url)  # gone from Redis: answered from memory only
        await redis.delete(client.app.state.store.job_key(job_id))  # type: ignore[attr-defined]
        await redis.aclose()
        mine = await client.get(f"/v1/music/generate/{job_id}")
        assert mine.status_code == 200 and mine.json()["status"] == "completed"
        other = {"Authorization": f"Bearer {OTHER_KEY}"}
        theirs = await client.get(f"/v1/music/generate/{job_id}", headers=other)
        assert theirs.status_code == 404 and theirs.json()["error"] == "not_found"


async def test_final_job_is_not_served_from_memory_past_its_refresh_after(
    stores: Callable[..., Store],
) -> None:
    wall = FakeClock(start=time.time())
    here, elsewhere = stores(cache_seconds=60, wall_clock=wall), stores()
    refresh_after = wall() + 1.0  # e.g. TemPolor: renew the download URLs then
    await elsewhere.put_job(final_job("mus_renew", "https://cdn/old.mp3", refresh_after))
    assert (await here.get_job_cached("mus_renew")).outputs[0].audio_url.endswith("old.mp3")  # type: ignore[union-attr,operator]
    renewed = final_job("mus_renew", "https://cdn/new.mp3", wall() + 600)
    await elsewhere.put_job(renewed)  # another process renewed them
    wall.advance(1.0)  # refresh_after has come (the cache itself is good for 60 s more)
    record = await here.get_job_cached("mus_renew")
    assert record is not None and record.outputs[0].audio_url == "https://cdn/new.mp3"


async def test_final_job_changed_elsewhere_shows_within_cache_seconds(
    stores: Callable[..., Store],
) -> None:
    clock = FakeClock()
    here, elsewhere = stores(cache_seconds=0.3, clock=clock), stores()
    await elsewhere.put_job(final_job("mus_late", "https://cdn/a.mp3"))
    assert await here.get_job_cached("mus_late") is not None
    await elsewhere.put_job(final_job("mus_late", "https://cdn/b.mp3"))  # a late artefact
    clock.advance(here.cache_seconds)
    record = await here.get_job_cached("mus_late")
    assert record is not None and record.outputs[0].audio_url == "https://cdn/b.mp3"


async def test_writes_through_this_store_are_seen_at_once(stores: Callable[..., Store]) -> None:
    store = stores(cache_seconds=60)
    await store.put_job(final_job("mus_own", "https://cdn/a.mp3"))
    assert await store.get_job_cached("mus_own") is not None  # cached

    def late_artefact(r: JobRecord) -> JobRecord:
        return msgspec.structs.replace(r, outputs=[Output(index=0, audio_url="https://cdn/b.mp3")])

    await store.update_job("mus_own", late_artefact)
    assert (await store.get_job_cached("mus_own")).outputs[0].audio_url.endswith("b.mp3")  # type: ignore[union-attr,operator]
    await store.delete_job("mus_own")
    assert await store.get_job_cached("mus_own") is None


async def test_in_flight_jobs_are_read_from_redis_every_time(stores: Callable[..., Store]) -> None:
    here, elsewhere = stores(cache_seconds=60), stores()
    record = msgspec.structs.replace(final_job("mus_busy", "u"), status="in_progress", outputs=[])
    await elsewhere.put_job(record)
    assert (await here.get_job_cached("mus_busy")).status == "in_progress"  # type: ignore[union-attr]
    await elsewhere.put_job(msgspec.structs.replace(record, progress=40))
    assert (await here.get_job_cached("mus_busy")).progress == 40  # type: ignore[union-attr]


async def test_concurrent_reads_of_one_job_share_one_read(stores: Callable[..., Store]) -> None:
    store = stores()
    record = msgspec.structs.replace(final_job("mus_hot", "u"), status="queued", outputs=[])
    await store.put_job(record)
    results = await asyncio.gather(*(store.get_job_cached("mus_hot") for _ in range(50)))
    assert results[0] == record
    assert all(r is results[0] for r in results)  # one decoded record: one Redis read


async def test_a_read_after_our_write_does_not_join_an_older_read(
    stores: Callable[..., Store],
) -> None:
    store = stores()
    queued = msgspec.structs.replace(final_job("mus_race", "u"), status="queued", outputs=[])
    await store.put_job(queued)
    earlier = asyncio.ensure_future(store.get_job_cached("mus_race"))
    await asyncio.sleep(0)  # one turn of the loop: that read is under way (not a timed wait)
    await store.put_job(msgspec.structs.replace(queued, status="in_progress"))
    assert (await store.get_job_cached("mus_race")).status == "in_progress"  # type: ignore[union-attr]
    await earlier


async def test_rendered_json_follows_the_record_object(stores: Callable[..., Store]) -> None:
    """A final job's JSON is kept per record object: the store's next record (a change
    elsewhere, the cache expiring) is rendered again; in-flight jobs always are."""
    from gateway.jobs.records import to_public
    from gateway.jobs.service import JobService

    store = stores(cache_seconds=60)
    jobs = JobService(store, [EchoProvider()], Settings.from_env({}))
    first = final_job("mus_r", "https://cdn/a.mp3")
    body = await jobs.render(first)
    assert msgspec.json.decode(body) == msgspec.to_builtins(to_public(first))
    assert await jobs.render(first) is body  # kept
    changed = msgspec.structs.replace(
        first, outputs=[Output(index=0, audio_url="https://cdn/b.mp3")]
    )
    assert b"https://cdn/b.mp3" in await jobs.render(changed)
    running = msgspec.structs.replace(first, status="in_progress", outputs=[])
    assert await jobs.render(running) is not await jobs.render(running)  # not kept
    assert msgspec.json.decode(await jobs.render(running))["status"] == "in_progress"


# ------------------------------------------------------------------ log line


def _request_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]
    return [ln for ln in lines if ln.get("event") == "request"]


async def test_canonical_line_fields_order_and_scrubbing(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(GATEWAY_REFRESH_INTERVAL="0", GATEWAY_BACKGROUND_REFRESH="off")
    async with app_client(create_app(settings, providers=[EchoProvider()])) as client:
        job = (await client.post("/v1/music/generate", json=BODY)).json()
        capsys.readouterr()
        # A client sending its own key as request id: echoed to it, never logged.
        r = await client.get(f"/v1/music/generate/{job['id']}", headers={"X-Request-ID": TEST_KEY})
        assert r.status_code == 200
    out = capsys.readouterr().err
    assert TEST_KEY not in out
    (line,) = _request_lines(out)
    assert list(line)[:6] == ["request_id", "method", "route", "status", "duration_ms", "event"]
    assert list(line)[-2:] == ["level", "timestamp"]
    assert line["request_id"] == "[REDACTED]" and line["status"] == 200
    assert line["job_id"] == job["id"] and line["key_id"].startswith("key_")
    # the refresh ran in a task of its own; its upstream time still reaches the line
    assert "upstream_ms" in line


async def test_canonical_line_goes_through_structlog_when_captured(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(GATEWAY_REFRESH_INTERVAL="0", GATEWAY_BACKGROUND_REFRESH="off")
    async with app_client(create_app(settings, providers=[EchoProvider()])) as client:
        with structlog.testing.capture_logs() as logs:
            assert (await client.get("/v1/models")).status_code == 200
    (line,) = [ln for ln in logs if ln["event"] == "request"]
    assert line["route"] == "/v1/models" and line["status"] == 200
