"""The job round trip through Redis with the test-only provider: create, poll, callbacks."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec

from gateway.api.app import create_app
from gateway.jobs.records import decode_state
from gateway.store.store import JobRecord
from providers.base import UpstreamError
from tests.conftest import TEST_KEY, app_client
from tests.support.echo import EchoProvider, EchoState

URL = "/v1/music/generate"


async def _create(client: httpx.AsyncClient, **extra: Any) -> dict:
    r = await client.post(URL, json={"model": "echo/v1", "prompt": "lofi beat", **extra})
    assert r.status_code == 200, r.text
    return r.json()


async def test_round_trip_to_completed(echo_client: httpx.AsyncClient, echo: EchoProvider) -> None:
    job = await _create(echo_client, metadata={"user": "42"}, title="Night")
    assert job["object"] == "music"
    assert job["status"] == "queued"
    assert job["id"].startswith("mus_") and len(job["id"]) == 30
    assert job["provider"] == "echo" and job["model"] == "echo/v1"
    assert job["nativeResponseId"] == "echo-1"
    assert job["usage"] is None and job["error"] is None
    assert job["metadata"] == {"user": "42"}

    seen = []
    for _ in range(5):
        r = await echo_client.get(f"{URL}/{job['id']}")
        assert r.status_code == 200
        seen.append(r.json()["status"])
        if seen[-1] == "completed":
            break
    assert seen == ["in_progress", "completed"]
    done = r.json()
    assert done["progress"] == 100
    assert done["output"][0]["audio_url"] == "https://echo.test/echo-1.mp3"
    assert done["output"][0]["title"] == "Night"
    assert done["usage"] == {"output_audio_count": 1, "output_audio_seconds": 3.5}
    assert done["metadata"] == {"user": "42"}

    # Final: answered from Redis, zero upstream calls from now on.
    calls = echo.calls["fetch"]
    for _ in range(3):
        assert (await echo_client.get(f"{URL}/{job['id']}")).json() == done
    assert echo.calls["fetch"] == calls


async def test_record_is_msgpack_in_redis_with_retention(echo_client: httpx.AsyncClient) -> None:
    job = await _create(echo_client, format="wav")
    store = echo_client.app.state.store
    raw = await store.redis.get(store.job_key(job["id"]))
    record = msgspec.msgpack.decode(raw, type=JobRecord)
    assert record.model == "echo/v1" and record.format == "wav" and record.native_id == "echo-1"
    assert record.owner.startswith("key_")
    ttl = await store.redis.ttl(store.job_key(job["id"]))
    assert 30 * 86400 - 60 < ttl <= 30 * 86400


async def test_failed_job_carries_error(echo_client: httpx.AsyncClient) -> None:
    job = await _create(echo_client, echo={"fail": True, "steps": 1})
    r = (await echo_client.get(f"{URL}/{job['id']}")).json()
    assert r["status"] == "failed"
    assert r["error"] == {
        "code": "generation_failed",
        "message": "echo broke",
        "native_status": "BROKEN",
    }
    assert r["usage"] is None


async def test_unknown_native_status_is_never_completed(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    job = await _create(echo_client, echo={"mystery": True, "steps": 1})
    for _ in range(4):
        r = (await echo_client.get(f"{URL}/{job['id']}")).json()
        assert r["status"] == "in_progress"
        assert r["usage"] is None
    assert echo.calls["fetch"] == 4


async def test_failed_poll_answers_last_known_state(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    job = await _create(echo_client)
    echo.fetch_error = UpstreamError("boom", provider="echo", native_status=503)
    r = await echo_client.get(f"{URL}/{job['id']}")
    assert r.status_code == 200
    assert r.headers["x-gateway-stale"] == "true"
    assert r.json()["status"] == "queued" and r.json()["id"] == job["id"]
    echo.fetch_error = None
    r = await echo_client.get(f"{URL}/{job['id']}")
    assert "x-gateway-stale" not in r.headers
    assert r.json()["status"] == "in_progress"


async def test_upstream_error_on_create_maps_and_is_stored(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    echo.rate_limited = True
    r = await echo_client.post(URL, json={"model": "echo/v1", "prompt": "x"})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert r.json()["error"] == "upstream_rate_limited"
    store = echo_client.app.state.store
    keys = [k async for k in store.redis.scan_iter(match=f"{store.prefix}job:*")]
    assert len(keys) == 1
    record = msgspec.msgpack.decode(await store.redis.get(keys[0]), type=JobRecord)
    assert record.status == "failed" and record.error.code == "upstream_rate_limited"


async def test_provider_not_configured_is_503(make_settings: Any) -> None:
    app = create_app(make_settings(), providers=[EchoProvider(configured=False)])
    async with app_client(app, key=None) as client:
        r = await client.post(
            URL,
            json={"model": "echo/v1", "prompt": "x"},
            headers={"Authorization": f"Bearer {TEST_KEY}"},
        )
    assert r.status_code == 503
    assert r.json()["error"] == "provider_not_configured"


async def test_concurrent_polls_make_one_upstream_call(make_settings: Any) -> None:
    echo = EchoProvider()
    app = create_app(make_settings(GATEWAY_REFRESH_INTERVAL="30"), providers=[echo])
    async with app_client(app) as client:
        job = await _create(client)
        store = app.state.store
        # Make the job due now.
        await store.update_job(job["id"], lambda r: msgspec.structs.replace(r, refreshed_at=0.0))
        results = await asyncio.gather(*(client.get(f"{URL}/{job['id']}") for _ in range(20)))
        assert {r.status_code for r in results} == {200}
        assert echo.calls["fetch"] == 1
        # Within the interval every poll is served from the cache.
        await client.get(f"{URL}/{job['id']}")
        assert echo.calls["fetch"] == 1


async def test_callbacks_need_the_job_token(make_settings: Any) -> None:
    echo = EchoProvider()
    app = create_app(
        make_settings(GATEWAY_PUBLIC_URL="https://gw.example", GATEWAY_REFRESH_INTERVAL="60"),
        providers=[echo],
    )
    async with app_client(app) as client:
        job = await _create(client)
        record = await app.state.store.get_job(job["id"])
        url = decode_state(record, EchoState).callback
        assert url == f"https://gw.example/v1/callbacks/echo/{job['id']}/{record.callback_token}"
        path = url.removeprefix("https://gw.example")
        no_auth = {"Authorization": ""}

        wrong = await client.post(path[:-4] + "AAAA", content=b'{"step": 5}', headers=no_auth)
        assert wrong.status_code == 404 and wrong.json()["error"] == "not_found"
        other = await client.post(
            path.replace("/echo/", "/musicgpt/"), content=b'{"step": 5}', headers=no_auth
        )
        assert other.status_code == 404
        assert (await client.get(f"{URL}/{job['id']}")).json()["status"] == "queued"

        bad = await client.post(path, content=b"{nope", headers=no_auth)
        assert bad.status_code == 400 and bad.json()["error"] in {"invalid_json", "bad_request"}
        not_ours = await client.post(path, content=b'{"step": "x"}', headers=no_auth)
        assert not_ours.status_code == 400 and not_ours.json()["error"] == "invalid_callback"

        ok = await client.post(path, content=b'{"step": 1}', headers=no_auth)
        assert ok.status_code == 200 and ok.json() == {"ok": True, "status": "in_progress"}
        ok = await client.post(path, content=b'{"step": 2}', headers=no_auth)
        assert ok.json()["status"] == "completed"
        # Late, out-of-order and duplicate callbacks never move the status back.
        for step in (1, 0, 2):
            late = await client.post(path, content=f'{{"step": {step}}}'.encode(), headers=no_auth)
            assert late.json()["status"] == "completed"
        final = (await client.get(f"{URL}/{job['id']}")).json()
        assert final["status"] == "completed" and final["output"][0]["audio_url"]
        assert echo.calls["fetch"] == 0  # everything came from callbacks


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count(echo_client: httpx.AsyncClient, echo: EchoProvider) -> None:
    job = await _create(echo_client)
    for _ in range(2):
        await echo_client.get(f"{URL}/{job['id']}")
    await echo_client.get("/v1/music/generate/mus_missing")
    r = await echo_client.get("/metrics", headers={"Authorization": ""})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    route = "/v1/music/generate/{music_id}"
    assert (
        _metric(text, "gateway_http_requests_total", route=route, method="GET", status="200") == 2
    )
    assert (
        _metric(text, "gateway_http_requests_total", route=route, method="GET", status="404") == 1
    )
    assert _metric(text, "gateway_jobs_created_total", provider="echo") == 1
    assert _metric(text, "gateway_jobs_finished_total", provider="echo", status="completed") == 1
    assert (
        _metric(
            text, "gateway_upstream_calls_total", provider="echo", operation="fetch", outcome="ok"
        )
        == 2
    )
    assert (
        _metric(
            text, "gateway_upstream_calls_total", provider="echo", operation="submit", outcome="ok"
        )
        == 1
    )
    assert "gateway_http_request_duration_seconds_bucket" in text
    assert "gateway_upstream_call_duration_seconds_bucket" in text
    assert "mus_missing" not in text  # route templates only: no ids in labels


async def test_create_writes_twice_and_reads_nothing_between(
    echo_client: httpx.AsyncClient,
) -> None:
    """The record is written before the upstream call and completed after it by a
    compare-and-set against the bytes written first: two round trips to one Redis, no
    read of the job in between."""
    await _create(echo_client)  # the key record is cached from here on
    redis = echo_client.app.state.store.redis
    trips: list[list[tuple[Any, ...]]] = []  # the commands of each round trip
    execute, make_pipeline = redis.execute_command, redis.pipeline

    async def alone(*args: Any, **options: Any) -> Any:
        trips.append([args])
        return await execute(*args, **options)

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe, queue = make_pipeline(*args, **kwargs), []
        queue_command, pipe_execute = pipe.execute_command, pipe.execute

        def queued(*command: Any, **options: Any) -> Any:
            queue.append(command)
            return queue_command(*command, **options)

        async def run(*a: Any, **kw: Any) -> Any:
            trips.append(queue)
            return await pipe_execute(*a, **kw)

        pipe.execute_command, pipe.execute = queued, run
        return pipe

    redis.execute_command, redis.pipeline = alone, pipeline
    try:
        job = await _create(echo_client)
    finally:
        del redis.execute_command, redis.pipeline
    touching = [
        [c[0] for c in trip if any(job["id"] in str(a) for a in c)]
        for trip in trips
        if any(job["id"] in str(a) for c in trip for a in c)
    ]
    # schedule, record and admission (open_job), then the compare-and-set: never a read
    # (then the echo provider's native id is indexed for its account-level callbacks)
    assert touching == [["ZADD", "SET", "EVAL"], ["EVAL"], ["SET"]]
    assert job["nativeResponseId"] is not None


async def test_create_keeps_a_write_that_lands_during_the_upstream_call(
    echo_client: httpx.AsyncClient, echo: EchoProvider
) -> None:
    """Another process's write between the two (e.g. the provider's callback) is kept:
    the compare-and-set finds other bytes and applies the answer on top of them."""
    store = echo_client.app.state.store
    submit = echo.start

    async def racing(req: Any) -> Any:
        assert req.callback is None
        job_id = next(iter(await store.redis.keys(f"{store.prefix}job:*"))).decode()
        job_id = job_id.removeprefix(f"{store.prefix}job:").strip("{}")

        def elsewhere(record: JobRecord) -> JobRecord:
            record.metadata = {"written": "meanwhile"}
            record.version += 1
            return record

        assert await store.update_job(job_id, elsewhere) is not None
        return await submit(req)

    echo.start = racing  # type: ignore[method-assign]
    job = await _create(echo_client)
    assert job["metadata"] == {"written": "meanwhile"}
    assert job["nativeResponseId"] is not None
    raw = await store.redis.get(store.job_key(job["id"]))
    record = msgspec.msgpack.decode(raw, type=JobRecord)
    assert record.metadata == {"written": "meanwhile"} and record.native_id is not None
    assert not record.submitting
