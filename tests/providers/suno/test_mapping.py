"""Suno's pure mapping: the request body, the status table row by row, the error codes."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from providers.base import (
    RequestRejected,
    UpstreamAuthError,
    UpstreamError,
    UpstreamInsufficientCredits,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from providers.suno import callbacks, errors, mapping, validation
from providers.suno.schemas import SunoState
from tests.providers.suno.helpers import request
from tests.support.wire import assert_valid, quiet

NOW = 1_750_000_000.0
TASK = "5c79be8e"


def body(req: Any) -> dict[str, Any]:
    return json.loads(mapping.encode(mapping.to_native(req)))


# ------------------------------------------------------------------------- request


def test_simple_mode_sends_only_the_prompt_and_the_placeholder_callback() -> None:
    assert body(request("suno/v4.5+", prompt="a calm piano piece")) == {
        "customMode": False,
        "instrumental": False,
        "model": "V4_5PLUS",
        "callBackUrl": mapping.PLACEHOLDER_CALLBACK,
        "prompt": "a calm piano piece",
    }
    assert mapping.PLACEHOLDER_CALLBACK.startswith("https://callback.invalid/")


def test_custom_mode_sends_the_lyrics_as_prompt_with_style_title_and_the_native_block() -> None:
    from providers.base import Callback

    cb = Callback(url="https://gw.example/v1/callbacks/suno/mus_1/tok", job_id="mus_1", token="tok")
    req = request(
        "suno/v5", prompt=None, lyrics="[Verse] la la", style="jazz", title="Blue",
        callback=cb, options={"vocalGender": "f", "styleWeight": 0.65, "personaId": "p1"},
    )  # fmt: skip
    assert body(req) == {
        "customMode": True, "instrumental": False, "model": "V5", "callBackUrl": cb.url,
        "prompt": "[Verse] la la", "style": "jazz", "title": "Blue", "personaId": "p1",
        "vocalGender": "f", "styleWeight": 0.65,
    }  # fmt: skip


def test_custom_instrumental_sends_the_description_as_prompt() -> None:
    req = request("suno/v4", prompt="soft piano", style="classical", title="Calm",
                  instrumental=True)  # fmt: skip
    got = body(req)
    assert got["customMode"] is True and got["instrumental"] is True
    assert (got["prompt"], got["style"], got["title"]) == ("soft piano", "classical", "Calm")
    got = body(request("suno/v4", prompt=None, style="lo-fi", title="T", instrumental=True))
    assert "prompt" not in got


def test_aliases_route_to_the_same_native_model() -> None:
    assert body(request("suno/v4.5plus"))["model"] == body(request("suno/v4.5+"))["model"]
    assert body(request("suno/v4.5-all"))["model"] == "V4_5ALL"


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("model", "fields", "param", "code"),
    [
        ("suno/v4.5", {"prompt": None}, "prompt", "missing_parameter"),
        ("suno/v4.5", {"prompt": "  "}, "prompt", "missing_parameter"),
        ("suno/v5", {"prompt": "x" * 501}, "prompt", "validation_error"),
        ("suno/v4.5", {"lyrics": "la", "prompt": None, "title": "T"}, "style",
         "missing_parameter"),
        ("suno/v4.5", {"lyrics": "la", "prompt": None, "style": "s"}, "title",
         "missing_parameter"),
        ("suno/v4.5", {"style": "s", "title": "T", "prompt": None}, "lyrics",
         "missing_parameter"),
        ("suno/v4.5", {"style": "s", "title": "T", "lyrics": "la"}, "prompt",
         "invalid_parameter"),
        ("suno/v4.5", {"style": "s", "title": "T", "lyrics": "la", "instrumental": True,
                       "prompt": None}, "lyrics", "invalid_parameter"),
        ("suno/v4", {"lyrics": "x" * 3001, "style": "s", "title": "T", "prompt": None},
         "lyrics", "validation_error"),
        ("suno/v4", {"style": "s" * 201, "title": "T", "instrumental": True}, "style",
         "validation_error"),
        ("suno/v4.5-all", {"style": "s", "title": "t" * 81, "instrumental": True}, "title",
         "validation_error"),
        ("suno/v4.5", {"prompt": "p", "options": {"vocalGender": "m"}}, "suno.vocalGender",
         "unsupported_parameter"),
        ("suno/v4.5", {"style": "s", "title": "T", "instrumental": True,
                       "options": {"personaModel": "voice_persona"}}, "suno.personaId",
         "missing_parameter"),
        # AI Stats' customMode rules (its reason codes travel on the error)
        ("suno/v4.5", {"prompt": None, "options": {"customMode": False}}, "prompt",
         "missing_parameter"),
        ("suno/v4.5", {"prompt": "p", "options": {"customMode": True, "style": "s"}},
         "title", "missing_parameter"),
        ("suno/v4.5", {"prompt": None, "options": {"customMode": True, "style": "s",
                                                   "title": "T"}}, "prompt",
         "missing_parameter"),
        ("suno/v4.5", {"prompt": "p", "style": "s", "title": "T",
                       "options": {"customMode": False}}, "suno.customMode",
         "invalid_parameter"),
        ("suno/v4.5", {"prompt": "p", "options": {"model": "V5"}}, "suno.model",
         "invalid_parameter"),
    ],
)  # fmt: skip
def test_requests_sunoapi_would_refuse_are_400s_naming_the_param(
    model: str, fields: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(RequestRejected) as info:
        validation.check(request(model, **fields))
    assert (info.value.param, info.value.code) == (param, code)


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        ("suno/v5", {"prompt": "x" * 500}),
        ("suno/v4", {"lyrics": "x" * 3000, "style": "s" * 200, "title": "t" * 80,
                     "prompt": None}),
        ("suno/v5", {"lyrics": "x" * 5000, "style": "s" * 1000, "title": "t" * 100,
                     "prompt": None}),
        ("suno/v4.5-all", {"style": "s", "title": "t" * 80, "instrumental": True}),
        ("suno/v4.5", {"style": "s", "title": "T", "instrumental": True,
                       "options": {"negativeTags": "metal", "audioWeight": 1.0}}),
    ],
)  # fmt: skip
def test_documented_limits_are_accepted_up_to_the_edge(model: str, fields: dict[str, Any]) -> None:
    validation.check(request(model, **fields))


# --------------------------------------------------------------------- status table


def record(status: str | None, songs: list[dict[str, Any]] | None = None, **data: Any) -> bytes:
    return json.dumps(
        {
            "code": 200,
            "msg": "success",
            "data": {"taskId": TASK, "status": status, "response": {"sunoData": songs}, **data},
        }
    ).encode()


def song(n: int, audio: bool = True, stream: bool = True, **kw: Any) -> dict[str, Any]:
    return {
        "id": f"s{n}",
        "audioUrl": f"https://cdn.example/s{n}.mp3" if audio else "",
        "streamAudioUrl": f"https://cdn.example/s{n}" if stream else "",
        "imageUrl": f"https://cdn.example/s{n}.jpeg",
        "prompt": "[Verse] words",
        "title": "Iron Man",
        "tags": "rock",
        "duration": 198.44,
        **kw,
    }


def start(**state: Any) -> Any:
    return mapping.render(SunoState(task_id=TASK, **state), None, NOW)


def fetched(raw: bytes, last: Any = None, now: float = NOW) -> Any:
    snap = mapping.apply_record(last or start(), mapping.decode_record(raw), now)
    assert_valid(snap)
    return snap


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (record("PENDING"), "queued"),
        (record("TEXT_SUCCESS", [song(1, False, False)]), "in_progress"),
        (record("FIRST_SUCCESS", [song(1, False), song(2, False, False)]), "in_progress"),
        (record("SUCCESS", [song(1), song(2)]), "completed"),
        (record("CREATE_TASK_FAILED"), "failed"),
        (record("GENERATE_AUDIO_FAILED"), "failed"),
        (record("SENSITIVE_WORD_ERROR"), "failed"),
        (record("CALLBACK_EXCEPTION", [song(1), song(2)]), "completed"),
        (record("CALLBACK_EXCEPTION", [song(1, False)]), "in_progress"),
        (record("WHATEVER_NEW", [song(1), song(2)]), "in_progress"),
    ],
)
def test_every_native_status_row(raw: bytes, status: str) -> None:
    with quiet():
        assert fetched(raw).status == status


def test_success_without_every_song_s_audio_is_not_completed() -> None:
    snap = fetched(record("SUCCESS", [song(1), song(2, audio=False)]))
    assert snap.status == "in_progress" and snap.progress == 90


def test_first_success_exposes_the_first_stream_while_in_progress() -> None:
    snap = fetched(record("FIRST_SUCCESS", [song(1, audio=False), song(2, False, False)]))
    assert snap.status == "in_progress"
    assert snap.outputs[0].stream_audio_url == "https://cdn.example/s1"
    assert snap.outputs[0].audio_url is None and snap.outputs[1].stream_audio_url is None


def test_completed_outputs_carry_every_field() -> None:
    snap = fetched(record("SUCCESS", [song(1), song(2)]))
    assert [o.index for o in snap.outputs] == [0, 1]
    out = snap.outputs[0]
    assert (out.id, out.title, out.tags, out.duration, out.lyrics) == (
        "s1", "Iron Man", "rock", 198.44, "[Verse] words"
    )  # fmt: skip
    assert out.image_url == "https://cdn.example/s1.jpeg" and snap.progress == 100


def test_instrumental_songs_have_no_lyrics() -> None:
    last = mapping.render(SunoState(task_id=TASK, instrumental=True), None, NOW)
    snap = fetched(record("SUCCESS", [song(1), song(2)]), last)
    assert all(o.lyrics is None for o in snap.outputs)


@pytest.mark.parametrize(
    ("word", "code", "default"),
    [
        ("CREATE_TASK_FAILED", "generation_failed", "could not create"),
        ("GENERATE_AUDIO_FAILED", "generation_failed", "failed to generate"),
        ("SENSITIVE_WORD_ERROR", "content_flagged", "refuses"),
    ],
)
def test_failures_carry_the_native_reason(word: str, code: str, default: str) -> None:
    snap = fetched(record(word, errorCode=501, errorMessage="Lyrics contain banned words"))
    assert snap.error is not None and snap.error.code == code
    assert snap.error.message == "Lyrics contain banned words"
    assert snap.error.native_status == word
    assert default in fetched(record(word)).error.message  # type: ignore[union-attr]


def test_callback_exception_without_audio_waits_then_fails_or_completes_what_exists() -> None:
    one = fetched(record("CALLBACK_EXCEPTION", [song(1, audio=False), song(2, False)]))
    assert one.status == "in_progress"
    later = NOW + mapping.AUDIO_GRACE + 1
    none = fetched(record("CALLBACK_EXCEPTION", []), one, later)
    assert none.status == "failed" and "CALLBACK_EXCEPTION" in none.error.message  # type: ignore[union-attr]
    partial = fetched(record("CALLBACK_EXCEPTION", [song(1), song(2, audio=False)]), one, later)
    assert partial.status == "completed" and [o.index for o in partial.outputs] == [0]


def test_unknown_status_is_logged_and_never_completed() -> None:
    with quiet() as logs:
        snap = fetched(record("REVIEWING", [song(1), song(2)]))
    assert snap.status == "in_progress" and snap.native_status == "REVIEWING"
    assert [e["status"] for e in logs if e["event"] == "unknown_native_status"] == ["REVIEWING"]


def test_status_only_moves_forward() -> None:
    done = fetched(record("SUCCESS", [song(1), song(2)]))
    for raw in (record("PENDING"), record("FIRST_SUCCESS"), record("GENERATE_AUDIO_FAILED")):
        again = fetched(raw, done)
        assert again.status == "completed" and again.outputs == done.outputs
    failed = fetched(record("SENSITIVE_WORD_ERROR"))
    assert fetched(record("SUCCESS", [song(1), song(2)]), failed).status == "failed"
    first = fetched(record("FIRST_SUCCESS", [song(1, audio=False)]))
    assert fetched(record("PENDING"), first).status == "in_progress"


# ---------------------------------------------------------------------- callbacks


def cb(stage: str, items: list[dict[str, Any]] | None = None, code: int = 200, **kw: Any) -> Any:
    raw = json.dumps(
        {"code": code, "msg": kw.pop("msg", "ok"),
         "data": {"callbackType": stage, "task_id": kw.pop("task", TASK), "data": items}}
    ).encode()  # fmt: skip
    return callbacks.decode_callback(raw)


def snake(n: int, audio: bool = True) -> dict[str, Any]:
    return {
        "id": f"s{n}",
        "audio_url": f"https://cdn.example/s{n}.mp3" if audio else "",
        "stream_audio_url": f"https://cdn.example/s{n}",
        "image_url": f"https://cdn.example/s{n}.jpeg",
        "prompt": "[Verse] words",
        "title": "Iron Man",
        "tags": "rock",
        "duration": 198.44,
    }


def test_callback_stages_advance_the_job() -> None:
    snap = start()
    for stage, items, status in (
        ("text", [], "in_progress"),
        ("first", [snake(1, audio=False)], "in_progress"),
        ("complete", [snake(1), snake(2)], "completed"),
    ):
        snap = callbacks.apply_callback(snap, cb(stage, items), NOW)
        assert_valid(snap)
        assert snap.status == status
    assert snap.outputs[1].audio_url == "https://cdn.example/s2.mp3"


def test_error_callback_fails_with_the_native_reason_and_code() -> None:
    snap = callbacks.apply_callback(start(), cb("error", code=501, msg="Audio failed"), NOW)
    assert snap.status == "failed" and snap.error is not None
    assert snap.error.message == "Audio failed" and snap.state.error_code == 501  # type: ignore[union-attr]
    late = callbacks.apply_callback(snap, cb("complete", [snake(1), snake(2)]), NOW)
    assert late.status == "failed"


def test_callbacks_in_any_order_with_duplicates_converge() -> None:
    stages = [cb("text", []), cb("first", [snake(1, False)]), cb("complete", [snake(1), snake(2)])]
    in_order, shuffled = start(), start()
    for view in stages:
        in_order = callbacks.apply_callback(in_order, view, NOW)
    for view in (stages[2], stages[0], stages[2], stages[1]):
        shuffled = callbacks.apply_callback(shuffled, view, NOW)
    assert (shuffled.status, shuffled.outputs) == (in_order.status, in_order.outputs)


def test_foreign_or_unreadable_callbacks_are_value_errors() -> None:
    with pytest.raises(ValueError):
        callbacks.apply_callback(start(), cb("text", task="other"), NOW)
    for raw in (b"nope", b"[]", b"{}", b'{"data": 3}'):
        with pytest.raises(ValueError):
            callbacks.decode_callback(raw)


def test_unknown_callback_type_changes_nothing() -> None:
    with quiet() as logs:
        snap = callbacks.apply_callback(start(), cb("surprise", []), NOW)
    assert snap.status == "queued"
    assert any(e["event"] == "unknown_callback_type" for e in logs)


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("code", "cls", "http"),
    [
        (400, UpstreamRejected, 400),
        (401, UpstreamAuthError, 502),
        (404, UpstreamNotFound, 502),
        (405, UpstreamRateLimited, 429),
        (413, UpstreamRejected, 400),
        (429, UpstreamInsufficientCredits, 402),
        (430, UpstreamRateLimited, 429),
        (455, UpstreamUnavailable, 503),
        (500, UpstreamError, 502),
        (503, UpstreamError, 502),
    ],
)
def test_body_codes_map_to_the_error_table(code: int, cls: type, http: int) -> None:
    raw = json.dumps({"code": code, "msg": "nope", "data": None}).encode()
    assert errors.error_class(200, raw) is cls and cls.http_status == http
    with pytest.raises(cls) as info:
        mapping.decode_record(raw)
    assert info.value.native_status == code and type(info.value) is cls
    if cls is UpstreamRateLimited:
        assert info.value.retry_after == errors.RATE_LIMIT_RETRY


def test_an_http_429_without_a_body_code_is_a_rate_limit() -> None:
    assert errors.error_class(429, b"Too Many Requests") is UpstreamRateLimited
    assert errors.error_class(502, b"<html>") is UpstreamError


def test_create_answer_without_task_id_is_an_unknown_outcome_error() -> None:
    with pytest.raises(UpstreamError) as info:
        mapping.decode_create(b'{"code": 200, "msg": "success", "data": {}}')
    assert info.value.native_status == 200
    assert mapping.decode_create(b'{"code": 200, "data": {"taskId": "t1"}}') == "t1"


def test_state_round_trips_through_the_store_encoding() -> None:
    snap = fetched(record("FIRST_SUCCESS", [song(1, audio=False)]))
    raw = msgspec.msgpack.encode(snap.state)
    assert msgspec.msgpack.decode(raw, type=SunoState) == snap.state
