"""The TemPolor provider against the simulator over real HTTP on loopback."""

from __future__ import annotations

import time

import pytest
from structlog.testing import capture_logs

import providers.tempolor as tempolor
from providers.base import Provider, UpstreamTimeout
from tests.providers.tempolor.helpers import TOKEN, Sim, request
from tests.support.clock import wall_clock_reaches
from tests.support.native import poll, ref
from tests.support.waiting import eventually

MP3_SYNC = b"\xff\xfb"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_provider_satisfies_the_protocol() -> None:
    p = tempolor.create({"USEAPI_TOKEN": TOKEN})
    assert isinstance(p, Provider)
    assert p.name == "tempolor" and p.configured
    assert {m.id for m in p.models} >= {"tempolor/v4.8", "tempolor/i3.5"}
    assert not tempolor.create({}).configured
    assert not tempolor.create({"USEAPI_TOKEN": "  "}).configured


def test_create_reads_timeouts_and_rejects_bad_values() -> None:
    tempolor.create(
        {
            "USEAPI_TOKEN": TOKEN,
            "USEAPI_READ_TIMEOUT": "2.5",
            "USEAPI_CONNECT_TIMEOUT": "1",
            "USEAPI_DEFAULT_URL_TTL": "60",
        }
    )
    with pytest.raises(ValueError, match="USEAPI_READ_TIMEOUT"):
        tempolor.create({"USEAPI_READ_TIMEOUT": "soon"})
    with pytest.raises(ValueError, match="USEAPI_POOL_TIMEOUT"):
        tempolor.create({"USEAPI_POOL_TIMEOUT": "-1"})


async def test_song_job_runs_to_completion_with_playable_audio(
    provider: tempolor.TemPolorProvider, sim: Sim
) -> None:
    sim.configure(generate_seconds=1.0)  # a window a slow poll cannot miss
    req = request("tempolor/v4.8", lyrics="[Verse]\nwarm nights")
    sub = await provider.start(req)
    assert sub.snapshot.status == "queued"
    assert sub.native_ids == [sub.native_id] and "-job:" in sub.native_id
    snap, seen = await poll(provider, sub, req)
    assert snap.status == "completed" and snap.progress == 100
    statuses = [s.status for s in seen]
    assert "in_progress" in statuses and statuses[-1] == "completed"
    progresses = [s.progress for s in seen]
    assert progresses == sorted(progresses)
    (out,) = snap.outputs
    assert out.id == sub.native_id and out.lyrics == "[Verse]\nwarm nights"
    assert out.title and out.tags and out.duration == 1.0
    audio = sim.http.get(out.audio_url or "")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"
    assert audio.content.startswith(MP3_SYNC) and len(audio.content) > 10_000
    cover = sim.http.get(out.image_url or "")
    assert cover.status_code == 200 and cover.content.startswith(PNG_MAGIC)
    (sent,) = sim.creates()
    assert sent == {
        "kind": "song",
        "body": {"prompt": req.prompt, "lyrics": req.lyrics, "model_song": "v4.8"},
    }


async def test_instrumental_job_in_wav(provider: tempolor.TemPolorProvider, sim: Sim) -> None:
    req = request(
        "tempolor/i3.5",
        prompt="calm lo-fi piano",
        format="wav",
        options={"tonality": "C:major", "bpm": 80, "chords": "C F G Am"},
    )
    sub = await provider.start(req)
    snap, _ = await poll(provider, sub, req)
    assert snap.status == "completed"
    audio = sim.http.get(snap.outputs[0].audio_url or "")
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    assert audio.content[8:12] == b"WAVE"
    assert "file_format" not in (snap.outputs[0].audio_url or "")
    assert sim.creates()[0]["body"]["model_instrumental"] == "i3.5 beta"
    assert snap.outputs[0].lyrics is None


async def test_404_right_after_completion_means_not_ready_yet(
    provider: tempolor.TemPolorProvider, sim: Sim
) -> None:
    sim.configure(download_404_seconds=0.4)
    req = request()
    sub = await provider.start(req)
    waiting, _ = await poll(provider, sub, req, until=lambda s: s.native_status == "COMPLETED")
    assert waiting.status == "in_progress" and waiting.progress == 99
    assert waiting.outputs[0].audio_url is None
    done, seen = await poll(provider, sub, req, until=lambda s: s.status == "completed")
    assert done.outputs[0].audio_url
    stats = sim.stats()
    assert stats["download_calls"] >= 2  # at least one 404, then the URL
    assert all(s.status != "failed" for s in seen)


async def test_expired_url_is_renewed_from_the_download_endpoint_only(
    provider: tempolor.TemPolorProvider, sim: Sim
) -> None:
    ttl = 3.0  # renewal due at 80 %: 2.4 s for the checks before it, however slow the machine
    sim.configure(url_ttl_seconds=ttl)
    req = request()
    sub = await provider.start(req)
    done, _ = await poll(provider, sub, req)
    job = done.state.jobs[0]
    assert done.refresh_after is not None
    assert done.refresh_after < job.url_expires_at  # renewed before it dies
    assert done.refresh_after == pytest.approx(job.url_expires_at - 0.2 * ttl)
    old_url = done.outputs[0].audio_url or ""
    assert sim.http.get(old_url).status_code == 200
    before = sim.stats()
    # Not due yet: a fetch makes no upstream call at all.
    again = await provider.fetch(ref(sub, req, done))
    assert again.outputs[0].audio_url == old_url
    assert sim.stats()["download_calls"] == before["download_calls"]
    await wall_clock_reaches(job.url_expires_at)  # the provider's clock is the real one
    assert sim.http.get(old_url).status_code == 403  # the simulator's URL really expired
    renewed = await provider.fetch(ref(sub, req, done))
    after = sim.stats()
    assert renewed.status == "completed"
    new_url = renewed.outputs[0].audio_url or ""
    assert new_url != old_url and sim.http.get(new_url).status_code == 200
    assert after["download_calls"] == before["download_calls"] + 1
    assert after["status_calls"] == before["status_calls"]  # status is final: not polled
    assert renewed.refresh_after is not None and renewed.refresh_after > time.time()


