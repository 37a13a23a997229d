"""The Suno provider against its simulator over real HTTP: what goes on the wire, polling
through every stage, and the body-code errors of an HTTP 200."""

from __future__ import annotations

import httpx

import providers.suno as suno
from providers.base import Callback, UpstreamAuthError
from providers.simulator_media import MP3_BYTES, PNG_BYTES
from tests.providers.suno.helpers import KEY, Sim, request
from tests.support.native import poll, ref


async def test_simple_request_on_the_wire_and_polled_to_two_playable_songs(
    provider: suno.SunoProvider, sim: Sim
) -> None:
    sim.configure(callbacks=False)
    req = request("suno/v4.5+", prompt="a warm summer anthem")
    sub = await provider.start(req)
    assert sub.snapshot.status == "queued" and sub.native_ids == [sub.native_id]
    (sent,) = sim.creates()
    assert sent == {
        "customMode": False,
        "instrumental": False,
        "model": "V4_5PLUS",
        "callBackUrl": "https://callback.invalid/music-gateway/polling-only",
        "prompt": "a warm summer anthem",
    }
    done, seen = await poll(provider, sub, req)
    words = [s.native_status for s in seen]
    assert {"PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", "SUCCESS"} >= set(filter(None, words))
    assert done.status == "completed" and len(done.outputs) == 2
    statuses = [s.status for s in seen]
    assert statuses == sorted(statuses, key=["queued", "in_progress", "completed"].index)
    with httpx.Client() as http:
        for out in done.outputs:
            assert http.get(out.audio_url or "").content == MP3_BYTES
            assert http.get(out.stream_audio_url or "").content == MP3_BYTES
            assert http.get(out.image_url or "").content == PNG_BYTES
            assert out.duration == 1.0 and out.title and out.lyrics
    assert sim.stats()["status_calls"] == len(seen) - 1


async def test_first_success_shows_the_first_stream_before_completion(
    provider: suno.SunoProvider, sim: Sim
) -> None:
    sim.configure(callbacks=False, first_seconds=0.05, complete_seconds=30.0)
    req = request()
    sub = await provider.start(req)
    snap, _ = await poll(provider, sub, req, until=lambda s: s.native_status == "FIRST_SUCCESS")
    assert snap.status == "in_progress" and 0 < (snap.progress or 0) < 100
    first, second = snap.outputs
    assert first.stream_audio_url and not first.audio_url
    assert not second.stream_audio_url and not second.audio_url


async def test_custom_request_with_callback_url_and_native_block(
    provider: suno.SunoProvider, sim: Sim
) -> None:
    sim.configure(callbacks=False)
    cb = Callback(url="http://127.0.0.1:9/v1/callbacks/suno/mus_x/tok", job_id="mus_x", token="tok")
    req = request(
        "suno/v4", prompt=None, lyrics="[Verse] hello", style="folk", title="Hi",
        callback=cb, options={"negativeTags": "metal", "weirdnessConstraint": 0.3},
    )  # fmt: skip
    sub = await provider.start(req)
    (sent,) = sim.creates()
    assert sent["callBackUrl"] == cb.url and sent["customMode"] is True
    assert (sent["prompt"], sent["style"], sent["title"]) == ("[Verse] hello", "folk", "Hi")
    assert (sent["negativeTags"], sent["weirdnessConstraint"], sent["model"]) == (
        "metal", 0.3, "V4"
    )  # fmt: skip
    done, _ = await poll(provider, sub, req)
    assert done.status == "completed"
    assert all(o.lyrics == "[Verse] hello" and o.title == "Hi" for o in done.outputs)


async def test_bearer_key_is_sent_and_a_wrong_one_is_an_auth_error(sim: Sim) -> None:
    wrong = suno.create({"SUNO_API_KEY": "sk-wrong-key-000111", "SUNO_BASE_URL": sim.base})
    try:
        try:
            await wrong.start(request())
        except UpstreamAuthError as exc:
            assert exc.http_status == 502 and exc.native_status == 401
            assert "sk-wrong-key-000111" not in str(exc)
        else:
            raise AssertionError("a wrong key must be an auth error")
    finally:
        await wrong.aclose()
    assert sim.stats()["auth_failures"] == 1 and sim.stats()["creates_accepted"] == 0


async def test_missing_key_fails_before_sending(sim: Sim) -> None:
    p = suno.create({"SUNO_BASE_URL": sim.base})
    assert not p.configured
    try:
        try:
            await p.start(request())
        except UpstreamAuthError as exc:
            assert exc.sent is False and "SUNO_API_KEY" in exc.message
        else:
            raise AssertionError("no key: no call")
    finally:
        await p.aclose()
    assert sim.stats()["create_calls"] == 0


async def test_fetch_without_a_task_id_makes_no_call(provider: suno.SunoProvider, sim: Sim) -> None:
    req = request()
    sub = await provider.start(req)
    lost = ref(sub, req, native_id="")
    lost = lost.__class__(
        job_id=lost.job_id, model=lost.model, native_id="", native_ids=[],
        format=lost.format, last=sub.snapshot.__class__(status="queued"),
    )  # fmt: skip
    assert (await provider.fetch(lost)).status == "queued"
    assert sim.stats()["status_calls"] == 0


def test_create_reads_its_configuration() -> None:
    p = suno.create({"SUNO_API_KEY": KEY})
    assert p.base_url == "https://api.sunoapi.org" and p.configured
    assert suno.create({"SUNO_API_KEY": KEY, "SUNO_BASE_URL": "http://x/"}).base_url == "http://x"
    try:
        suno.create({"SUNO_READ_TIMEOUT": "soon"})
    except ValueError as exc:
        assert "SUNO_READ_TIMEOUT" in str(exc)
    else:
        raise AssertionError("a bad timeout must stop the start")
