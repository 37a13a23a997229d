"""The simulator's native wire format and control surface, spoken to with plain httpx."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from providers.simulator_media import MP3_BYTES, WAV_BYTES
from tests.support.waiting import eventually

from .conftest import KEY, Sim

AUTH = {"Authorization": KEY}


async def call(method: str, url: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient() as c:
        return await c.request(method, url, **kw)


async def create(sim: Sim, body: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
    kw.setdefault("headers", AUTH)
    return await call("POST", f"{sim.url}/v2/MusicAI", json=body or {"prompt": "hi"}, **kw)


async def by_id(sim: Sim, **params: str) -> httpx.Response:
    params.setdefault("conversionType", "MUSIC_AI")
    return await call("GET", f"{sim.url}/v1/byId", params=params, headers=AUTH)


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, 401), ({"Authorization": f"Bearer {KEY}"}, 403), ({"Authorization": "nope"}, 403)],
)
async def test_authorization_is_the_raw_key(
    mg_sim: Sim, headers: dict[str, str], code: int
) -> None:
    resp = await create(mg_sim, headers=headers)
    assert resp.status_code == code
    body = resp.json()
    assert body["success"] is False and body["error"]
    assert KEY not in resp.text
    assert (await mg_sim.stats())["auth_failures"] == 1


async def test_create_answer_shape(mg_sim: Sim) -> None:
    resp = await create(mg_sim, {"prompt": "hi", "model": "v7-pro", "unknown_field": 1})
    assert resp.status_code == 200
    body = resp.json()
    assert body["success"] is True and body["is_flagged"] is False
    assert body["task_id"] and body["conversion_id_1"] and body["conversion_id_2"]
    assert body["conversion_id_1"] != body["conversion_id_2"]
    assert isinstance(body["eta"], int) and body["message"] == "Message published to queue"


@pytest.mark.parametrize("body", [{}, {"prompt": ""}, {"prompt": "x", "model": "v99"}, [1, 2]])
async def test_create_rejects_bad_bodies(mg_sim: Sim, body: Any) -> None:
    resp = await call("POST", f"{mg_sim.url}/v2/MusicAI", json=body, headers=AUTH)
    assert resp.status_code == 400 and resp.json()["success"] is False


async def test_deprecated_v1_create_has_no_model(mg_sim: Sim) -> None:
    resp = await call(
        "POST", f"{mg_sim.url}/v1/MusicAI", json={"prompt": "x", "model": "ignored"}, headers=AUTH
    )
    assert resp.status_code == 200 and resp.json()["task_id"]


async def test_by_id_lookup_rules(mg_sim: Sim) -> None:
    created = (await create(mg_sim)).json()
    task, cid = created["task_id"], created["conversion_id_2"]
    assert (await by_id(mg_sim, task_id=task)).json()["conversion"]["task_id"] == task
    assert (await by_id(mg_sim, conversion_id=cid)).json()["conversion"]["task_id"] == task
    assert (await by_id(mg_sim, task_id=task, conversion_id=cid)).status_code == 400
    assert (await by_id(mg_sim)).status_code == 400
    assert (await by_id(mg_sim, task_id=task, conversionType="COVER")).status_code == 400
    missing = await by_id(mg_sim, task_id="00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json() == {
        "success": False,
        "error": "Conversion not found",
    }


async def test_progression_and_media(mg_sim: Sim) -> None:
    await mg_sim.set(queue_seconds=1.0, progress_seconds=0.5)  # wide windows: CI is slow
    task = (await create(mg_sim)).json()["task_id"]
    first = (await by_id(mg_sim, task_id=task)).json()["conversion"]
    assert first["status"] == "IN_QUEUE" and first["conversion_path_1"] == ""

    async def completed() -> dict[str, Any] | None:
        conv = (await by_id(mg_sim, task_id=task)).json()["conversion"]
        return conv if conv["status"] == "COMPLETED" else None

    conv = await eventually(completed, what="the conversion completed")
    assert conv["status"] == "COMPLETED"
    mp3 = await call("GET", conv["conversion_path_1"])
    wav = await call("GET", conv["conversion_path_wav_2"])
    assert (mp3.status_code, mp3.content) == (200, MP3_BYTES)
    assert (wav.status_code, wav.content) == (200, WAV_BYTES)
    assert (await call("GET", f"{mg_sim.url}/media/{task}/nope.mp3")).status_code == 404
    assert (await call("GET", f"{mg_sim.url}/media/unknown/x.mp3")).status_code == 404


async def test_download_faults(mg_sim: Sim) -> None:
    await mg_sim.set(queue_seconds=0, progress_seconds=0)
    task = (await create(mg_sim)).json()["task_id"]
    url = (await by_id(mg_sim, task_id=task)).json()["conversion"]["conversion_path_1"]
    await mg_sim.set(faults=[{"status": 500, "endpoints": ["download"], "count": 1}])
    assert (await call("GET", url)).status_code == 500
    assert (await call("GET", url)).status_code == 200
    assert (await mg_sim.stats())["download_calls"] == 2


async def test_config_is_a_partial_update(mg_sim: Sim) -> None:
    doc = await mg_sim.set(legacy_shape=True)
    assert doc["legacy_shape"] is True and doc["api_key"] == KEY
    assert mg_sim.config.legacy_shape is True  # the shared object changed too
    bad = await call("POST", f"{mg_sim.url}/__sim__/config", json={"legacy_shap": True})
    assert bad.status_code == 400
    bad = await call("POST", f"{mg_sim.url}/__sim__/config", json={"queue_seconds": "soon"})
    assert bad.status_code == 400
    got = (await call("GET", f"{mg_sim.url}/__sim__/config")).json()
    assert got["legacy_shape"] is True and got["queue_seconds"] == 0.15


async def test_stats_and_reset(mg_sim: Sim) -> None:
    await mg_sim.set(queue_seconds=0, progress_seconds=0)
    await create(mg_sim)
    await create(mg_sim, {"prompt": "failme"})
    await create(mg_sim, {"prompt": "flagme"})
    stats = await mg_sim.stats()
    assert stats["creates_accepted"] == 2 and stats["creates_flagged"] == 1
    assert stats["jobs_by_final_state"] == {"COMPLETED": 1, "ERROR": 1, "FAILED": 1}
    assert stats["jobs_total"] == 3 and stats["jobs_active"] == 0
    for key in (
        "status_calls",
        "byid_calls",
        "download_calls",
        "callbacks_sent",
        "callbacks_failed",
    ):
        assert stats[key] == 0
    reset = (await call("POST", f"{mg_sim.url}/__sim__/reset")).json()
    assert reset["jobs_total"] == 0 and reset["creates_accepted"] == 0


async def test_string_numbers_knob(mg_sim: Sim) -> None:
    await mg_sim.set(queue_seconds=0, progress_seconds=0, string_numbers=True)
    body = (await create(mg_sim)).json()
    assert body["eta"] == "0"
    conv = (await by_id(mg_sim, task_id=body["task_id"])).json()["conversion"]
    assert conv["conversion_duration_1"] == "1.0"


async def test_task_timeline_in_epoch_seconds(mg_sim: Sim) -> None:
    await mg_sim.set(queue_seconds=0.2, progress_seconds=0.3)
    before = time.time()
    task_id = (await create(mg_sim)).json()["task_id"]
    after = time.time()
    doc = (await call("GET", f"{mg_sim.url}/__sim__/tasks/{task_id}")).json()
    assert doc["task_id"] == task_id and doc["phase"] == "queued"
    assert before <= doc["created_at"] <= after
    assert doc["started_at"] == pytest.approx(doc["created_at"] + 0.2)
    assert doc["final_at"] == pytest.approx(doc["created_at"] + 0.5)
    # the byId answer turns COMPLETED at final_at, not before
    while time.time() < doc["final_at"] - 0.05:
        conv = (await by_id(mg_sim, task_id=task_id)).json()["conversion"]
        answered = time.time()  # the simulator read its clock before this
        assert conv["status"] != "COMPLETED" or answered >= doc["final_at"], conv
        await asyncio.sleep(0.02)
    await asyncio.sleep(max(0.0, doc["final_at"] - time.time()) + 0.01)
    assert (await by_id(mg_sim, task_id=task_id)).json()["conversion"]["status"] == "COMPLETED"
    assert (await call("GET", f"{mg_sim.url}/__sim__/tasks/{task_id}")).json()["phase"] == (
        "completed"
    )
    missing = await call("GET", f"{mg_sim.url}/__sim__/tasks/nope")
    assert missing.status_code == 404


async def test_seeded_tasks_answer_by_id_without_counting_creates(mg_sim: Sim) -> None:
    resp = await call("POST", f"{mg_sim.url}/__sim__/tasks", json={"count": 3, "queue_seconds": 60})
    assert resp.status_code == 200
    tasks = resp.json()["tasks"]
    assert len(tasks) == 3 and len({t[0] for t in tasks}) == 3
    task_id, _, cid2 = tasks[0]
    conv = (await by_id(mg_sim, task_id=task_id)).json()["conversion"]
    assert conv["status"] == "IN_QUEUE" and conv["task_id"] == task_id
    assert (await by_id(mg_sim, conversion_id=cid2)).json()["conversion"]["task_id"] == task_id
    stats = await mg_sim.stats()
    assert stats["create_calls"] == 0 and stats["jobs_total"] == 3 and stats["jobs_active"] == 3
    assert stats["status_calls"] == 2
    # the configured timings unless the body gives its own
    await mg_sim.set(queue_seconds=0, progress_seconds=0)
    (task_id, *_), *_ = (await call("POST", f"{mg_sim.url}/__sim__/tasks", json={})).json()["tasks"]
    assert (await by_id(mg_sim, task_id=task_id)).json()["conversion"]["status"] == "COMPLETED"


@pytest.mark.parametrize(
    "body", [{"count": 0}, {"count": 200_001}, {"count": "many"}, {"counts": 2}, [1]]
)
async def test_seeding_rejects_bad_bodies(mg_sim: Sim, body: Any) -> None:
    resp = await call("POST", f"{mg_sim.url}/__sim__/tasks", json=body)
    assert resp.status_code == 400 and resp.json()["success"] is False
    assert (await mg_sim.stats())["jobs_total"] == 0