async def test_remain_seconds_zero_uses_the_default_lifetime(sim: Sim) -> None:
    sim.configure(report_remain_seconds=False)
    p = tempolor.create(
        {"USEAPI_TOKEN": TOKEN, "USEAPI_BASE_URL": sim.api, "USEAPI_DEFAULT_URL_TTL": "120"}
    )
    try:
        req = request()
        before = time.time()
        sub = await p.start(req)
        done, _ = await poll(p, sub, req)
        after = time.time()
    finally:
        await p.aclose()
    expires = done.state.jobs[0].url_expires_at
    assert before + 120 <= expires <= after + 120  # 120 s from the download, however slow
    assert done.refresh_after == pytest.approx(expires - 24)


async def test_multi_job_create_gives_one_output_per_native_job(
    provider: tempolor.TemPolorProvider, sim: Sim
) -> None:
    sim.configure(jobs_per_create=3)
    req = request("tempolor/i4")
    sub = await provider.start(req)
    assert len(sub.native_ids) == 3 and sub.native_id == sub.native_ids[0]
    snap, _ = await poll(provider, sub, req)
    assert snap.status == "completed"
    assert [(o.index, o.id) for o in snap.outputs] == list(enumerate(sub.native_ids))
    for out in snap.outputs:
        assert sim.http.get(out.audio_url or "").status_code == 200


async def test_multi_job_with_one_failure_completes_with_the_playable_one(
    provider: tempolor.TemPolorProvider, sim: Sim
) -> None:
    sim.configure(jobs_per_create=2, fail_next_jobs=1)
    req = request()
    sub = await provider.start(req)
    snap, _ = await poll(provider, sub, req)
    assert snap.status == "completed"
    assert [(o.index, o.id) for o in snap.outputs] == [(1, sub.native_ids[1])]
    assert snap.native_status == "FAILED,COMPLETED"
    assert sim.stats()["jobs"] == {"failed": 1, "completed": 1}


async def test_a_job_that_ends_10_fails(provider: tempolor.TemPolorProvider, sim: Sim) -> None:
    sim.configure(fail_next_jobs=1)
    req = request()
    sub = await provider.start(req)
    snap, _ = await poll(provider, sub, req)
    assert snap.status == "failed" and snap.outputs == []
    assert snap.error is not None
    assert (snap.error.code, snap.error.native_status) == ("generation_failed", "FAILED")
    assert sim.stats()["download_calls"] == 0


async def test_unknown_final_status_is_logged_and_never_completed(
    provider: tempolor.TemPolorProvider, sim: Sim
) -> None:
    sim.configure(odd_final_status=20, odd_status_final=True)
    req = request()
    sub = await provider.start(req)
    with capture_logs() as logs:
        snap, _ = await poll(provider, sub, req)
    assert snap.status == "failed"
    assert snap.error is not None and snap.error.code == "unknown_native_status"
    assert any(e["event"] == "unknown_native_status" and e["status"] == 20 for e in logs)


async def test_unknown_non_final_status_keeps_the_job_in_progress(
    provider: tempolor.TemPolorProvider, sim: Sim
) -> None:
    sim.configure(odd_final_status=25, odd_status_final=False)
    req = request()
    sub = await provider.start(req)
    await eventually(lambda: sim.stats()["jobs"] == {"status_25": 1}, what="generation over")
    snap = await provider.fetch(ref(sub, req))
    assert snap.status == "in_progress" and snap.native_status == "25"


async def test_connect_error_is_upstream_error_not_sent() -> None:
    from providers.base import UpstreamError
    from tests.support.servers import free_port

    p = tempolor.create(
        {"USEAPI_TOKEN": TOKEN, "USEAPI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
    )
    try:
        with pytest.raises(UpstreamError) as info:
            await p.start(request())
    finally:
        await p.aclose()
    assert info.value.sent is False
    assert TOKEN not in str(info.value)


async def test_read_timeout_is_upstream_timeout(sim: Sim) -> None:
    sim.configure(latency_seconds=2.5, latency_endpoints=["status"])
    p = tempolor.create(  # the create answers in ms, well within the timeout; status never
        {"USEAPI_TOKEN": TOKEN, "USEAPI_BASE_URL": sim.api, "USEAPI_READ_TIMEOUT": "1.0"}
    )
    try:
        req = request()
        sub = await p.start(req)  # create has no latency
        with pytest.raises(UpstreamTimeout) as info:
            await p.fetch(ref(sub, req))
    finally:
        await p.aclose()
    assert info.value.http_status == 504 and TOKEN not in str(info.value)
