"""End to end: client -> gateway (real HTTP) -> MiniMax simulator (real HTTP) -> the
artefact store (the simulator's URL copied at once, or its hex decoded) -> the job's
signed ``audio_url`` -> back; and every status and error row of the README's MiniMax
table, each asserted on both sides (the job, the simulator's counters)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest

from gateway.infra.settings import Settings
from providers.minimax.simulator import create_simulator
from tests.support.audio import probe
from tests.support.servers import serve

from .conftest import DEFAULTS, LYRICS, PROMPT, Sim
from .e2e import MODEL, download, final, gateway, sha


@pytest.fixture(scope="module")
def sim_server() -> Iterator[Sim]:
    config = msgspec.structs.replace(DEFAULTS)
    with serve(create_simulator(config)) as url:
        yield Sim(url=url, config=config)


@pytest.fixture
async def sim(sim_server: Sim) -> Sim:
    await sim_server.reset()
    return sim_server


@pytest.fixture(params=["file", "s3"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The artefact store: the default folder (under the data dir), or S3 (rclone)."""
    if request.param == "file":
        return {}
    s3 = request.getfixturevalue("s3_server")
    return {**s3.env(), "GATEWAY_ARTEFACT_STORE": f"s3://artefacts/mm{secrets.token_hex(4)}"}


# ------------------------------------------------------------------ the happy paths


@pytest.mark.parametrize("output_format", ["url", "hex"])
async def test_the_song_is_stored_at_once_and_served_signed(
    make_settings: Callable[..., Settings],
    sim: Sim,
    store_env: dict[str, str],
    tmp_path: Path,
    output_format: str,
) -> None:
    async with gateway(make_settings, sim, **store_env) as gw:
        r = await gw.create(lyrics=LYRICS, minimax={"output_format": output_format})
        job = r.json()
        assert job["status"] == "completed", job
        assert (job["provider"], job["model"], job["progress"], job["error"]) == (
            "minimax",
            MODEL,
            100,
            None,
        )
        stats = await sim.stats()
        assert (stats["music_calls"], stats["completed"]) == (1, 1)
        # URL answers: the gateway copied the audio at once, from the simulator's route
        assert stats["downloads"] == (1 if output_format == "url" else 0)
        sent = msgspec.json.decode(stats["last_body"])
        assert (sent["lyrics"], sent["is_instrumental"], sent["output_format"]) == (
            LYRICS,
            False,
            output_format,
        )
        assert job["nativeResponseId"] == stats["last_trace_id"]
        [out] = job["output"]
        assert (out["index"], out["id"], out["duration"]) == (0, stats["last_trace_id"], 5.0)
        url = out["audio_url"]
        assert not url.startswith(sim.url)  # never the provider's URL, which dies in 24 h
        if store_env:
            assert url.startswith(store_env["AWS_ENDPOINT_URL"]) and "X-Amz-Signature=" in url
            assert f"/{job['id']}/0.mp3" in urlsplit(url).path
        else:
            assert url.startswith(f"{gw.base}/v1/artefacts/{job['id']}/0.mp3?exp=")
            stored = tmp_path / "data" / "artefacts" / job["id"] / "0.mp3"
            assert sha(stored.read_bytes()) == stats["last_sha256"]
        audio = await download(url)
        assert audio.status_code == 200 and audio.headers["content-type"].startswith("audio/mpeg")
        assert sha(audio.content) == stats["last_sha256"]  # byte for byte as MiniMax gave it
        again = await gw.get(job["id"])
        assert again["status"] == "completed" and again["output"][0]["id"] == out["id"]
        stats = await sim.stats()
        assert stats["music_calls"] == 1 and stats["downloads"] == (output_format == "url")


async def test_respond_async_answers_queued_then_completes(
    make_settings: Callable[..., Settings], sim: Sim
) -> None:
    await sim.set(latency=0.5)
    async with gateway(make_settings, sim) as gw:
        r = await gw.create(prefer="respond-async")
        assert r.headers["preference-applied"] == "respond-async"
        job = r.json()
        assert job["status"] == "queued" and job["output"] == []
        seen = await gw.poll(job["id"], final)
        statuses = [j["status"] for j in seen]
        assert statuses[-1] == "completed" and "failed" not in statuses
        assert seen[-1]["nativeResponseId"] == (await sim.stats())["last_trace_id"]
        sent = msgspec.json.decode((await sim.stats())["last_body"])
        assert (sent["prompt"], sent["is_instrumental"]) == (PROMPT, True)


