"""Unit tests of the pure MusicGPT mapping, from every example in the reference docs.

Examples: MusicGPT's public API docs (https://docs.musicgpt.com) (create answer, merged
byId shape, webhooks, error bodies, status list) and the docs' "Status Check" page
(https://docs.musicgpt.com) (the older single-output byId shape). The webhook generic
payload is the docs' older page."""

from __future__ import annotations

import itertools
import json
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from providers.base import (
    AudioFormat,
    Callback,
    JobRef,
    Snapshot,
    SubmitRequest,
    UpstreamError,
    UpstreamRejected,
)
from providers.kit.retry_after import retry_after
from providers.kit.scrub import scrub
from providers.musicgpt import callbacks, mapping
from providers.musicgpt.catalog import MODELS, MusicGPTOptions
from providers.musicgpt.coerce import as_flag, as_number, as_str

MODEL = {m.native_model: m for m in MODELS}
NOW = 1_000_000.0
TASK = "15b6..."
C1, C2 = "5400...", "ac5e..."

# reference: "Create: POST /v2/MusicAI" success example
CREATE_OK = {
    "success": True,
    "message": "Message published to queue",
    "task_id": "50c04348-...",
    "eta": 154,
    "conversion_id_1": "5a2c6385-...",
    "conversion_id_2": "e3c65d75-...",
    "is_flagged": False,
    "reason": "",
    "credit_estimate": 0.06,
}

# reference: "Newer MUSIC_AI shape (one object for both songs)"
MERGED = {
    "task_id": TASK,
    "feature": "MUSIC_AI",
    "status": "COMPLETED",
    "message": "Audio conversion completed",
    "webhook_url": "...",
    "createdAt": "2026-08-17T17:07:40.557077+00:00",
    "updatedAt": "...",
    "conversion_id_1": C1,
    "conversion_id_2": C2,
    "title_1": "Sugar Cup",
    "lyrics_1": "...",
    "sounds_1": "",
    "conversion_path_1": f"https://cdn1.musicgpt.com/conversions/api/standard/{C1}/{C1}.mp3",
    "conversion_path_wav_1": f"https://cdn1.musicgpt.com/conversions/api/hq/{C1}/{C1}.wav",
    "lyrics_timestamped_1": "...",
    "conversion_duration_1": 208.28,
    "album_cover_path": f".../{TASK}.jpg",
    "album_cover_thumbnail": f".../{TASK}_thumb.jpg",
    "is_streaming_request": True,
    "is_streaming_available": True,
    "generation_completed_at": "2026-08-17 17:11:27.054 +0000",
    "title_2": "Sugar Cup II",
    "lyrics_2": "la la",
    "conversion_path_2": f"https://cdn1.musicgpt.com/conversions/api/standard/{C2}/{C2}.mp3",
    "conversion_path_wav_2": f"https://cdn1.musicgpt.com/conversions/api/hq/{C2}/{C2}.wav",
    "conversion_duration_2": 247.84,
}

# seed 000: the older generic shape
SEED = {
    "task_id": "12345678-abcd-1234-efgh-567890abcdef",
    "conversion_id": "87654321-dcba-4321-hgfe-098765fedcba",
    "status": "COMPLETED",
    "status_msg": "Conversion successful",
    "audio_url": "https://lalals.s3.amazonaws.com/audiofile.mp3",
    "conversion_cost": 1.25,
    "title": "Generated Song",
    "lyrics": "[Verse 1]...",
    "music_style": "Pop",
    "createdAt": "2025-01-01T12:00:00Z",
    "updatedAt": "2025-01-01T12:05:00Z",
}


def req(**kw: Any) -> SubmitRequest:
    kw.setdefault("model", MODEL["v7"])
    kw.setdefault("prompt", "a happy song")
    return SubmitRequest(**kw)


def submitted(
    fmt: AudioFormat = "mp3", task: str = TASK, ids: tuple[str, str] = (C1, C2)
) -> Snapshot:
    body = {**CREATE_OK, "task_id": task, "conversion_id_1": ids[0], "conversion_id_2": ids[1]}
    resp = mapping.decode_create(json.dumps(body).encode())
    return mapping.from_create(resp, req(format=fmt), NOW).snapshot


