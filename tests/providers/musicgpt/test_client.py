"""The MusicGPT provider against the simulator over real HTTP on loopback."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from providers.base import (
    Callback,
    ProviderError,
    RequestRejected,
    Snapshot,
    UpstreamAuthError,
    UpstreamError,
    UpstreamInsufficientCredits,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)
from providers.musicgpt import MusicGPTProvider, create
from providers.musicgpt.catalog import MusicGPTOptions
from providers.simulator_media import MP3_BYTES, PNG_BYTES, WAV_BYTES
from tests.support.servers import free_port
from tests.support.waiting import eventually

from .conftest import KEY, Receiver, Sim, job_ref, poll_until_final, request


async def download(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as c:
        return await c.get(url)


# ---------------------------------------------------------------------- lifecycle


async def test_job_goes_queued_in_progress_completed_with_two_playable_songs(
    provider: MusicGPTProvider, mg_sim: Sim
) -> None:
    await mg_sim.set(progress_seconds=1.0)  # a window a slow poll cannot miss
    req = request(title="Loopback", style="synth-pop")
    sub = await provider.start(req)
    assert sub.native_id and sub.native_ids[0] == sub.native_id and len(sub.native_ids) == 3
    seen = await poll_until_final(provider, sub, req)
    statuses = [s.status for s in seen]
    assert statuses[0] == "queued" and statuses[-1] == "completed"
    assert "in_progress" in statuses
    assert statuses == sorted(statuses, key=["queued", "in_progress", "completed"].index)
    natives = {s.native_status for s in seen[1:]}
    assert {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"} <= natives | {"IN_QUEUE"}
    done = seen[-1]
    assert [o.index for o in done.outputs] == [0, 1]
    assert [o.id for o in done.outputs] == sub.native_ids[1:]
    assert done.progress == 100
    for out in done.outputs:
        assert out.duration == 1.0 and out.tags == "synth-pop" and out.title
        assert out.audio_url and out.audio_url.startswith(mg_sim.url)
        resp = await download(out.audio_url)
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("audio/mpeg")
        assert resp.content == MP3_BYTES and resp.content[:2] == b"\xff\xfb"
    stats = await mg_sim.stats()
    assert stats["creates_accepted"] == 1 and stats["status_calls"] == len(seen) - 1
    assert stats["download_calls"] == 2 and stats["jobs_by_final_state"] == {"COMPLETED": 1}


async def test_wav_format_and_album_cover(provider: MusicGPTProvider) -> None:
    req = request(format="wav", options=MusicGPTOptions(generate_album_cover=True))
    sub = await provider.start(req)
    done = (await poll_until_final(provider, sub, req))[-1]
    assert done.status == "completed"
    for out in done.outputs:
        assert out.audio_url and out.audio_url.endswith(".wav")
        resp = await download(out.audio_url)
        assert resp.status_code == 200 and resp.content == WAV_BYTES
        assert resp.content[:4] == b"RIFF" and resp.content[8:12] == b"WAVE"
        assert out.image_url
        cover = await download(out.image_url)
        assert cover.status_code == 200 and cover.content == PNG_BYTES


async def test_older_single_output_shape(provider: MusicGPTProvider, mg_sim: Sim) -> None:
    await mg_sim.set(legacy_shape=True, string_numbers=True)
    req = request()
    sub = await provider.start(req)
    done = (await poll_until_final(provider, sub, req))[-1]
    assert done.status == "completed" and len(done.outputs) == 1
    assert done.state.cost == 1.25  # sent as "1.25"
    resp = await download(done.outputs[0].audio_url or "")
    assert resp.status_code == 200 and resp.content == MP3_BYTES


async def test_partial_completed_and_alternative_words(
    provider: MusicGPTProvider, mg_sim: Sim
) -> None:
    await mg_sim.set(  # each phase a window of a second: a slow poll cannot miss one
        queue_seconds=1.0,
        progress_seconds=2.0,
        partial_completed=True,
        string_numbers=True,
        status_words={"queued": "PENDING", "in_progress": "PROCESSING"},
    )
    req = request()
    sub = await provider.start(req)
    seen = await poll_until_final(provider, sub, req)
    by_native = {s.native_status: s for s in seen[1:]}
    assert by_native["PENDING"].status == "queued"
    assert by_native["PROCESSING"].status == "in_progress"
    partial = by_native["PARTIAL_COMPLETED"]
    assert partial.status == "in_progress"
    assert partial.outputs[0].audio_url and partial.outputs[1].audio_url is None
    assert seen[-1].status == "completed"
    assert [o.duration for o in seen[-1].outputs] == [1.0, 1.0]


async def test_unknown_final_word_never_completes(provider: MusicGPTProvider, mg_sim: Sim) -> None:
    await mg_sim.set(status_words={"completed": "FINISHED_OK"})
    req = request()
    sub = await provider.start(req)

    async def finished() -> Snapshot | None:  # past the simulated generation
        snap = await provider.fetch(job_ref(sub, req))
        return snap if snap.native_status == "FINISHED_OK" else None

    snap = await eventually(finished, what="the simulator's final word")
    assert snap.native_status == "FINISHED_OK"
    assert snap.status == "in_progress"
    assert all(o.audio_url for o in snap.outputs)


async def test_failed_job(provider: MusicGPTProvider) -> None:
    req = request(prompt="please failme now")
    sub = await provider.start(req)
    done = (await poll_until_final(provider, sub, req))[-1]
    assert done.status == "failed" and done.native_status == "ERROR"
    assert done.error is not None and done.error.code == "generation_failed"
    assert done.error.message == "Audio generation failed"


async def test_flagged_prompt(provider: MusicGPTProvider, mg_sim: Sim) -> None:
    req = request(prompt="flagme: a song about something forbidden")
    sub = await provider.start(req)
    assert sub.snapshot.status == "failed"
    assert sub.snapshot.error is not None
    assert sub.snapshot.error.message == "Prompt violates the content policy"
    again = await provider.fetch(job_ref(sub, req))
    assert again.status == "failed" and again.native_status == "FAILED"
    assert (await mg_sim.stats())["creates_flagged"] == 1


# -------------------------------------------------------------------------- faults


FAULTS = [  # status, endpoint, native body variant, expected class, expected text
    (400, "create", "error", UpstreamRejected, "Invalid request"),
    (422, "create", "detail", UpstreamRejected, "Unprocessable entity"),
    (409, "create", "message", UpstreamRejected, "Conflict"),
    (401, "create", "error", UpstreamAuthError, "Unauthorized"),
    (403, "status", "message", UpstreamAuthError, "Incorrect API key"),
    (402, "create", "message", UpstreamInsufficientCredits, "Insufficient credit balance"),
    (412, "create", "error", UpstreamInsufficientCredits, "HTTP 412"),
    (404, "status", "detail", UpstreamNotFound, "Conversion not found"),
    (429, "create", "error", UpstreamRateLimited, "Too many requests"),
    (429, "status", "message", UpstreamRateLimited, "Too many requests"),
    (500, "create", "detail", UpstreamError, "Internal server error"),
    (503, "status", "error", UpstreamError, "HTTP 503"),
]


@pytest.mark.parametrize(("code", "endpoint", "style", "exc", "text"), FAULTS)
async def test_status_fault_maps_to_provider_error(
    provider: MusicGPTProvider,
    mg_sim: Sim,
    code: int,
    endpoint: str,
    style: str,
    exc: type[ProviderError],
    text: str,
) -> None:
    req = request()
    sub = await provider.start(req) if endpoint == "status" else None
    await mg_sim.set(faults=[{"status": code, "endpoints": [endpoint], "body_style": style}])
    with pytest.raises(exc) as info:
        if sub is None:
            await provider.start(req)
        else:
            await provider.fetch(job_ref(sub, req))
    assert type(info.value) is exc
    assert info.value.native_status == code and info.value.provider == "musicgpt"
    assert text in info.value.message
    assert KEY not in str(info.value)


async def test_rate_limit_retry_after_is_passed_on(provider: MusicGPTProvider, mg_sim: Sim) -> None:
    await mg_sim.set(faults=[{"status": 429, "retry_after": 7}])
    with pytest.raises(UpstreamRateLimited) as info:
        await provider.start(request())
    assert info.value.retry_after == 7.0


@pytest.mark.parametrize("endpoint", ["create", "status"])
async def test_malformed_json_is_upstream_error(
    provider: MusicGPTProvider, mg_sim: Sim, endpoint: str
) -> None:
    req = request()
    sub = await provider.start(req)
    await mg_sim.set(faults=[{"malformed": True, "endpoints": [endpoint]}])
    with pytest.raises(UpstreamError) as info:
        if endpoint == "create":
            await provider.start(req)
        else:
            await provider.fetch(job_ref(sub, req))
    assert type(info.value) is UpstreamError and "malformed" in info.value.message


async def test_latency_beyond_read_timeout_is_timeout(mg_sim: Sim) -> None:
    await mg_sim.set(faults=[{"latency": 5.0, "endpoints": ["create"], "count": 1}])
    provider = create(
        {"MUSICGPT_API_KEY": KEY, "MUSICGPT_BASE_URL": mg_sim.url, "MUSICGPT_READ_TIMEOUT": "1"}
    )
    try:
        with pytest.raises(UpstreamTimeout) as info:
            await provider.start(request())
        assert info.value.sent is True
        sub = await provider.start(request())  # count=1: the next one goes through
        assert sub.snapshot.status == "queued"
    finally:
        await provider.aclose()


async def test_small_latency_is_fine(provider: MusicGPTProvider, mg_sim: Sim) -> None:
    await mg_sim.set(faults=[{"latency": 0.1}])
    sub = await provider.start(request())
    assert sub.snapshot.status == "queued"


async def test_fault_count_and_endpoint_kind(provider: MusicGPTProvider, mg_sim: Sim) -> None:
    await mg_sim.set(faults=[{"status": 500, "endpoints": ["status"], "count": 2}])
    req = request()
    sub = await provider.start(req)  # create is not affected
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await provider.fetch(job_ref(sub, req))
    snap = await provider.fetch(job_ref(sub, req))
    assert snap.status in ("queued", "in_progress")
    assert (await mg_sim.stats())["faults_injected"] == 2


async def test_connection_refused_is_not_sent() -> None:
    p = create({"MUSICGPT_API_KEY": KEY, "MUSICGPT_BASE_URL": f"http://127.0.0.1:{free_port()}"})
    try:
        with pytest.raises(UpstreamError) as info:
            await p.start(request())
        assert info.value.sent is False and KEY not in str(info.value)
    finally:
        await p.aclose()


async def test_wrong_key_is_auth_error_and_never_leaks(mg_sim: Sim) -> None:
    wrong = "mg-wrong-key-0000"
    p = create({"MUSICGPT_API_KEY": wrong, "MUSICGPT_BASE_URL": mg_sim.url})
    try:
        with pytest.raises(UpstreamAuthError) as info:
            await p.start(request())
        assert info.value.native_status == 403
        assert wrong not in str(info.value) and KEY not in str(info.value)
    finally:
        await p.aclose()


async def test_key_echoed_by_upstream_is_redacted(
    provider: MusicGPTProvider, mg_sim: Sim, capsys: pytest.CaptureFixture[str]
) -> None:
    await mg_sim.set(faults=[{"status": 401, "message": f"API key {KEY} is not valid"}])
    with pytest.raises(UpstreamAuthError) as info:
        await provider.start(request())
    assert KEY not in info.value.message and "[redacted]" in info.value.message
    out = capsys.readouterr()
    assert KEY not in out.out and KEY not in out.err


async def test_unconfigured_provider() -> None:
    p = create({})
    assert p.configured is False
    with pytest.raises(UpstreamAuthError) as info:
        await p.start(request())
    assert info.value.sent is False
    await p.aclose()
    assert create({"MUSICGPT_API_KEY": "x"}).configured is True


async def test_plan_limits(provider: MusicGPTProvider, mg_sim: Sim) -> None:
    await mg_sim.set(max_concurrent=1, byid_per_minute=2)
    req = request()
    sub = await provider.start(req)
    with pytest.raises(UpstreamRateLimited):
        await provider.start(req)
    await provider.fetch(job_ref(sub, req))
    await provider.fetch(job_ref(sub, req))
    with pytest.raises(UpstreamRateLimited):
        await provider.fetch(job_ref(sub, req))
    assert (await mg_sim.stats())["rate_limited"] == 2


# ------------------------------------------------------------------------- check


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"prompt": None}, "prompt"),
        ({"lyrics": "x" * 3001}, "lyrics"),
        ({"instrumental": True, "lyrics": "la la"}, "lyrics"),
        (
            {"instrumental": True, "options": MusicGPTOptions(vocal_only=True)},
            "musicgpt.vocal_only",
        ),
        ({"options": MusicGPTOptions(voice_id="v-1")}, "musicgpt.voice_id"),
    ],
)
def test_check_rejects_what_musicgpt_cannot_honour(
    provider: MusicGPTProvider, kw: dict[str, Any], param: str
) -> None:
    with pytest.raises(RequestRejected) as info:
        provider.check(request(**kw))
    assert info.value.param == param


def test_check_accepts_valid_requests(provider: MusicGPTProvider) -> None:
    provider.check(request())
    provider.check(request("v6", options=MusicGPTOptions(voice_id="v-1", gender="male")))
    provider.check(request(prompt=None, lyrics="only lyrics"))
    provider.check(request(instrumental=True, style="ambient"))


# ----------------------------------------------------------------------- callbacks


async def apply_all(
    provider: MusicGPTProvider, ref_args: tuple[Any, ...], bodies: list[bytes]
) -> Any:
    sub, req = ref_args
    snap = sub.snapshot
    for body in bodies:
        snap = await provider.callback(job_ref(sub, req, snap), {}, body)
    return snap


async def test_callbacks_complete_the_job_without_polling(
    provider: MusicGPTProvider, mg_sim: Sim, receiver: Receiver
) -> None:
    opts = MusicGPTOptions(generate_album_cover=True, lyrics_timestamps=True)
    req = request(callback=receiver.callback("job-a"), options=opts)
    sub = await provider.start(req)
    # 2 audio_streaming + 2 music_ai + 1 album_cover_generation + 2 lyrics_timestamped
    bodies = await receiver.wait_for("job-a", 7)
    assert len(bodies) == 7
    snap = await apply_all(provider, (sub, req), bodies)
    assert snap.status == "completed"
    for out in snap.outputs:
        assert out.stream_audio_url and out.stream_audio_url.endswith(".m3u8")
        assert (await download(out.stream_audio_url)).text.startswith("#EXTM3U")
        assert out.image_url and out.duration == 1.0
        assert (await download(out.audio_url or "")).content == MP3_BYTES

    async def all_counted() -> dict[str, Any] | None:  # counted once the answer is back
        stats = await mg_sim.stats()
        return stats if stats["callbacks_sent"] + stats["callbacks_failed"] >= 7 else None

    stats = await eventually(all_counted, what="7 deliveries counted")
    assert stats["callbacks_sent"] == 7 and stats["callbacks_failed"] == 0
    assert stats["status_calls"] == 0


@pytest.mark.parametrize("order", ["reverse", "shuffle"])
async def test_callbacks_out_of_order_and_duplicated(
    provider: MusicGPTProvider, mg_sim: Sim, receiver: Receiver, order: str
) -> None:
    await mg_sim.set(callback_order=order, callback_duplicates=2, seed=7)
    req = request(callback=receiver.callback("job-b"))
    sub = await provider.start(req)
    bodies = await receiver.wait_for("job-b", 12)  # (2 streaming + 2 music_ai) x 3
    assert len(bodies) == 12
    forward = await apply_all(provider, (sub, req), bodies)
    backward = await apply_all(provider, (sub, req), bodies[::-1])
    assert forward.status == backward.status == "completed"
    assert forward.outputs == backward.outputs
    assert all(o.audio_url and o.stream_audio_url for o in forward.outputs)


async def test_callback_then_poll_agree(provider: MusicGPTProvider, receiver: Receiver) -> None:
    req = request(callback=receiver.callback("job-c"))
    sub = await provider.start(req)
    bodies = await receiver.wait_for("job-c", 4)
    snap = await apply_all(provider, (sub, req), bodies)
    polled = await provider.fetch(job_ref(sub, req, snap))
    assert snap.status == polled.status == "completed"
    assert [o.audio_url for o in polled.outputs] == [o.audio_url for o in snap.outputs]
    assert all(o.stream_audio_url for o in polled.outputs)  # kept from the callbacks


async def test_failed_and_flagged_callbacks(provider: MusicGPTProvider, receiver: Receiver) -> None:
    req = request(prompt="failme", callback=receiver.callback("job-f"))
    sub = await provider.start(req)
    bodies = await receiver.wait_for("job-f", 3)  # 2 streaming + 1 generic ERROR
    assert (await apply_all(provider, (sub, req), bodies)).status == "failed"
    req = request(prompt="flagme", callback=receiver.callback("job-g"))
    sub = await provider.start(req)
    bodies = await receiver.wait_for("job-g", 2)
    snap = await apply_all(provider, (sub, req), bodies)
    assert snap.status == "failed" and snap.error is not None
    assert snap.error.code == "content_flagged"


async def test_legacy_callback_shape(
    provider: MusicGPTProvider, mg_sim: Sim, receiver: Receiver
) -> None:
    await mg_sim.set(callback_shape="legacy")
    req = request(callback=receiver.callback("job-l"))
    sub = await provider.start(req)
    bodies = await receiver.wait_for("job-l", 1)
    snap = await apply_all(provider, (sub, req), bodies)
    assert snap.status == "completed" and len(snap.outputs) == 1


async def test_simulator_retries_then_counts_failures(
    provider: MusicGPTProvider, mg_sim: Sim, receiver: Receiver
) -> None:
    receiver.fail_next = 2  # the first two deliveries answer 503
    req = request(callback=receiver.callback("job-r"))
    await provider.start(req)
    assert len(await receiver.wait_for("job-r", 4)) == 4

    async def counted(name: str, n: int) -> dict[str, Any] | None:
        """The stats once the simulator counted ``n`` ``name`` (it counts a delivery once
        the receiver's answer is back, a moment after the receiver recorded it)."""
        stats = await mg_sim.stats()
        return stats if stats[name] >= n else None

    stats = await eventually(lambda: counted("callbacks_sent", 4), what="4 deliveries counted")
    assert stats["callbacks_sent"] == 4 and stats["callback_attempts"] == 6
    # an unreachable receiver: retried, then counted as failed; the simulator lives on
    await mg_sim.set(callback_retries=1)
    dead_url = f"http://127.0.0.1:{free_port()}/hook/x/t"
    dead = request(callback=Callback(url=dead_url, job_id="x", token="t"))
    await provider.start(dead)
    await eventually(lambda: counted("callbacks_failed", 4), what="4 failed deliveries")
    assert (await mg_sim.stats())["callbacks_failed"] == 4


async def test_unreadable_callback_is_value_error(provider: MusicGPTProvider) -> None:
    req = request()
    sub = await provider.start(req)
    with pytest.raises(ValueError):
        await provider.callback(job_ref(sub, req), {}, b"\x00garbage")
