"""Pure mapping and request checks, from the examples in the reference and seed 002."""

from __future__ import annotations

import json

import msgspec
import pytest
from structlog.testing import capture_logs

from providers.base import (
    Callback,
    RequestRejected,
    UpstreamError,
    UpstreamInsufficientCredits,
    UpstreamNotFound,
    UpstreamRateLimited,
)
from providers.tempolor import mapping, validation
from providers.tempolor.schemas import DownloadView, NativeJob, TemPolorState
from tests.providers.tempolor.helpers import request

# The example response of seed 002 (GET /tempolor/music/{job_id}), verbatim.
# fmt: off
SEED_STATUS = {
    "bizType": "ai_material_music", "childType": "lyric_to_material",
    "matChildType": "lyric_to_material", "sourceType": "sm_user_gen",
    "itemId": "abcdef123456789", "job_id": "user:12345-tempolor:user_id-job:abcdef123456789",
    "genItemId": "abcdef123456789", "userId": "user_id", "titleEn": "Epic Orchestral",
    "cover": "https://example.com/cover.png",
    "mp3OssId": "ai_material/ai_material/mp3/abcdef123456789.mp3",
    "wavOssId": "ai_material/ai_material/wav/abcdef123456789.wav", "ossWatermarkMp3": "",
    "officialPlaylistSong": False, "status": 30, "status_name": "COMPLETED",
    "status_final": True, "progress": 100, "downloadTotal": 0, "likeTotal": 0,
    "collectTotal": 0,
    "musicMaterial": {
        "style": "Orchestral", "chord": "", "mood": "", "inst": "", "instInfo": "",
        "scene": "", "otherInfo": "A cinematic orchestral piece with dramatic string sections",
        "otherInfoCn": "", "key": "F:minor", "bpm": 130, "dur": 180, "seed": 1234567890,
        "waveformUrl": "https://example.com/waveform.json",
    },
    "readStatus": False, "downloadStatus": False, "createTime": 1716565425000,
    "updateTime": 1716565700000, "materialQualityScore": 0,
    "ltmMaterialExtendDto": {
        "lyricsPrompt": "Sample lyrics here",
        "description": "A cinematic orchestral piece with dramatic string sections",
        "ltmVocalModel": False, "ltmMidiModel": False, "genItemId": "abcdef123456789",
        "prompt": "A cinematic orchestral piece with dramatic string sections", "genMode": 0,
        "model": "v1-dit-obleck-stereo-zh-en-270-wf", "modelShowName": "v3.5",
    },
    "editType": "gen", "operatorType": "gen", "rootItemId": "abcdef123456789",
    "parentItemId": "abcdef123456789", "canExtend": True, "canEditLyrics": True,
    "canFixVocals": True, "canReplaced": False,
}
# fmt: on
JOB_ID = SEED_STATUS["job_id"]
# The reference's download example (note remainSeconds 0, as in useapi's own page).
DOC_DOWNLOAD = {
    "url": "https://ugc-cdn.api.instabeat.ai/ai_material/ai_material/mp3/abcdef123456789.mp3"
    "?auth_key=1747536678-0-0-9c67b3d5f8a2c41e0d7f6eab3f82fb45",
    "remainSeconds": 0,
}
NOW = 1_750_000_000.0


def status(**overrides: object) -> bytes:
    return json.dumps({**SEED_STATUS, **overrides}).encode()


def merged(job: NativeJob | None = None, **overrides: object) -> NativeJob:
    view = mapping.decode_status(status(**overrides))
    return mapping.merge_status(job or NativeJob(id=JOB_ID), view)


def with_url(job: NativeJob, remain: float = 600) -> NativeJob:
    view = DownloadView(url=f"https://cdn.example/{job.id}.mp3", remainSeconds=remain)
    return mapping.apply_download(job, view, "mp3", NOW)


# ------------------------------------------------------------------- seed example


def test_seed_status_maps_every_field_the_gateway_reads() -> None:
    job = merged()
    assert (job.status, job.final, job.progress) == (30, True, 100)
    assert job.title == "Epic Orchestral"
    assert job.cover == "https://example.com/cover.png"
    assert job.tags == "Orchestral"
    assert job.duration == 180.0
    assert job.lyrics == "Sample lyrics here"


def test_status_30_is_not_completed_until_a_download_url_is_obtained() -> None:
    job = merged()
    assert mapping.job_status(job) == ("in_progress", 99)
    snap = mapping.to_snapshot([job])
    assert snap.status == "in_progress" and snap.progress == 99
    assert snap.native_status == "COMPLETED"
    assert snap.outputs[0].audio_url is None
    assert mapping.needs_download(job, NOW) and not mapping.needs_status(job)