def by_id(
    last: Snapshot, conversion: dict[str, Any], fmt: AudioFormat = "mp3", **extra: Any
) -> Snapshot:
    raw = json.dumps({"success": True, "conversion": conversion, **extra}).encode()
    return mapping.apply_by_id(last, mapping.decode_by_id(raw), fmt, NOW + 10)


def hook(last: Snapshot, payload: dict[str, Any], fmt: AudioFormat = "mp3") -> Snapshot:
    raw = json.dumps(payload).encode()
    return callbacks.apply_webhook(last, callbacks.decode_webhook(raw), fmt, NOW + 10)


# ----------------------------------------------------------------------- create


def test_to_native_maps_every_field() -> None:
    opts = MusicGPTOptions(
        gender="female",
        voice_id="v-1",
        vocal_only=False,
        negative_tags="metal",
        lyrics_timestamps=True,
        generate_album_cover=True,
    )
    cb = Callback(
        url="https://gw.example/v1/callbacks/musicgpt/mus_1/tok", job_id="mus_1", token="tok"
    )
    body = mapping.to_native(
        req(
            model=MODEL["v6"],
            lyrics="hello",
            title="T",
            style="jazz",
            instrumental=False,
            options=opts,
            callback=cb,
        )
    )
    assert msgspec.json.decode(mapping.encode(body)) == {
        "prompt": "a happy song",
        "music_style": "jazz",
        "lyrics": "hello",
        "title": "T",
        "make_instrumental": False,
        "vocal_only": False,
        "gender": "female",
        "voice_id": "v-1",
        "model": "v6",
        "generate_album_cover": True,
        "lyrics_timestamps": True,
        "negative_tags": "metal",
        "webhook_url": cb.url,
    }


def test_to_native_omits_unset_fields() -> None:
    body = mapping.to_native(req(model=MODEL["v7-pro"], instrumental=True))
    assert msgspec.json.decode(mapping.encode(body)) == {
        "prompt": "a happy song",
        "make_instrumental": True,
        "model": "v7-pro",
    }


def test_create_answer_gives_native_ids_and_two_queued_outputs() -> None:
    resp = mapping.decode_create(json.dumps(CREATE_OK).encode())
    sub = mapping.from_create(resp, req(), NOW)
    assert sub.native_id == "50c04348-..."
    assert sub.native_ids == ["50c04348-...", "5a2c6385-...", "e3c65d75-..."]
    snap = sub.snapshot
    assert snap.status == "queued" and snap.progress == 0 and snap.error is None
    assert [(o.index, o.id, o.audio_url) for o in snap.outputs] == [
        (0, "5a2c6385-...", None),
        (1, "e3c65d75-...", None),
    ]
    assert snap.state.eta == 154.0 and snap.state.task_id == "50c04348-..."
    msgspec.json.encode(snap)  # the state must be storable


def test_flagged_create_is_a_failed_job_with_the_reason() -> None:
    body = {**CREATE_OK, "is_flagged": True, "reason": "Prompt contains a public figure"}
    sub = mapping.from_create(mapping.decode_create(json.dumps(body).encode()), req(), NOW)
    assert sub.snapshot.status == "failed"
    assert sub.snapshot.error is not None
    assert sub.snapshot.error.code == "content_flagged"
    assert sub.snapshot.error.message == "Prompt contains a public figure"


def test_flag_as_string_and_eta_as_string() -> None:
    body = {**CREATE_OK, "is_flagged": "true", "reason": "nope", "eta": "154"}
    sub = mapping.from_create(mapping.decode_create(json.dumps(body).encode()), req(), NOW)
    assert sub.snapshot.status == "failed"
    assert sub.snapshot.state.eta == 154.0