@pytest.mark.parametrize(
    ("fmt", "container", "codec", "native"),
    [
        ("mp3", "mp3", "mp3", "mp3"),
        ("wav", "wav", "pcm_s16le", "wav"),
        ("ogg", "ogg", "opus", "mp3"),
        ("aac", "aac", "aac", "mp3"),
    ],
)
async def test_each_format_is_served_decodable(
    make_settings: Callable[..., Settings],
    sim: Sim,
    fmt: str,
    container: str,
    codec: str,
    native: str,
) -> None:
    async with gateway(make_settings, sim) as gw:
        job = (await gw.create(format=fmt)).json()
        assert job["status"] == "completed", job
        stats = await sim.stats()
        assert msgspec.json.decode(stats["last_body"])["audio_setting"]["format"] == native
        url = job["output"][0]["audio_url"]
        assert urlsplit(url).path == f"/v1/artefacts/{job['id']}/0.{fmt}"
        audio = await download(url)
        got = probe(audio.content)
        assert got[:2] == (container, codec), got
        assert abs(got[2] - 5.0) <= 0.25, got
        if fmt == native:
            assert sha(audio.content) == stats["last_sha256"]


# -------------------------------------------------------------- the error rows

FAILED_ROWS = [
    ({"kind": "auth_failed"}, "upstream_auth_error", "1004"),
    ({"kind": "invalid_api_key"}, "upstream_auth_error", "invalid api key"),
    ({"kind": "insufficient_balance"}, "upstream_insufficient_credits", "insufficient balance"),
    ({"kind": "input_sensitive"}, "upstream_rejected", "input new_sensitive"),
    ({"kind": "output_sensitive"}, "upstream_rejected", "output new_sensitive"),
    ({"kind": "invalid_params", "field": "lyrics"}, "upstream_rejected", "rejected lyrics"),
    ({"kind": "unknown_error"}, "upstream_error", "unknown error"),
    ({"kind": "http_error"}, "upstream_error", "answered 500"),
    ({"kind": "unfinished"}, "upstream_outcome_unknown", "data.status 1"),
    ({"kind": "malformed"}, "upstream_outcome_unknown", "unreadable answer"),
    ({"kind": "disconnect", "after_bytes": 20000}, "upstream_outcome_unknown", "call failed"),
]


@pytest.mark.parametrize(("fault", "code", "words"), FAILED_ROWS)
async def test_each_error_fails_the_job_once_with_its_code(
    make_settings: Callable[..., Settings],
    sim: Sim,
    fault: dict[str, Any],
    code: str,
    words: str,
) -> None:
    await sim.set(faults=[fault], chunk_size=4096)
    async with gateway(make_settings, sim) as gw:
        job = (await gw.create(minimax={"output_format": "hex"})).json()
        assert job["status"] == "failed", job
        assert job["error"]["code"] == code and words in job["error"]["message"], job["error"]
        assert job["output"] == []
        stats = await sim.stats()
        assert (stats["music_calls"], stats["faults_injected"]) == (1, 1)  # never re-sent
        again = await gw.get(job["id"])
        assert again["status"] == "failed" and again["error"] == job["error"]
        assert (await sim.stats())["music_calls"] == 1


async def test_content_policy_keeps_the_native_message(
    make_settings: Callable[..., Settings], sim: Sim
) -> None:
    said = "the lyrics mention a real person"
    await sim.set(faults=[{"kind": "input_sensitive", "message": said}])
    async with gateway(make_settings, sim) as gw:
        job = (await gw.create()).json()
        assert job["status"] == "failed" and job["error"]["code"] == "upstream_rejected"
        assert "content policy" in job["error"]["message"] and said in job["error"]["message"]


@pytest.mark.parametrize("kind", ["rate_limited", "plan_limit"])
async def test_a_rate_or_plan_limit_requeues_the_job_until_it_completes(
    make_settings: Callable[..., Settings], sim: Sim, kind: str
) -> None:
    await sim.set(faults=[{"kind": kind, "count": 2, "retry_after": 0.3}])
    async with gateway(make_settings, sim) as gw:
        job = (await gw.create(prefer="respond-async")).json()
        seen = await gw.poll(job["id"], final)
        statuses = [j["status"] for j in seen]
        assert "failed" not in statuses and statuses[-1] == "completed", seen[-1]
        stats = await sim.stats()
        # two refusals, then the song: three calls, one song
        assert (stats["music_calls"], stats["faults_injected"], stats["accepted"]) == (3, 2, 1)
        assert seen[-1]["nativeResponseId"] == stats["last_trace_id"]
        registry = gw.app.state.metrics.registry
        labels = {"provider": "minimax", "reason": "rate"}
        assert registry.get_sample_value("gateway_generations_requeued_total", labels) == 2