def test_doc_download_example_completes_the_job_with_the_default_lifetime() -> None:
    view = mapping.decode_download(json.dumps(DOC_DOWNLOAD).encode())
    job = mapping.apply_download(merged(), view, "mp3", NOW)
    # remainSeconds 0 reads as "lifetime unknown": the default lifetime is assumed.
    assert job.url_expires_at == NOW + mapping.DEFAULT_URL_TTL
    assert job.url_refresh_at == NOW + mapping.DEFAULT_URL_TTL - mapping.URL_MARGIN_MAX
    snap = mapping.to_snapshot([job])
    assert snap.status == "completed" and snap.progress == 100
    (out,) = snap.outputs
    assert out.index == 0 and out.id == JOB_ID
    assert out.audio_url == DOC_DOWNLOAD["url"]
    assert out.image_url == "https://example.com/cover.png"
    assert (out.title, out.tags, out.duration, out.lyrics) == (
        "Epic Orchestral",
        "Orchestral",
        180.0,
        "Sample lyrics here",
    )
    assert snap.refresh_after == job.url_refresh_at


@pytest.mark.parametrize(
    ("remain", "expires", "refresh"),
    [(600, 600, 570), (10, 10, 8), (1.0, 1.0, 0.8), ("120", 120, 96)],
)
def test_refresh_is_due_a_little_before_the_url_expires(
    remain: object, expires: float, refresh: float
) -> None:
    job = mapping.apply_download(
        merged(), DownloadView(url="https://x/a.mp3", remainSeconds=remain), "wav", NOW
    )
    assert job.url_expires_at == pytest.approx(NOW + expires)
    assert job.url_refresh_at == pytest.approx(NOW + refresh)
    assert job.url_format == "wav"
    assert not mapping.needs_download(job, NOW + refresh - 0.01)
    assert mapping.needs_download(job, NOW + refresh)


def test_a_404_from_download_keeps_the_job_waiting_and_a_failed_renewal_retries_soon() -> None:
    job = merged()
    assert mapping.apply_download(job, None, "mp3", NOW) == job  # still no URL: in_progress
    playable = with_url(job)
    renewed = mapping.apply_download(playable, None, "mp3", NOW + 700)
    assert renewed.url == playable.url
    assert renewed.url_refresh_at == NOW + 700 + mapping.URL_RETRY_SECONDS


# ------------------------------------------------------------------- status table


@pytest.mark.parametrize(
    ("native", "progress", "expected"),
    [
        (0, 0, ("queued", 0)),
        (0, 40, ("in_progress", 40)),
        (0, 100, ("in_progress", 99)),
        (10, 0, ("failed", 100)),
        (30, 100, ("in_progress", 99)),
    ],
)
def test_status_table(native: int, progress: int, expected: tuple[str, int]) -> None:
    job = merged(status=native, progress=progress, status_final=native != 0)
    assert mapping.job_status(job) == expected


def test_status_table_is_declared_as_data() -> None:
    assert mapping.STATUS_MAP == {0: "in_progress", 10: "failed", 30: "completed"}


@pytest.mark.parametrize("raw", ["30", 30.0])
def test_numeric_status_in_other_shapes_is_understood(raw: object) -> None:
    assert merged(status=raw).status == 30


def test_status_name_is_used_when_status_is_absent() -> None:
    body = {k: v for k, v in SEED_STATUS.items() if k != "status"}
    view = mapping.decode_status(json.dumps(body).encode())
    assert mapping.native_status(view) == 30


@pytest.mark.parametrize("final", [False, None])
def test_unknown_status_is_logged_and_stays_in_progress(final: object) -> None:
    with capture_logs() as logs:
        job = merged(status=20, status_name="REVIEWING", status_final=final, progress=60)
    assert [e["event"] for e in logs] == ["unknown_native_status"]
    assert logs[0]["status"] == 20
    assert mapping.job_status(job) == ("in_progress", 60)
    snap = mapping.to_snapshot([with_url(job)])  # even with a URL it is never completed
    assert snap.status == "in_progress"


def test_unknown_status_with_status_final_fails_and_is_never_completed() -> None:
    with capture_logs() as logs:
        job = merged(status="DONE?", status_final=True)
    assert logs[0]["event"] == "unknown_native_status" and logs[0]["status"] == "DONE?"
    snap = mapping.to_snapshot([with_url(job)])
    assert snap.status == "failed"
    assert snap.error is not None and snap.error.code == "unknown_native_status"
    assert snap.outputs == []


def test_failed_native_job_reports_generation_failed() -> None:
    job = merged(status=10, status_name="FAILED", progress=0, error="Content policy")
    snap = mapping.to_snapshot([job])
    assert snap.status == "failed"
    assert snap.error is not None
    assert (snap.error.code, snap.error.message, snap.error.native_status) == (
        "generation_failed",
        "Content policy",
        "FAILED",
    )