@pytest.mark.parametrize(
    "body",
    [
        {"success": False, "error": "Insufficient credit balance"},
        {"success": False, "message": "Insufficient credit balance"},
        {"message": "Insufficient credit balance"},
    ],
)
def test_create_200_without_task_is_rejected(body: dict[str, Any]) -> None:
    resp = mapping.decode_create(json.dumps(body).encode())
    with pytest.raises(UpstreamRejected, match="Insufficient credit balance"):
        mapping.from_create(resp, req(), NOW)


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,2]", b'{"task_id": 5'])
def test_malformed_create_answer_raises_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        mapping.decode_create(raw)


# -------------------------------------------------------------------- byId merged


def test_merged_completed_example() -> None:
    snap = by_id(submitted(), MERGED)
    assert snap.status == "completed" and snap.native_status == "COMPLETED"
    assert snap.progress == 100 and snap.error is None
    o1, o2 = snap.outputs
    assert (o1.index, o1.id, o2.index, o2.id) == (0, C1, 1, C2)
    assert o1.audio_url == MERGED["conversion_path_1"]
    assert o2.audio_url == MERGED["conversion_path_2"]
    assert (o1.duration, o2.duration) == (208.28, 247.84)
    assert (o1.title, o2.title) == ("Sugar Cup", "Sugar Cup II")
    assert (o1.lyrics, o2.lyrics) == ("...", "la la")
    assert o1.image_url == o2.image_url == f".../{TASK}.jpg"
    assert o1.tags is None


def test_merged_wav_format_picks_conversion_path_wav() -> None:
    snap = by_id(submitted("wav"), MERGED, "wav")
    assert [o.audio_url for o in snap.outputs] == [
        MERGED["conversion_path_wav_1"],
        MERGED["conversion_path_wav_2"],
    ]


def test_wav_not_offered_before_final_but_mp3_fallback_once_completed() -> None:
    conv = {
        **MERGED,
        "status": "IN_PROGRESS",
        "conversion_path_wav_1": "",
        "conversion_path_wav_2": None,
    }
    snap = by_id(submitted("wav"), conv, "wav")
    assert snap.status == "in_progress"
    assert [o.audio_url for o in snap.outputs] == [None, None]
    done = by_id(snap, {**conv, "status": "COMPLETED"}, "wav")
    assert done.status == "completed"
    assert [o.audio_url for o in done.outputs] == [
        MERGED["conversion_path_1"],
        MERGED["conversion_path_2"],
    ]


def test_request_style_becomes_tags() -> None:
    resp = mapping.decode_create(json.dumps(CREATE_OK).encode())
    snap = mapping.from_create(resp, req(style="jazz, piano"), NOW).snapshot
    assert [o.tags for o in snap.outputs] == ["jazz, piano", "jazz, piano"]


def test_numbers_as_strings_nulls_absent_and_unknown_fields() -> None:
    conv = {
        "task_id": TASK,
        "status": "COMPLETED",
        "conversion_id_1": C1,
        "conversion_id_2": C2,
        "conversion_path_1": "https://a/1.mp3",
        "conversion_path_2": "https://a/2.mp3",
        "conversion_duration_1": "208.28",
        "conversion_duration_2": "",
        "title_1": None,
        "lyrics_2": None,
        "album_cover_path": None,
        "brand_new_field": {"nested": [1, 2, {"x": None}]},
        "conversion_cost": "0.88",
    }
    snap = by_id(submitted(), conv, extra_top_level={"also": "ignored"})
    assert snap.status == "completed"
    assert [o.duration for o in snap.outputs] == [208.28, None]
    assert snap.outputs[0].title is None and snap.outputs[0].image_url is None
    assert snap.state.cost == 0.88


def test_completed_with_one_song_missing_is_not_completed() -> None:
    conv = {**MERGED, "conversion_path_2": "", "conversion_path_wav_2": ""}
    snap = by_id(submitted(), conv)
    assert snap.status == "in_progress"
    assert snap.outputs[0].audio_url and snap.outputs[1].audio_url is None
    assert snap.progress is not None and 50 <= snap.progress < 100


STATUS_CASES = [
    ("IN_QUEUE", "queued"),
    ("PENDING", "queued"),
    ("IN_PROGRESS", "in_progress"),
    ("PROCESSING", "in_progress"),
    ("PARTIAL_COMPLETED", "in_progress"),
    ("COMPLETED", "completed"),
    ("ERROR", "failed"),
    ("FAILED", "failed"),
]