async def test_a_rate_limit_keeps_the_job_in_progress_between_attempts(
    make_settings: Callable[..., Settings], sim: Sim
) -> None:
    await sim.set(faults=[{"kind": "rate_limited", "retry_after": 1.5}])
    async with gateway(make_settings, sim) as gw:
        job = (await gw.create(prefer="respond-async")).json()
        await sim.wait_for("faults_injected", 1)
        # waiting 1.5 s for its next attempt: in_progress, never queued again
        waiting = (await gw.poll(job["id"], lambda j: True))[-1]
        assert waiting["status"] == "in_progress" and (await sim.stats())["music_calls"] == 1
        seen = await gw.poll(job["id"], final)
        assert [j["status"] for j in seen] == ["in_progress"] * (len(seen) - 1) + ["completed"]
        assert (await sim.stats())["music_calls"] == 2


async def test_an_expired_url_fails_the_copy_clearly(
    make_settings: Callable[..., Settings], sim: Sim
) -> None:
    await sim.set(url_ttl=0.0)
    async with gateway(make_settings, sim) as gw:
        job = (await gw.create()).json()
        assert job["status"] == "failed" and job["error"]["code"] == "artefact_copy_failed"
        assert "403" in job["error"]["message"]
        stats = await sim.stats()
        assert (stats["music_calls"], stats["expired_downloads"]) == (1, 1)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x" * 2001}, "prompt"),
        ({"lyrics": "x" * 3501}, "lyrics"),
        ({"prompt": None, "instrumental": True}, "prompt"),
        ({"instrumental": False}, "lyrics"),
        ({"minimax": {"lyrics_optimizer": True}, "prompt": None}, "prompt"),
        ({"minimax": {"stream": True}}, "minimax.stream"),
        ({"minimax": {"cover_feature_id": "c"}}, "minimax.cover_feature_id"),
        (
            {"format": "wav", "minimax": {"audio_setting": {"format": "mp3"}}},
            "minimax.audio_setting.format",
        ),
    ],
)
async def test_bad_input_is_refused_before_any_upstream_call(
    make_settings: Callable[..., Settings], sim: Sim, body: dict[str, Any], param: str
) -> None:
    async with gateway(make_settings, sim) as gw:
        r = await gw.create(status=400, **body)
        err = r.json()
        assert (err["status_code"], err["param"]) == (400, param), err
        assert err["error"] in ("invalid_parameter", "missing_parameter")
    assert (await sim.stats())["music_calls"] == 0


async def test_an_unknown_block_field_is_refused(
    make_settings: Callable[..., Settings], sim: Sim
) -> None:
    async with gateway(make_settings, sim) as gw:
        r = await gw.create(status=400, minimax={"lyrics_optimiser": True})
        assert "lyrics_optimiser" in r.text
        r = await gw.create(status=400, minimax={"audio_setting": {"sample_rate": 48000}})
        assert "sample_rate" in r.text
    assert (await sim.stats())["music_calls"] == 0


async def test_the_concurrency_cap_holds_and_the_catalog_lists_the_models(
    make_settings: Callable[..., Settings], sim: Sim
) -> None:
    # The simulator refuses a second concurrent call (1002): the gateway must never
    # provoke one with GATEWAY_CONCURRENCY=minimax=1.
    await sim.set(latency=0.3, max_concurrency=1)
    async with gateway(make_settings, sim, GATEWAY_CONCURRENCY="minimax=1") as gw:
        models = {m["id"]: m for m in (await gw.client.get("/v1/models")).json()["data"]}
        for model_id in ("minimax/music-2.6", "minimax/music-3.0"):
            m = models[model_id]
            assert m["provider"] == "minimax" and m["available"] is True
            assert set(m["supported_parameters"]) >= {"prompt", "lyrics", "instrumental", "format"}
            assert {"lyrics_optimizer", "audio_setting"} <= set(m["native_parameters"])
            assert m["native_block"] == "minimax"
        ids = [
            (await gw.create(prefer="respond-async", model=model)).json()["id"]
            for model in ("minimax/music-2.6", "minimax/music-3.0", "minimax/music-2.6")
        ]
        for job_id in ids:
            assert (await gw.poll(job_id, final))[-1]["status"] == "completed"
    stats = await sim.stats()
    assert (stats["accepted"], stats["rate_limited"], stats["max_in_flight"]) == (3, 0, 1)
