"""Property-based tests (hypothesis) of Suno's pure mapping: native bytes -> Snapshot.

Entry points fed any bytes, any JSON value and, mostly, plausible payloads (the real
field names with values of mixed types): record-info answers (``decode_record`` ->
``apply_record``) and callbacks (``decode_callback`` -> ``apply_callback``).

Properties: every answer is a valid ``Snapshot`` or a documented exception; status only
moves forward and a final job stays final; a job whose native status is not documented
is never completed; callbacks converge in any order, with duplicates; no error message
or log line ever holds the API key. Every run is derandomized.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.base import ProviderError, Snapshot
from providers.kit import Answer
from providers.suno import callbacks, mapping
from providers.suno.client import SunoClient
from providers.suno.schemas import SunoState
from tests.support.wire import assert_valid, dumps, maybe_url, payloads, quiet, texts
from tests.support.wire import bodies as wire_bodies
from tests.support.wire import json_values as wire_values

NOW = 1_750_000_000.0
TASK = "task-1"
DOCUMENTED = [*mapping.STATUS_MAP, mapping.CALLBACK_EXCEPTION]
RANK = {"queued": 0, "in_progress": 1, "completed": 2, "failed": 2}

PROPS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CHAINS = settings(PROPS, max_examples=80)

numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1.5, 198.44, 10**400, -1]),
)
numeric = st.one_of(numbers, numbers.map(str), st.sampled_from(["", "nan", "1_0", "６０"]))
json_values = wire_values(numbers)
words = st.one_of(st.sampled_from(DOCUMENTED), st.sampled_from(["success", "DONE", ""]), texts)
codes = st.one_of(st.sampled_from([200, 200, 200, 400, 429, 455, 501, "200"]), numeric)
song_ids = st.sampled_from(["s1", "s2", "s3", None, ""])
mixed = st.one_of(json_values, numeric, words, maybe_url)


def wire(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return payloads(fields, mixed=mixed, noise=("x", "type"), json_values=json_values)


SONG = wire(
    {
        "id": song_ids,
        "audioUrl": maybe_url,
        "streamAudioUrl": maybe_url,
        "imageUrl": maybe_url,
        "prompt": texts,
        "title": texts,
        "tags": texts,
        "duration": numeric,
    }
)
SNAKE = wire(
    {
        "id": song_ids,
        "audio_url": maybe_url,
        "stream_audio_url": maybe_url,
        "image_url": maybe_url,
        "prompt": texts,
        "title": texts,
        "duration": numeric,
    }
)
RECORD = wire(
    {
        "code": codes,
        "msg": texts,
        "data": wire(
            {
                "taskId": st.just(TASK),
                "status": words,
                "response": wire({"sunoData": st.lists(SONG, max_size=3)}),
                "errorCode": numeric,
                "errorMessage": texts,
            }
        ),
    }
)
stages = st.sampled_from(["text", "first", "complete", "error", "failed", "odd", ""])
CALLBACK = wire(
    {
        "code": codes,
        "msg": texts,
        "data": wire(
            {
                "callbackType": stages,
                "task_id": st.sampled_from([TASK, TASK, "other", None]),
                "data": st.lists(SNAKE, max_size=3),
            }
        ),
    }
)


def start() -> Snapshot:
    return mapping.render(SunoState(task_id=TASK), None, NOW)


def step(last: Snapshot, kind: str, raw: bytes, now: float) -> Snapshot | None:
    """One native body folded in; None when refused as documented."""
    try:
        if kind == "record":
            return mapping.apply_record(last, mapping.decode_record(raw), now)
        return callbacks.apply_callback(last, callbacks.decode_callback(raw), now)
    except ProviderError:
        assert kind == "record"
    except ValueError:
        assert kind == "callback"
    return None


def run(seq: list[tuple[str, bytes]], tick: float = 60.0) -> list[Snapshot]:
    snap, seen = start(), [start()]
    for t, (kind, raw) in enumerate(seq):
        new = step(snap, kind, raw, NOW + tick * t)
        if new is None:
            continue
        assert_valid(new)
        assert RANK[new.status] >= RANK[snap.status], (snap.status, new.status)
        if snap.status in ("completed", "failed"):
            assert new.status == snap.status
        if snap.status == "in_progress" and new.status == "in_progress":
            assert (new.progress or 0) >= (snap.progress or 0)
        stored = msgspec.msgpack.decode(msgspec.msgpack.encode(new.state), type=SunoState)
        assert stored == new.state
        snap = new
        seen.append(snap)
    return seen


@PROPS
@given(raw=wire_bodies(RECORD, json_values))
def test_record_answer_gives_a_valid_snapshot_or_a_provider_error(raw: bytes) -> None:
    with quiet():
        run([("record", raw)])


@PROPS
@given(raw=wire_bodies(CALLBACK, json_values))
def test_callback_gives_a_valid_snapshot_or_a_value_error(raw: bytes) -> None:
    with quiet():
        run([("callback", raw)])


steps = st.lists(
    st.one_of(
        st.tuples(st.just("record"), wire_bodies(RECORD, json_values)),
        st.tuples(st.just("callback"), CALLBACK.map(dumps)),
    ),
    max_size=8,
)


@CHAINS
@given(seq=steps, tick=st.sampled_from([0.0, 60.0, mapping.AUDIO_GRACE]))
def test_status_only_moves_forward_and_final_stays_final(
    seq: list[tuple[str, bytes]], tick: float
) -> None:
    with quiet():
        run(seq, tick)


unknown = st.one_of(texts, st.sampled_from(["DONE", "COMPLETED", "success", "REVIEW"])).filter(
    lambda w: w.strip().upper() not in DOCUMENTED
)


@st.composite
def unknown_records(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """record-info answers whose status is not documented, songs with audio included."""
    return [
        (
            "record",
            dumps(
                {
                    "code": 200,
                    "data": {
                        "taskId": TASK,
                        "status": draw(unknown),
                        "response": {"sunoData": draw(st.lists(SONG, max_size=3))},
                    },
                }
            ),
        )
        for _ in range(draw(st.integers(1, 5)))
    ]


@CHAINS
@given(seq=unknown_records())
def test_an_undocumented_status_never_completes_and_is_logged(seq: list[tuple[str, bytes]]) -> None:
    with quiet() as logs:
        seen = run(seq, tick=mapping.AUDIO_GRACE * 2)
    assert all(s.status in ("queued", "in_progress") for s in seen)
    said = [json.loads(raw)["data"]["status"] for _, raw in seq if _decodes(raw)]
    read = [w for w in said if mapping.as_str(w)]
    warned = [e for e in logs if e["event"] == "unknown_native_status"]
    assert len(warned) == len(read)


def _decodes(raw: bytes) -> bool:
    try:
        mapping.decode_record(raw)
    except ProviderError:
        return False
    return True


@st.composite
def story(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """A task's callbacks (each stage once, songs consistent) and a shuffled delivery
    with duplicates."""
    n = draw(st.integers(1, 2))
    full = [
        {"id": f"s{i}", "audio_url": f"https://cdn.example/{i}.mp3", "duration": 3.0,
         "stream_audio_url": f"https://cdn.example/{i}", "title": draw(texts)}
        for i in range(n)
    ]  # fmt: skip
    first = [{**full[0], "audio_url": ""}]
    end = draw(st.sampled_from(["complete", "error"]))
    bodies = [
        {"code": 200, "msg": "t", "data": {"callbackType": "text", "task_id": TASK, "data": []}},
        {"code": 200, "msg": "f", "data": {"callbackType": "first", "task_id": TASK,
                                           "data": first}},
        {"code": 200 if end == "complete" else 501, "msg": "end",
         "data": {"callbackType": end, "task_id": TASK, "data": full if end == "complete"
                  else None}},
    ]  # fmt: skip
    raws = [dumps(b) for b in bodies]
    extra = draw(st.lists(st.sampled_from(raws), max_size=3))
    return raws, draw(st.permutations([*raws, *extra]))


def deliver(raws: list[bytes]) -> Snapshot:
    snap = start()
    for raw in raws:
        snap = callbacks.apply_callback(snap, callbacks.decode_callback(raw), NOW)
    return snap


@CHAINS
@given(pair=story())
def test_callbacks_converge_in_any_order_with_duplicates(
    pair: tuple[list[bytes], list[bytes]],
) -> None:
    in_order, shuffled = pair
    expected, got = deliver(in_order), deliver(shuffled)
    assert expected.status in ("completed", "failed")
    assert got.status == expected.status
    assert (got.error, got.outputs) == (expected.error, expected.outputs)


SECRET = "sk-live-Suno/Key+With=Odd&Chars-12345678"


@PROPS
@given(
    code=st.sampled_from([400, 401, 405, 413, 429, 430, 455, 500, 531]),
    before=texts,
    after=texts,
    form=st.sampled_from(["raw", "json", "bearer"]),
)
def test_no_error_message_or_log_line_holds_the_key(
    code: int, before: str, after: str, form: str
) -> None:
    echoed = {"raw": SECRET, "json": json.dumps(SECRET)[1:-1], "bearer": f"Bearer {SECRET}"}[form]
    body = json.dumps({"code": code, "msg": f"{before}{echoed}{after}", "data": None}).encode()
    client = SunoClient(api_key=SECRET, base_url="http://127.0.0.1:9")  # no I/O: never called
    with quiet() as logs:
        exc = client.api.status_error("create", Answer(code, "", _headers(), body))
    assert isinstance(exc, ProviderError)
    assert SECRET not in f"{exc} {exc.message} {exc.args!r}"
    assert SECRET not in repr(logs)


def _headers() -> Any:
    from multidict import CIMultiDict, CIMultiDictProxy

    return CIMultiDictProxy(CIMultiDict())