@pytest.mark.parametrize(("native", "expected"), STATUS_CASES)
def test_every_status_value(native: str, expected: str) -> None:
    assert mapping.STATUS_MAP[native] == expected
    conv = {"task_id": TASK, "status": native, "conversion_id_1": C1, "conversion_id_2": C2}
    if expected == "completed":
        conv |= {"conversion_path_1": "https://a/1.mp3", "conversion_path_2": "https://a/2.mp3"}
    snap = by_id(submitted(), conv)
    assert snap.status == expected and snap.native_status == native
    if expected == "failed":
        assert snap.error is not None and snap.error.code == "generation_failed"
        assert snap.error.native_status == native


def test_status_word_case_and_whitespace_tolerated() -> None:
    conv = {**MERGED, "status": " completed "}
    assert by_id(submitted(), conv).status == "completed"


@pytest.mark.parametrize("word", ["DONE", "SUCCESS", "COMPLETE", "", None, 7])
def test_unknown_status_is_logged_and_never_completed(word: Any) -> None:
    conv = {**MERGED, "status": word}
    with capture_logs() as logs:
        snap = by_id(submitted(), conv)
    assert snap.status != "completed"
    assert snap.status == "in_progress"  # every song is there; only the word is unknown
    raw = as_str(word)
    events = [e for e in logs if e["event"] == "unknown_native_status"]
    if raw is None:
        assert events == []
    else:
        assert events and events[0]["raw"] == raw and events[0]["log_level"] == "warning"


def test_error_carries_the_native_message() -> None:
    conv = {"task_id": TASK, "status": "ERROR", "message": "Generation failed: model overloaded"}
    snap = by_id(submitted(), conv)
    assert snap.status == "failed"
    assert snap.error is not None and snap.error.message == "Generation failed: model overloaded"
    assert snap.progress is None


def test_status_only_moves_forward() -> None:
    done = by_id(submitted(), MERGED)
    again = by_id(done, {**MERGED, "status": "IN_QUEUE"})
    assert again.status == "completed"
    failed = by_id(submitted(), {"task_id": TASK, "status": "FAILED"})
    assert by_id(failed, MERGED).status == "failed"
    progress = by_id(submitted(), {"task_id": TASK, "status": "IN_PROGRESS"})
    assert by_id(progress, {"task_id": TASK, "status": "PENDING"}).status == "in_progress"


def test_byid_without_conversion_is_an_upstream_error() -> None:
    raw = b'{"success": false, "error": "Conversion not found"}'
    with pytest.raises(UpstreamError, match="Conversion not found"):
        mapping.apply_by_id(submitted(), mapping.decode_by_id(raw), "mp3", NOW)


# ---------------------------------------------------------------- byId seed shape


def test_seed_single_output_shape() -> None:
    snap = by_id(submitted(task=SEED["task_id"]), SEED)
    assert snap.status == "completed"
    assert len(snap.outputs) == 1
    (out,) = snap.outputs
    assert out.index == 0 and out.id == SEED["conversion_id"]
    assert out.audio_url == SEED["audio_url"]
    assert (out.title, out.lyrics, out.tags) == ("Generated Song", "[Verse 1]...", "Pop")
    assert snap.state.cost == 1.25


def test_seed_shape_cost_as_string_and_wav_request_falls_back_once_final() -> None:
    snap = by_id(submitted("wav", task=SEED["task_id"]), {**SEED, "conversion_cost": "0.88"}, "wav")
    assert snap.state.cost == 0.88
    assert snap.status == "completed" and snap.outputs[0].audio_url == SEED["audio_url"]


def test_seed_shape_in_queue_has_one_pending_output() -> None:
    conv = {**SEED, "status": "IN_QUEUE", "audio_url": ""}
    snap = by_id(submitted(task=SEED["task_id"]), conv)
    assert snap.status == "queued" and len(snap.outputs) == 1
    assert snap.outputs[0].audio_url is None


# --------------------------------------------------------------------- webhooks