# ------------------------------------------------------------ merge is monotonic


def test_merge_never_moves_backwards_and_tolerates_duplicates() -> None:
    running = merged(status=0, status_final=False, progress=70)
    older = merged(running, status=0, status_final=False, progress=30)
    assert older.progress == 70  # an out-of-order update does not lower progress
    done = merged(older)
    assert merged(done) == done  # duplicate
    late = merged(done, status=0, status_final=False, progress=10)
    assert (late.status, late.final, late.progress) == (30, True, 100)
    failed_late = merged(done, status=10)
    assert failed_late.status == 30  # the first final word stands


# ------------------------------------------------------------- create / aggregate


def test_create_answer_with_several_jobs() -> None:
    raw = b'{"jobs": ["user:1-tempolor:u-job:a", "user:1-tempolor:u-job:b"], "unlimited": true}'
    ids = mapping.decode_create(raw)
    sub = mapping.from_create(ids)
    assert sub.native_id == "user:1-tempolor:u-job:a"
    assert sub.native_ids == ids
    assert sub.snapshot.status == "queued" and sub.snapshot.progress == 0
    assert [o.index for o in sub.snapshot.outputs] == [0, 1]
    assert mapping.load_jobs(sub.snapshot.state, ids) == [NativeJob(id=i) for i in ids]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"jobs": []}', UpstreamError),
        (b'{"jobs": ["user:', UpstreamError),
        (b"[1, 2]", UpstreamError),
        (b'{"error": "Subscription required", "code": 402}', UpstreamInsufficientCredits),
        (b'{"error": "Too many parallel jobs", "code": 429}', UpstreamRateLimited),
    ],
)
def test_bad_create_answers(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        mapping.decode_create(raw)


def test_error_envelope_behind_a_2xx_status_answer() -> None:
    with pytest.raises(UpstreamNotFound):
        mapping.decode_status(b'{"error": "No record found for x-job:y", "code": 404}')
    with pytest.raises(UpstreamError):
        mapping.decode_status(b"<html>")


def two(a: NativeJob, b: NativeJob) -> list[NativeJob]:
    return [msgspec.structs.replace(a, id="j-a"), msgspec.structs.replace(b, id="j-b")]


def test_aggregate_waits_for_every_native_job() -> None:
    jobs = two(with_url(merged()), merged(status=0, status_final=False, progress=40))
    snap = mapping.to_snapshot(jobs)
    assert snap.status == "in_progress"
    assert snap.progress == 70  # mean of 100 and 40
    assert snap.native_status == "COMPLETED,GENERATING"
    assert snap.outputs[0].audio_url and snap.outputs[1].audio_url is None


def test_aggregate_completed_when_one_completed_and_the_rest_failed() -> None:
    snap = mapping.to_snapshot(two(merged(status=10), with_url(merged())))
    assert snap.status == "completed" and snap.progress == 100
    assert [(o.index, o.id) for o in snap.outputs] == [(1, "j-b")]  # only playable outputs
    assert all(o.audio_url for o in snap.outputs)


def test_aggregate_failed_when_all_failed() -> None:
    snap = mapping.to_snapshot(two(merged(status=10), merged(status=10)))
    assert snap.status == "failed" and snap.outputs == []


def test_aggregate_queued_while_every_native_job_is_queued() -> None:
    snap = mapping.to_snapshot(two(NativeJob(id="x"), merged(status=0, progress=0)))
    assert snap.status == "queued"


def test_aggregate_refresh_after_is_the_earliest_url_renewal() -> None:
    jobs = two(with_url(merged(), remain=600), with_url(merged(), remain=100))
    assert mapping.to_snapshot(jobs).refresh_after == NOW + 80


def test_state_round_trips_and_garbage_does_not_decode() -> None:
    jobs = two(with_url(merged()), merged(status=0, progress=5))
    raw = msgspec.msgpack.encode(mapping.to_snapshot(jobs).state)
    state = msgspec.msgpack.decode(raw, type=TemPolorState)
    assert mapping.load_jobs(state, ["j-a", "j-b"]) == jobs
    # Garbage never reaches the mapping: it fails to decode as the typed state (the
    # gateway logs that), and a missing state gives fresh native jobs.
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"jobs": "nonsense"}, TemPolorState)
    assert mapping.load_jobs(None, ["j-a"]) == [NativeJob(id="j-a")]


# ------------------------------------------------------------------- request body


