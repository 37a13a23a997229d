"""The MiniMax simulator speaks the native wire format: errors inside HTTP 200
(``base_resp``), the key check, the API's 2013 validation naming the field, real audio at
the asked ``audio_setting`` (hex inside the JSON, or a URL it serves itself for
``url_ttl``), knobs, stats and the concurrency limit."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import pytest

from providers.minimax.sim_config import BASE_RESP

from .conftest import KEY, Sim, probe

SONG = {"model": "music-2.6", "lyrics": "[Verse]\nla la", "prompt": "pop"}


async def post(sim: Sim, body: Any, key: str | None = KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(timeout=30) as c:
        return await c.post(f"{sim.url}/v1/music_generation", json=body, headers=headers)


def base(resp: httpx.Response) -> tuple[int, str]:
    doc = resp.json()["base_resp"]
    return doc["status_code"], doc["status_msg"]


async def test_the_key_is_checked_inside_a_200(mm_sim: Sim) -> None:
    missing = await post(mm_sim, SONG, key=None)
    assert missing.status_code == 200 and base(missing)[0] == 1004
    wrong = await post(mm_sim, SONG, key="nope")
    assert wrong.status_code == 200 and base(wrong) == (2049, "invalid api key")
    assert (await mm_sim.stats())["auth_failures"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "model"),
        ({**SONG, "model": "music-cover"}, "model"),
        ({**SONG, "prompt": "x" * 2001}, "prompt"),
        ({**SONG, "lyrics": "x" * 3501}, "lyrics"),
        ({**SONG, "lyrics": ""}, "lyrics"),
        ({"model": "music-2.6", "prompt": "pop"}, "lyrics"),
        ({"model": "music-2.6", "is_instrumental": True}, "prompt"),
        ({"model": "music-2.6", "is_instrumental": True, "prompt": ""}, "prompt"),
        ({**SONG, "is_instrumental": "yes"}, "is_instrumental"),
        ({**SONG, "output_format": "mp3"}, "output_format"),
        ({**SONG, "stream": True}, "stream"),
        ({**SONG, "audio_setting": {"sample_rate": 48000}}, "audio_setting.sample_rate"),
        ({**SONG, "audio_setting": {"bitrate": 320000}}, "audio_setting.bitrate"),
        ({**SONG, "audio_setting": {"format": "flac"}}, "audio_setting.format"),
        ({**SONG, "audio_setting": []}, "audio_setting"),
    ],
)
async def test_validation_like_the_api(mm_sim: Sim, body: dict[str, Any], field: str) -> None:
    resp = await post(mm_sim, body)
    code, message = base(resp)
    assert resp.status_code == 200 and code == 2013, resp.text
    assert message.startswith(f"invalid params, {field}:"), message
    stats = await mm_sim.stats()
    assert (stats["rejected"], stats["accepted"]) == (1, 0)


@pytest.mark.parametrize(
    ("setting", "container"),
    [
        ({"format": "mp3", "sample_rate": 44100, "bitrate": 128000}, "mp3"),
        ({"format": "mp3", "sample_rate": 16000, "bitrate": 256000}, "mp3"),
        ({"format": "wav", "sample_rate": 32000}, "wav"),
        (None, "mp3"),  # the API's defaults: hex, mp3 at 44.1 kHz
    ],
)
async def test_a_hex_answer_holds_real_audio(
    mm_sim: Sim, setting: dict[str, Any] | None, container: str
) -> None:
    body = {**SONG, **({"audio_setting": setting, "output_format": "hex"} if setting else {})}
    resp = await post(mm_sim, body)
    doc = resp.json()
    assert doc["base_resp"] == {"status_code": 0, "status_msg": "success"}
    assert doc["data"]["status"] == 2 and doc["analysis_info"] is None
    assert resp.headers["trace-id"] == doc["trace_id"]
    audio = bytes.fromhex(doc["data"]["audio"])
    extra = doc["extra_info"]
    rate = (setting or {}).get("sample_rate", 44100)
    assert extra["music_duration"] == 5000 and extra["music_size"] == len(audio)
    assert (extra["music_sample_rate"], extra["music_channel"]) == (rate, 2)
    got = probe(audio)
    assert got[:3] == (container, rate, 2) and got[3] == pytest.approx(5.0, rel=0.03)
    stats = await mm_sim.stats()
    assert stats["last_sha256"] == hashlib.sha256(audio).hexdigest()
    assert (stats["accepted"], stats["completed"]) == (1, 1)


async def test_a_url_answer_is_served_until_it_expires(mm_sim: Sim) -> None:
    resp = await post(mm_sim, {**SONG, "output_format": "url"})
    doc = resp.json()
    url = doc["data"]["audio"]
    assert url.startswith(f"{mm_sim.url}/files/{doc['trace_id']}.mp3?Expires=")
    async with httpx.AsyncClient() as c:
        got = await c.get(url)
        assert got.status_code == 200 and got.headers["content-type"] == "audio/mpeg"
        assert (
            int(got.headers["content-length"])
            == len(got.content)
            == doc["extra_info"]["music_size"]
        )
        assert probe(got.content)[3] == pytest.approx(5.0, rel=0.03)
        again = await c.get(url)
        assert again.content == got.content  # the same file each time
        sha = (await mm_sim.stats())["last_sha256"]
        assert sha == hashlib.sha256(got.content).hexdigest()
        assert (await c.get(url.replace(".mp3?", ".wav?"))).status_code == 404
        assert (await c.get(f"{mm_sim.url}/files/unknown.mp3")).status_code == 404
        await mm_sim.set(url_ttl=0.0)
        late = await post(mm_sim, {**SONG, "output_format": "url"})
        expired = await c.get(late.json()["data"]["audio"])
        assert expired.status_code == 403
    stats = await mm_sim.stats()
    assert (stats["downloads"], stats["expired_downloads"]) == (2, 1)


async def test_the_url_may_come_in_audio_url(mm_sim: Sim) -> None:
    await mm_sim.set(url_field="audio_url", trace_header=False)
    resp = await post(mm_sim, {**SONG, "output_format": "url"})
    data = resp.json()["data"]
    assert "audio" not in data and data["audio_url"].startswith(f"{mm_sim.url}/files/")
    assert "trace-id" not in resp.headers


@pytest.mark.parametrize("kind", sorted(BASE_RESP))
async def test_every_base_resp_fault(mm_sim: Sim, kind: str) -> None:
    await mm_sim.set(faults=[{"kind": kind, "retry_after": 4}])
    resp = await post(mm_sim, SONG)
    code, message = base(resp)
    assert resp.status_code == 200 and code == BASE_RESP[kind][0]
    assert message.startswith(BASE_RESP[kind][1])
    if kind != "output_sensitive":  # known after the generation: no Retry-After
        assert resp.headers["retry-after"] == "4"
    assert (await post(mm_sim, SONG)).json()["base_resp"]["status_code"] == 0  # one call


async def test_fault_options(mm_sim: Sim) -> None:
    await mm_sim.set(
        faults=[
            {"kind": "invalid_params", "field": "audio_setting.bitrate"},
            {"kind": "rate_limited", "status": 429, "message": "slow down"},
            {"kind": "http_error", "status": 503},
            {"kind": "unfinished"},
        ],
        echo_key_in_errors=True,
    )
    first = await post(mm_sim, SONG)
    assert base(first)[1].startswith("invalid params, audio_setting.bitrate: ")
    assert KEY in base(first)[1]  # echoed: the client must scrub it
    second = await post(mm_sim, SONG)
    assert second.status_code == 429 and base(second)[1].startswith("slow down")
    third = await post(mm_sim, SONG)
    assert third.status_code == 503 and third.headers["content-type"].startswith("text/plain")
    fourth = (await post(mm_sim, SONG)).json()
    assert fourth["data"] == {"audio": "", "status": 1}
    assert (await mm_sim.stats())["faults_injected"] == 4


async def test_malformed_and_cut_answers(mm_sim: Sim) -> None:
    for fmt in ("url", "hex"):
        await mm_sim.set(faults=[{"kind": "malformed"}])
        resp = await post(mm_sim, {**SONG, "output_format": fmt})
        assert resp.status_code == 200
        with pytest.raises(ValueError):
            resp.json()
    await mm_sim.set(faults=[{"kind": "disconnect", "after_bytes": 5000}], chunk_size=1024)
    with pytest.raises(httpx.HTTPError):
        await post(mm_sim, {**SONG, "output_format": "hex"})
    assert (await mm_sim.stats())["disconnects"] == 1


async def test_latency_and_the_concurrency_limit(mm_sim: Sim) -> None:
    await mm_sim.set(latency=0.5, max_concurrency=1)
    first = asyncio.create_task(post(mm_sim, {**SONG, "output_format": "url"}))
    await mm_sim.wait_for("in_flight", 1)
    busy = await post(mm_sim, SONG)
    assert base(busy)[0] == 1002
    assert base(await first)[0] == 0
    stats = await mm_sim.wait_for("in_flight", 0)
    assert (stats["rate_limited"], stats["max_in_flight"]) == (1, 1)


async def test_config_and_reset(mm_sim: Sim) -> None:
    async with httpx.AsyncClient() as c:
        bad = await c.post(f"{mm_sim.url}/__sim__/config", json={"latency_s": 1})
        assert bad.status_code == 400
        bad = await c.post(f"{mm_sim.url}/__sim__/config", json={"faults": [{"kind": "nope"}]})
        assert bad.status_code == 400
        assert (await c.post(f"{mm_sim.url}/__sim__/config", content=b"{")).status_code == 400
        got = (await c.get(f"{mm_sim.url}/__sim__/config")).json()
        assert got["api_key"] == KEY and got["length_ms"] == 5000
    await post(mm_sim, SONG)
    assert (await mm_sim.stats())["music_calls"] == 1
    await mm_sim.reset()
    stats = await mm_sim.stats()
    assert stats["music_calls"] == 0 and "last_body" not in stats