def music_ai(cid: str, n: int) -> dict[str, Any]:
    return {
        "success": True,
        "conversion_type": "Music AI",
        "subtype": "music_ai",
        "task_id": TASK,
        "conversion_id": cid,
        "conversion_path": f"https://cdn/{cid}.mp3",
        "conversion_path_wav": f"https://cdn/{cid}.wav",
        "conversion_duration": "12.5" if n == 1 else 13,
        "lyrics": f"lyrics {n}",
        "lyrics_timestamped": json.dumps([{"text": "la", "start": 0.0}]),
        "title": f"Song {n}",
        "album_cover_path": "https://cdn/cover.jpg",
        "is_flagged": False,
        "reason": "",
    }


HOOKS = [
    music_ai(C1, 1),
    music_ai(C2, 2),
    {
        "success": True,
        "conversion_type": "Music AI",
        "subtype": "audio_streaming",
        "task_id": TASK,
        "conversion_id": C1,
        "streaming_url": "https://cdn/1.m3u8",
    },
    {
        "success": True,
        "conversion_type": "Music AI",
        "subtype": "audio_streaming",
        "task_id": TASK,
        "conversion_id": C2,
        "streaming_url": "https://cdn/2.m3u8",
    },
    {
        "success": True,
        "conversion_type": "Music AI",
        "subtype": "album_cover_generation",
        "task_id": TASK,
        "image_path": "https://cdn/cover2.jpg",
        "thumbnail_path": "https://cdn/t.jpg",
        "image_paths": ["https://cdn/cover2.jpg"],
        "conversion_id_1": C1,
        "conversion_id_2": C2,
    },
    {
        "success": True,
        "conversion_type": "Music AI",
        "subtype": "lyrics_timestamped",
        "task_id": TASK,
        "conversion_id": C2,
        "lyrics_timestamped": "[]",
    },
]


def test_each_callback_subtype() -> None:
    snap = submitted()
    snap = hook(snap, HOOKS[2])
    assert snap.status == "in_progress"  # streaming has started
    assert snap.outputs[0].stream_audio_url == "https://cdn/1.m3u8"
    snap = hook(snap, HOOKS[0])
    assert snap.status == "in_progress"
    assert snap.outputs[0].audio_url == "https://cdn/" + C1 + ".mp3"
    assert snap.outputs[0].duration == 12.5 and snap.outputs[0].title == "Song 1"
    snap = hook(snap, HOOKS[4])
    assert snap.outputs[1].image_url == "https://cdn/cover2.jpg"
    snap = hook(snap, HOOKS[5])
    snap = hook(snap, HOOKS[1])
    assert snap.status == "completed" and snap.progress == 100
    assert [o.lyrics for o in snap.outputs] == ["lyrics 1", "lyrics 2"]
    assert snap.outputs[1].duration == 13.0


def test_callbacks_in_any_order_with_duplicates_converge() -> None:
    expected: Snapshot | None = None
    for perm in itertools.permutations(range(len(HOOKS)), 4):
        order = [HOOKS[i] for i in perm] + HOOKS + [HOOKS[perm[0]]]
        snap = submitted()
        for payload in order:
            snap = hook(snap, payload)
        assert snap.status == "completed"
        view = [(o.id, o.audio_url, o.stream_audio_url, o.duration, o.title) for o in snap.outputs]
        if expected is None:
            expected = snap
        assert view == [
            (o.id, o.audio_url, o.stream_audio_url, o.duration, o.title) for o in expected.outputs
        ]


def test_callback_wav_format() -> None:
    snap = submitted("wav")
    for payload in HOOKS[:2]:
        snap = hook(snap, payload, "wav")
    assert [o.audio_url for o in snap.outputs] == [f"https://cdn/{C1}.wav", f"https://cdn/{C2}.wav"]


def test_flagged_music_ai_callback_fails_the_job() -> None:
    payload = {
        "subtype": "music_ai",
        "task_id": TASK,
        "conversion_id": C1,
        "is_flagged": True,
        "reason": "Contains copyrighted lyrics",
    }
    snap = hook(submitted(), payload)
    assert snap.status == "failed"
    assert snap.error is not None and snap.error.message == "Contains copyrighted lyrics"
    assert hook(snap, music_ai(C2, 2)).status == "failed"