def test_song_request_body() -> None:
    cb = Callback(
        url="https://gw.example/v1/callbacks/tempolor/mus_1/tok", job_id="mus_1", token="tok"
    )
    req = request(
        "tempolor/v4.5+",
        lyrics="la la",
        callback=cb,
        options={"artistVoiceItemId": "voice-1", "user_id": "u1", "maxJobs": 3},
    )
    endpoint, body = mapping.to_native(req)
    assert endpoint == "song"
    assert json.loads(mapping.encode(body)) == {
        "prompt": req.prompt,
        "lyrics": "la la",
        "model_song": "v4.5+",
        "artistVoiceItemId": "voice-1",
        "user_id": "u1",
        "maxJobs": 3,
        "replyUrl": cb.url,
        "replyRef": "mus_1:tok",
    }


@pytest.mark.parametrize(
    ("model", "wire"),
    [("tempolor/i3", "i3"), ("tempolor/i3.5", "i3.5 beta"), ("tempolor/i4", "i4")],
)
def test_instrumental_request_body(model: str, wire: str) -> None:
    req = request(model, options={"tonality": "F#:minor", "bpm": 80, "chords": "C F G Am"})
    endpoint, body = mapping.to_native(req)
    assert endpoint == "instrumental"
    assert json.loads(mapping.encode(body)) == {
        "prompt": req.prompt,
        "model_instrumental": wire,
        "tonality": "F#:minor",
        "bpm": 80,
        "chords": "C F G Am",
    }


# ------------------------------------------------------------------ request checks


def rejected(req: object) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        validation.check(req)  # type: ignore[arg-type]
    return info.value


@pytest.mark.parametrize(
    "model", ["tempolor/v3", "tempolor/v3.5", "tempolor/v4.5+", "tempolor/v4.8"]
)
def test_instrumental_with_a_song_model_names_the_instrumental_models(model: str) -> None:
    err = rejected(request(model, instrumental=True))
    assert (err.code, err.param) == ("unsupported_parameter", "instrumental")
    assert "use one of tempolor/i3, tempolor/i3.5, tempolor/i4" in err.message


def test_vocals_with_an_instrumental_model_are_rejected() -> None:
    err = rejected(request("tempolor/i4", instrumental=False))
    assert err.param == "instrumental" and "tempolor/v4.8" in err.message
    assert rejected(request("tempolor/i4", lyrics="words")).param == "lyrics"


@pytest.mark.parametrize("name", ["title", "style", "duration"])
def test_title_style_duration_are_unsupported(name: str) -> None:
    value = 30 if name == "duration" else "x"
    err = rejected(request(**{name: value}))
    assert (err.code, err.param) == ("unsupported_parameter", name)


@pytest.mark.parametrize(
    ("model", "options", "param"),
    [
        ("tempolor/v4.8", {"tonality": "C:major"}, "tempolor.tonality"),
        ("tempolor/v3", {"bpm": 100}, "tempolor.bpm"),
        ("tempolor/v3.5", {"chords": "C G"}, "tempolor.chords"),
        ("tempolor/i3", {"artistVoiceItemId": "v"}, "tempolor.artistVoiceItemId"),
        ("tempolor/i3.5", {"clonedVoiceItemId": "v"}, "tempolor.clonedVoiceItemId"),
        ("tempolor/i4", {"midiItemId": "m"}, "tempolor.midiItemId"),
    ],
)
def test_options_that_do_not_fit_the_model_kind(model: str, options: dict, param: str) -> None:
    err = rejected(request(model, options=options))
    assert (err.code, err.param) == ("unsupported_parameter", param)


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"bpm": 49}, "tempolor.bpm"),
        ({"bpm": 191}, "tempolor.bpm"),
        ({"tonality": "H:major"}, "tempolor.tonality"),
        ({"tonality": "c:major"}, "tempolor.tonality"),
        ({"chords": "C" * 201}, "tempolor.chords"),
        ({"maxJobs": 0}, "tempolor.maxJobs"),
    ],
)
def test_out_of_range_options(options: dict, param: str) -> None:
    err = rejected(request("tempolor/i3", options=options))
    assert (err.code, err.param) == ("validation_error", param)


def test_in_range_options_pass() -> None:
    assert len(validation.TONALITIES) == 24
    for tonality in validation.TONALITIES:
        validation.check(request("tempolor/i3", options={"tonality": tonality}))
    for bpm in (50, 190):
        validation.check(request("tempolor/i4", options={"bpm": bpm, "chords": "C" * 200}))
    validation.check(
        request(
            "tempolor/v4.8",
            lyrics="x" * 3000,
            instrumental=False,
            options={"midiItemId": "m", "clonedVoiceItemId": "c"},
        )
    )


def test_prompt_is_required_and_bounded() -> None:
    assert rejected(request(prompt="  ")).param == "prompt"
    assert rejected(request(prompt="p" * 2001)).param == "prompt"
    assert rejected(request(lyrics="l" * 3001)).param == "lyrics"
