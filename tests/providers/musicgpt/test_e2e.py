"""End to end: client -> gateway (real HTTP) -> MusicGPT simulator (real HTTP) -> back.

The gateway is built with ``create_app(Settings.from_env(env))`` (``make_settings``) on the
session's real Redis, with the provider pointed at the simulator and, for the callback
tests, ``GATEWAY_PUBLIC_URL`` pointed at the served gateway itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from providers.simulator_media import MP3_BYTES, PNG_BYTES, WAV_BYTES
from tests.support.servers import free_port, serve
from tests.support.waiting import TIMEOUT, eventually

from .conftest import KEY, Sim

GW_KEY = "sk-e2e-musicgpt-0001"
URL = "/v1/music/generate"


@contextlib.asynccontextmanager
async def gateway(
    make_settings: Callable[..., Settings], sim: Sim, *, public: bool = False, **env: str
) -> AsyncIterator[httpx.AsyncClient]:
    """Serve a gateway on loopback; yield a client authenticated with a gateway key."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "GATEWAY_API_KEYS": GW_KEY,
        "MUSICGPT_API_KEY": KEY,
        "MUSICGPT_BASE_URL": sim.url,
        "MUSICGPT_READ_TIMEOUT": "1.5",  # loopback answers in ms; the latency knob is far beyond
        "GATEWAY_REFRESH_INTERVAL": "0",
        **({"GATEWAY_PUBLIC_URL": base} if public else {}),
        **env,
    }
    app = create_app(make_settings(**env))
    with serve(app, port=port):
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {GW_KEY}"}, timeout=10
        ) as client:
            yield client