def test_older_generic_callback_payload() -> None:
    # the docs' older webhook page: no subtype, one audio_url
    payload = {
        "task_id": TASK,
        "status": "COMPLETED",
        "status_msg": "Conversion successful",
        "conversion_type": "MUSIC_AI",
        "audio_url": "https://musicgpt.s3.amazonaws.com/audiofile.mp3",
        "title": "Generated Song",
        "conversion_cost": 1.25,
        "createdAt": "2025-01-01T12:00:00Z",
        "updatedAt": "2025-01-01T12:05:00Z",
    }
    snap = hook(submitted(), payload)
    assert snap.status == "completed" and len(snap.outputs) == 1
    assert snap.outputs[0].audio_url == payload["audio_url"]
    failed = hook(submitted(), {"task_id": TASK, "status": "ERROR", "status_msg": "boom"})
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.message == "boom"


def test_callback_then_poll_keeps_stream_urls() -> None:
    snap = hook(submitted(), HOOKS[2])
    snap = by_id(snap, MERGED)
    assert snap.status == "completed"
    assert snap.outputs[0].stream_audio_url == "https://cdn/1.m3u8"


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[]", b"{}", b'{"subtype": "music_ai", "task_id": "15b6..."}'],
)
def test_unreadable_callback_raises_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        callbacks.apply_webhook(submitted(), callbacks.decode_webhook(raw), "mp3", NOW)


def test_callback_for_another_task_or_conversion_raises() -> None:
    with pytest.raises(ValueError):
        hook(submitted(), {**music_ai(C1, 1), "task_id": "other"})
    with pytest.raises(ValueError):
        hook(submitted(), music_ai("someone-else", 1))


def test_unknown_subtype_changes_nothing() -> None:
    last = submitted()
    snap = hook(last, {"subtype": "stems_separation", "task_id": TASK})
    assert snap.status == last.status and snap.outputs == last.outputs


def test_apply_does_not_mutate_the_previous_snapshot() -> None:
    last = submitted()
    before = msgspec.json.encode(last)
    hook(last, HOOKS[0])
    by_id(last, MERGED)
    assert msgspec.json.encode(last) == before


def test_job_ref_round_trip_through_json() -> None:
    """The gateway stores snapshots as JSON; a decoded one must still apply."""
    snap = hook(submitted(), HOOKS[0])
    stored = msgspec.json.decode(msgspec.json.encode(snap), type=Snapshot)
    ref = JobRef(
        job_id="mus_1",
        model=MODEL["v7"],
        native_id=TASK,
        native_ids=[TASK, C1, C2],
        format="mp3",
        last=stored,
    )
    assert hook(ref.last, HOOKS[1]).status == "completed"


# ------------------------------------------------------------------ errors, coercion


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b'{"success": false, "error": "Insufficient credit balance"}',
            "Insufficient credit balance",
        ),
        (b'{"success": false, "message": "Incorrect API key"}', "Incorrect API key"),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b'{"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]}', "field required"),
        (b"<html>502 Bad Gateway</html>", None),  # the kit then says "answered 502: <reason>"
        (b"", None),
    ],
)
def test_error_message_variants(raw: bytes, expected: str | None) -> None:
    assert mapping.error_message(raw) == expected


def test_coercions() -> None:
    assert as_number("0.88") == 0.88 and as_number(3) == 3.0 and as_number("") is None
    assert as_number(None) is None and as_number(True) is None and as_number("nan") is None
    assert as_number(-1) is None and as_number("abc") is None
    assert as_str("  ") is None and as_str(None) is None and as_str(5) == "5"
    assert as_flag("true") and as_flag(True) and as_flag(1) and not as_flag("false")
    assert not as_flag(None) and not as_flag(0)
    assert scrub("key sk-123 leaked", "sk-123") == "key [redacted] leaked"
    assert retry_after("7") == 7.0 and retry_after(None) is None