async def create_job(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("model", "musicgpt/v7")
    body.setdefault("prompt", "a bright synth-pop song about loopback interfaces")
    r = await client.post(URL, json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def poll(
    client: httpx.AsyncClient,
    job_id: str,
    until: Callable[[dict[str, Any]], bool],
    timeout: float = TIMEOUT,
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        r = await client.get(f"{URL}/{job_id}")
        assert r.status_code == 200, r.text
        seen.append(r.json())
        if until(seen[-1]):
            return seen
        assert time.monotonic() < deadline, f"timed out: {seen[-1]}"
        await asyncio.sleep(0.05)


def final(job: dict[str, Any]) -> bool:
    return job["status"] in ("completed", "failed")


async def fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as c:
        return await c.get(url)


async def test_polling_queued_in_progress_completed(make_settings: Any, mg_sim: Sim) -> None:
    # Phases long enough that a slow first poll (cold start, busy CI) still sees them.
    await mg_sim.set(queue_seconds=0.3, progress_seconds=1.5)
    async with gateway(make_settings, mg_sim) as client:
        job = await create_job(client, style="synth-pop", metadata={"run": "e2e"})
        assert job["status"] == "queued" and job["provider"] == "musicgpt"
        assert job["model"] == "musicgpt/v7" and job["nativeResponseId"]
        assert job["object"] == "music" and job["id"].startswith("mus_")
        seen = await poll(client, job["id"], final)
        statuses = [j["status"] for j in seen]
        assert "in_progress" in statuses and statuses[-1] == "completed"
        done = seen[-1]
        assert done["metadata"] == {"run": "e2e"} and done["progress"] == 100
        assert done["usage"] == {"output_audio_count": 2, "output_audio_seconds": 2.0}
        assert [o["index"] for o in done["output"]] == [0, 1]
        for out in done["output"]:
            assert out["tags"] == "synth-pop" and out["duration"] == 1.0 and out["title"]
            r = await fetch(out["audio_url"])
            assert r.status_code == 200 and r.content == MP3_BYTES
        calls = (await mg_sim.stats())["status_calls"]
        again = (await client.get(f"{URL}/{job['id']}")).json()
        assert again["status"] == "completed"
        assert (await mg_sim.stats())["status_calls"] == calls  # final: served from Redis
        assert KEY not in str(seen)


async def test_wav_cover_and_native_block(make_settings: Any, mg_sim: Sim) -> None:
    async with gateway(make_settings, mg_sim) as client:
        job = await create_job(
            client, format="wav", musicgpt={"generate_album_cover": True, "gender": "female"}
        )
        done = (await poll(client, job["id"], final))[-1]
        assert done["status"] == "completed"
        for out in done["output"]:
            assert (await fetch(out["audio_url"])).content == WAV_BYTES
            assert (await fetch(out["image_url"])).content == PNG_BYTES


async def test_callbacks_alone_complete_the_job_out_of_order_and_duplicated(
    make_settings: Any, mg_sim: Sim
) -> None:
    await mg_sim.set(callback_order="shuffle", callback_duplicates=1, seed=3)
    # A refresh interval of an hour: every GET is answered from Redis, never upstream.
    async with gateway(
        make_settings, mg_sim, public=True, GATEWAY_REFRESH_INTERVAL="3600"
    ) as client:
        job = await create_job(
            client, musicgpt={"generate_album_cover": True, "lyrics_timestamps": True}
        )
        done = (await poll(client, job["id"], final))[-1]
        assert done["status"] == "completed"

        async def all_answered() -> dict[str, Any] | None:  # the duplicates still in flight
            stats = await mg_sim.stats()
            return stats if stats["callbacks_sent"] + stats["callbacks_failed"] >= 14 else None

        stats = await eventually(all_answered, what="14 callbacks answered")
        assert stats["callbacks_sent"] == 14 and stats["callbacks_failed"] == 0  # 7 x 2
        assert stats["status_calls"] == 0
        done = (await client.get(f"{URL}/{job['id']}")).json()
        for out in done["output"]:
            assert out["audio_url"] and out["stream_audio_url"] and out["image_url"]
            assert (await fetch(out["audio_url"])).content == MP3_BYTES
        assert done["usage"]["output_audio_count"] == 2


async def test_wrong_token_is_404_and_changes_nothing(make_settings: Any, mg_sim: Sim) -> None:
    await mg_sim.set(callbacks=False, queue_seconds=5)
    async with gateway(
        make_settings, mg_sim, public=True, GATEWAY_REFRESH_INTERVAL="3600"
    ) as client:
        job = await create_job(client)
        r = await client.get(
            f"{mg_sim.url}/v1/byId",
            params={"conversionType": "MUSIC_AI", "task_id": job["nativeResponseId"]},
            headers={"Authorization": KEY},
        )
        webhook = r.json()["conversion"]["webhook_url"]  # what MusicGPT would call
        assert webhook.startswith(str(client.base_url)) and job["id"] in webhook
        cid = job["output"][0]["id"]
        body = {
            "subtype": "music_ai",
            "task_id": job["nativeResponseId"],
            "conversion_id": cid,
            "conversion_path": f"{mg_sim.url}/media/{job['nativeResponseId']}/{cid}.mp3",
            "conversion_duration": "1.0",
        }
        wrong = webhook.rsplit("/", 1)[0] + "/not-the-token"
        async with httpx.AsyncClient() as anon:
            r = await anon.post(wrong, json=body)
            assert r.status_code == 404
            after = (await client.get(f"{URL}/{job['id']}")).json()
            assert after["status"] == "queued" and after["output"][0].get("audio_url") is None
            r = await anon.post(webhook, json=body)
            assert r.status_code == 200 and r.json()["status"] == "in_progress"
            r = await anon.post(webhook, content=b"{not json")
            assert r.status_code == 400
        after = (await client.get(f"{URL}/{job['id']}")).json()
        assert after["status"] == "in_progress"
        assert after["output"][0]["audio_url"] == body["conversion_path"]
        assert after["output"][0]["duration"] == 1.0


async def test_failed_and_flagged_jobs(make_settings: Any, mg_sim: Sim) -> None:
    async with gateway(make_settings, mg_sim) as client:
        job = await create_job(client, prompt="failme please")
        done = (await poll(client, job["id"], final))[-1]
        assert done["status"] == "failed" and done.get("usage") is None
        assert done["error"]["code"] == "generation_failed"
        assert done["error"]["native_status"] == "ERROR"
        flagged = await create_job(client, prompt="flagme: something forbidden")
        assert flagged["status"] == "failed"
        assert flagged["error"]["code"] == "content_flagged"
        assert flagged["error"]["message"] == "Prompt violates the content policy"


CREATE_FAULTS = [
    ({"status": 400, "message": "prompt too long"}, 400, "upstream_rejected"),
    ({"status": 422}, 400, "upstream_rejected"),
    ({"status": 401}, 502, "upstream_auth_error"),
    ({"status": 403, "body_style": "message"}, 502, "upstream_auth_error"),
    ({"status": 402}, 402, "upstream_insufficient_credits"),
    ({"status": 429}, 429, "upstream_rate_limited"),
    ({"status": 500, "body_style": "detail"}, 502, "upstream_error"),
    # A 200 we cannot read, or no answer in time: the job may exist upstream, so it is
    # never re-sent; without a callback URL to reconcile with, it fails at once.
    ({"malformed": True}, 504, "upstream_outcome_unknown"),
    ({"latency": 5.0}, 504, "upstream_outcome_unknown"),
]


async def test_each_fault_knob_maps_to_the_client_error(make_settings: Any, mg_sim: Sim) -> None:
    async with gateway(make_settings, mg_sim) as client:
        for fault, status, code in CREATE_FAULTS:
            await mg_sim.set(faults=[{**fault, "endpoints": ["create"], "count": 1}])
            r = await client.post(URL, json={"model": "musicgpt/v7", "prompt": "x"})
            assert (r.status_code, r.json()["error"]) == (status, code), (fault, r.text)
            assert KEY not in r.text
            if status == 429:
                assert r.headers.get("Retry-After")
        await mg_sim.set(faults=[{"status": 401, "message": f"bad key {KEY}", "count": 1}])
        r = await client.post(URL, json={"model": "musicgpt/v7", "prompt": "x"})
        assert r.status_code == 502 and KEY not in r.text


async def test_status_poll_failure_answers_last_snapshot(make_settings: Any, mg_sim: Sim) -> None:
    async with gateway(make_settings, mg_sim) as client:
        job = await create_job(client)
        await mg_sim.set(faults=[{"status": 500, "endpoints": ["status"]}])
        r = await client.get(f"{URL}/{job['id']}")
        assert r.status_code == 200 and r.headers.get("X-Gateway-Stale") == "true"
        assert r.json()["status"] == "queued"
        await mg_sim.set(faults=[])
        done = (await poll(client, job["id"], final))[-1]
        assert done["status"] == "completed"


async def test_every_model_reaches_the_simulator(make_settings: Any, mg_sim: Sim) -> None:
    async with gateway(make_settings, mg_sim) as client:
        natives = ("v6", "v6-pro", "v7", "v7-pro")
        jobs = {m: await create_job(client, model=f"musicgpt/{m}") for m in natives}
        for native, job in jobs.items():
            assert job["model"] == f"musicgpt/{native}"
            done = (await poll(client, job["id"], final))[-1]
            assert done["status"] == "completed"
            r = await client.get(
                f"{mg_sim.url}/v1/byId",
                params={"conversionType": "MUSIC_AI", "task_id": job["nativeResponseId"]},
                headers={"Authorization": KEY},
            )
            assert r.json()["conversion"]["model"] == native  # the catalog's native model
