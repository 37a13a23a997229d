"""Property-based tests (hypothesis) of MusicGPT's pure mapping: native bytes -> Snapshot.

Entry points, each fed any bytes, any JSON value and, mostly, structurally plausible
payloads (the real wire field names with values of mixed types):

* create answer: ``mapping.decode_create`` -> ``mapping.from_create``;
* byId answer: ``mapping.decode_by_id`` -> ``mapping.apply_by_id``;
* webhook: ``callbacks.decode_webhook`` -> ``callbacks.apply_webhook``.

Properties: every answer is a valid ``Snapshot`` (see ``assert_valid``) or a documented
exception (``ValueError`` from the decoders and ``apply_webhook``, ``UpstreamRejected``
from ``from_create``, ``UpstreamError`` from ``apply_by_id``); status only moves forward;
an unknown native status word never completes a job, except by the documented
``music_ai`` rule (pinned in its own test); callbacks converge in any order, with
duplicates. Every run is derandomized (fixed seed, no example database).

Usage::

    python3 -m uv run --frozen pytest tests/providers/musicgpt/test_properties.py -q
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from providers.base import (
    STATUS_RANK,
    AudioFormat,
    Snapshot,
    SubmitRequest,
    UpstreamError,
    UpstreamRejected,
)
from providers.kit import Answer, Upstream, UpstreamHTTP
from providers.musicgpt import callbacks, mapping
from providers.musicgpt.catalog import MODELS
from tests.support.wire import NO_BASE, assert_valid, dumps, maybe_url, payloads, quiet, texts, urls
from tests.support.wire import bodies as wire_bodies
from tests.support.wire import json_values as wire_values

MODEL = {m.native_model: m for m in MODELS}["v7"]
NOW = 1_750_000_000.0
TASK, C1, C2, STRANGER = "task-7f3a", "conv-1", "conv-2", "conv-x"

#: The documented status words (DESIGN.md "Status rules"); the test's own oracle.
TABLE_WORDS = frozenset(
    {
        "IN_QUEUE",
        "PENDING",
        "IN_PROGRESS",
        "PROCESSING",
        "PARTIAL_COMPLETED",
        "COMPLETED",
        "ERROR",
        "FAILED",
    }
)
UNKNOWN_WORDS = (
    "DONE",
    "SUCCESS",
    "COMPLETE",
    "COMPLETED!",
    "COMPLETEDD",
    "NOT_COMPLETED",
    "COMPLETED_WITH_ERRORS",
    "FINISHED",
    "CANCELLED",
    "QUEUED",
    "RUNNING",
    "200",
    "1",
)

PATHS = {
    "conversion_path_1": "https://cdn.example/1.mp3",
    "conversion_path_2": "https://cdn.example/2.mp3",
}

#: Reproducible in CI (fixed seed, no example database); sized so this file runs in a few
#: seconds of CPU.
PROPS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CHAINS = settings(PROPS, max_examples=60)  # sequences: each example is many payloads


def is_unknown(word: Any) -> bool:
    """A status value that carries a word (as MusicGPT spells one) outside the table."""
    text = mapping.as_str(word)
    return text is not None and text.strip().upper() not in TABLE_WORDS


# -------------------------------------------------------------------- strategies

numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 5e-324, 1e-310, 1e308, -0.0, 154, 10**30, 10**400, -(10**400)]),
)
numeric = st.one_of(
    numbers,
    numbers.map(str),
    st.sampled_from(["", " 12 ", "0.88", "1e-310", "nan", "inf", "-inf", "1_0", "１２", "abc"]),
)
flags = st.sampled_from([True, False, "true", "false", "TRUE", "1", "0", 1, 0, "yes", "", None])
known_words = st.sampled_from(sorted(TABLE_WORDS))
words = st.one_of(
    known_words,
    known_words.map(lambda w: f" {w.lower()} "),
    st.sampled_from(UNKNOWN_WORDS),
    texts,
    st.integers(-5, 500),
)
unknown_words = st.one_of(st.sampled_from(UNKNOWN_WORDS), texts, st.integers(-5, 500)).filter(
    is_unknown
)
ids = st.one_of(st.sampled_from([C1, C2, STRANGER, "", " "]), texts)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.floats(), texts)
json_values = wire_values(numbers)
#: Any type at all, for a field whose type upstream got wrong (NaN/Infinity included:
#: ``json.dumps`` writes them as tokens the strict decoder must refuse).
mixed = st.one_of(json_values, numeric, flags, words, maybe_url)
NOISE = ("feature", "createdAt", "webhook_url", "x")


def wire(
    fields: dict[str, st.SearchStrategy[Any]],
    base: st.SearchStrategy[dict[str, Any]] = NO_BASE,
) -> st.SearchStrategy[dict[str, Any]]:
    return payloads(fields, mixed=mixed, noise=NOISE, json_values=json_values, base=base)


def bodies(plausible: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    return wire_bodies(plausible, json_values)


CREATE = wire(
    {
        "success": flags,
        "message": texts,
        "error": texts,
        "task_id": st.one_of(st.just(TASK), ids),
        "conversion_id_1": ids,
        "conversion_id_2": ids,
        "eta": numeric,
        "is_flagged": flags,
        "reason": texts,
        "credit_estimate": numeric,
    }
)
CONVERSION_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "task_id": st.sampled_from([TASK, "other-task", ""]),
    "status": words,
    "message": texts,
    "status_msg": texts,
    "album_cover_path": maybe_url,
    "conversion_id": ids,
    "audio_url": maybe_url,
    "conversion_cost": numeric,
    "title": texts,
    "lyrics": texts,
    "music_style": texts,
}
for _n in (1, 2):
    CONVERSION_FIELDS |= {
        f"conversion_id_{_n}": ids,
        f"title_{_n}": texts,
        f"lyrics_{_n}": texts,
        f"conversion_path_{_n}": maybe_url,
        f"conversion_path_wav_{_n}": maybe_url,
        f"conversion_duration_{_n}": numeric,
    }
#: This task's songs in the merged shape (ids, files, metadata present or not).
SONG_FIELDS: dict[str, st.SearchStrategy[Any]] = {}
for _n, _cid in ((1, C1), (2, C2)):
    SONG_FIELDS |= {
        f"conversion_id_{_n}": st.just(_cid),
        f"title_{_n}": texts,
        f"conversion_path_{_n}": maybe_url,
        f"conversion_path_wav_{_n}": maybe_url,
        f"conversion_duration_{_n}": numeric,
    }
CONVERSION = st.one_of(
    wire(SONG_FIELDS, st.fixed_dictionaries({"task_id": st.just(TASK), "status": words})),
    wire(CONVERSION_FIELDS),
)
BY_ID = st.one_of(
    st.builds(lambda conv: {"success": True, "conversion": conv}, CONVERSION),
    wire({"success": flags, "conversion": CONVERSION, "error": texts, "message": texts}),
)
WEBHOOK_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "subtype": st.one_of(
        st.sampled_from(
            ["music_ai", "audio_streaming", "album_cover_generation", "lyrics_timestamped"]
        ),
        st.sampled_from(["MUSIC_AI", " music_ai ", "stems", ""]),
    ),
    "task_id": st.sampled_from([TASK, "other-task", ""]),
    "conversion_id": ids,
    "conversion_path": maybe_url,
    "conversion_path_wav": maybe_url,
    "conversion_duration": numeric,
    "lyrics": texts,
    "lyrics_timestamped": st.one_of(texts, json_values),
    "title": texts,
    "album_cover_path": maybe_url,
    "is_flagged": flags,
    "reason": texts,
    "streaming_url": maybe_url,
    "image_path": maybe_url,
    "thumbnail_path": maybe_url,
    "image_paths": st.lists(st.one_of(maybe_url, scalars), max_size=3),
    "conversion_id_1": ids,
    "conversion_id_2": ids,
    "status": words,
    "status_msg": texts,
    "audio_url": maybe_url,
    "conversion_cost": numeric,
    "success": flags,
}
WEBHOOK = wire(WEBHOOK_FIELDS)
formats: st.SearchStrategy[AudioFormat] = st.sampled_from(["mp3", "wav"])


def request(fmt: AudioFormat, style: str | None = None) -> SubmitRequest:
    return SubmitRequest(model=MODEL, prompt="a song", format=fmt, style=style)


Start = tuple[Snapshot, AudioFormat]


def created(fmt: AudioFormat, eta: Any = 154, style: str | None = None) -> Start:
    """A job as the documented create answer leaves it."""
    body = {"success": True, "task_id": TASK, "conversion_id_1": C1, "conversion_id_2": C2}
    resp = mapping.decode_create(dumps({**body, "eta": eta}))
    return mapping.from_create(resp, request(fmt, style), NOW).snapshot, fmt


#: Created jobs with an eta of any plausible value.
started = st.builds(created, formats, st.none() | numeric, st.none() | texts)


Step = tuple[str, bytes]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("by_id"), BY_ID.map(dumps)),
        st.tuples(st.just("hook"), WEBHOOK.map(dumps)),
    ),
    max_size=8,
)


# ----------------------------------------------------------------------- helpers


def poll(last: Snapshot, raw: bytes, fmt: AudioFormat, now: float) -> Snapshot | None:
    """One byId answer applied; None for a documented refusal (then ``last`` holds)."""
    before = msgspec.json.encode(last)
    try:
        resp = mapping.decode_by_id(raw)
    except ValueError:
        return None
    try:
        snap = mapping.apply_by_id(last, resp, fmt, now)
    except UpstreamError:
        assert resp.conversion is None  # the only documented reason
        return None
    assert msgspec.json.encode(last) == before, "apply_by_id mutated the previous snapshot"
    return snap


def deliver(last: Snapshot, raw: bytes, fmt: AudioFormat, now: float) -> Snapshot | None:
    """One webhook body applied; None for a documented refusal (``ValueError``)."""
    before = msgspec.json.encode(last)
    try:
        snap = callbacks.apply_webhook(last, callbacks.decode_webhook(raw), fmt, now)
    except ValueError:
        return None
    assert msgspec.json.encode(last) == before, "apply_webhook mutated the previous snapshot"
    return snap


APPLY: dict[str, Callable[[Snapshot, bytes, AudioFormat, float], Snapshot | None]] = {
    "by_id": poll,
    "hook": deliver,
}


def assert_forward(old: Snapshot, new: Snapshot) -> None:
    if old.status in ("completed", "failed"):
        assert new.status == old.status, (old.status, new.status)
    assert STATUS_RANK[new.status] >= STATUS_RANK[old.status], (old.status, new.status)


def run(start: Snapshot, fmt: AudioFormat, seq: list[Step], tick: float = 5.0) -> list[Snapshot]:
    """Apply each step ``tick`` seconds apart (a refused one leaves the job as it was);
    returns every snapshot seen, checking each one and that status only moves forward."""
    seen = [start]
    for i, (kind, raw) in enumerate(seq):
        snap = APPLY[kind](seen[-1], raw, fmt, NOW + tick * (i + 1))
        if snap is not None:
            assert_valid(snap)
            assert_forward(seen[-1], snap)
            seen.append(snap)
    return seen


# --------------------------------------------------------- any input, no crash


@example(raw=dumps({"task_id": TASK, "eta": 10**400}), fmt="mp3", style=None)  # regression
@PROPS
@given(raw=bodies(CREATE), fmt=formats, style=st.none() | texts)
def test_create_answer_gives_a_valid_submission_or_a_documented_error(
    raw: bytes, fmt: AudioFormat, style: str | None
) -> None:
    try:
        resp = mapping.decode_create(raw)
    except ValueError:
        return
    try:
        with quiet():
            sub = mapping.from_create(resp, request(fmt, style), NOW)
    except UpstreamRejected:
        assert not mapping.as_flag(resp.is_flagged)
        return
    assert_valid(sub.snapshot)
    assert sub.snapshot.status in ("queued", "failed")  # nothing is playable yet
    assert all(sub.native_ids) and len(sub.native_ids) <= 3
    assert (sub.snapshot.status == "failed") == mapping.as_flag(resp.is_flagged)


@PROPS
@given(start=started, raw=bodies(BY_ID))
def test_by_id_answer_gives_a_valid_snapshot_or_a_documented_error(
    start: Start, raw: bytes
) -> None:
    last, fmt = start
    with quiet():
        snap = poll(last, raw, fmt, NOW + 30)
    if snap is not None:
        assert_valid(snap)
        assert_forward(last, snap)


@PROPS
@given(start=started, raw=bodies(WEBHOOK))
def test_webhook_gives_a_valid_snapshot_or_a_value_error(start: Start, raw: bytes) -> None:
    last, fmt = start
    with quiet():
        snap = deliver(last, raw, fmt, NOW + 30)
    if snap is not None:
        assert_valid(snap)
        assert_forward(last, snap)


ERROR_BODY = wire(
    {
        "success": flags,
        "error": st.one_of(texts, json_values),
        "message": st.one_of(texts, json_values),
        "detail": st.one_of(texts, st.lists(wire({"msg": texts, "loc": json_values}))),
    }
)


@PROPS
@given(raw=bodies(ERROR_BODY), status=st.sampled_from([400, 401, 402, 404, 429, 500, 502]))
def test_error_body_always_gives_a_short_message(raw: bytes, status: int) -> None:
    """The text of every ``ProviderError`` raised for a non-2xx answer (``error_message``
    read by the kit's ``Upstream``)."""
    text = mapping.error_message(raw)
    assert text is None or (text.strip() and len(text) <= 500)
    api = Upstream(
        provider="musicgpt",
        label="MusicGPT",
        http=UpstreamHTTP("http://127.0.0.1:9"),
        secret="k",
        error_text=mapping.error_message,
    )
    with quiet():
        exc = api.status_error("create", Answer(status, "", CIMultiDictProxy(CIMultiDict()), raw))
    assert exc.message.strip() and len(exc.message) <= 540


# Regressions the properties found: a completed WAV job (MP3 fallback once COMPLETED)
# that a later poll reports as IN_PROGRESS again must keep playable outputs; an eta so
# small that elapsed/eta overflows to infinity must not crash the progress estimate.
@example(
    start=created("wav"),
    seq=[
        ("by_id", dumps({"conversion": {"status": "COMPLETED"} | PATHS})),
        ("by_id", dumps({"conversion": {"status": "IN_PROGRESS"}})),
    ],
)
@example(
    start=created("mp3", "1e-310"),
    seq=[("by_id", dumps({"conversion": {"status": "IN_PROGRESS"}}))],
)
@CHAINS
@given(start=started, seq=steps)
def test_any_sequence_of_polls_and_callbacks_stays_valid_and_moves_forward(
    start: Start, seq: list[Step]
) -> None:
    with quiet():
        run(start[0], start[1], seq)


# ------------------------------------------------------------- unknown status words


def by_id_with(word: Any | None) -> st.SearchStrategy[bytes]:
    """A byId answer whose ``status`` is ``word`` (absent when None), any other fields."""
    status = st.just({} if word is None else {"status": word})
    fields = {k: v for k, v in CONVERSION_FIELDS.items() if k != "status"}
    conv = st.one_of(wire(SONG_FIELDS, status), wire(fields, status))
    return conv.map(lambda c: dumps({"success": True, "conversion": c}))


def non_music_ai(audio_url: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Callbacks other than ``music_ai`` (streams, covers, lyrics, unknown subtypes, the
    older generic payload) whose status word, if any, is unknown."""
    skip = ("subtype", "status", "audio_url")
    fixed = {
        "subtype": st.sampled_from(
            ["audio_streaming", "album_cover_generation", "lyrics_timestamped", "stems"]
        ),
        "status": unknown_words,
        "audio_url": audio_url,
    }
    fields = {k: v for k, v in WEBHOOK_FIELDS.items() if k not in skip}
    return wire(fields, st.fixed_dictionaries({}, optional=fixed))


ANY_NON_MUSIC_AI = non_music_ai(maybe_url)


@st.composite
def unknown_word_polls(
    draw: st.DrawFn,
    by_id: Callable[[Any], st.SearchStrategy[bytes]] = by_id_with,
    hooks: st.SearchStrategy[dict[str, Any]] = ANY_NON_MUSIC_AI,
) -> list[Step]:
    """Polls each carrying an unknown word (or none), mixed with non-music_ai callbacks."""
    seq: list[Step] = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.integers(0, 3)) == 0:
            seq.append(("hook", dumps(draw(hooks))))
        else:
            seq.append(("by_id", draw(by_id(draw(st.none() | unknown_words)))))
    return seq


@CHAINS
@given(start=started, seq=unknown_word_polls())
def test_unknown_status_word_is_logged_and_never_completes_a_polled_job(
    start: Start, seq: list[Step]
) -> None:
    last, fmt = start
    with quiet() as logs:
        seen = run(last, fmt, seq)
    assert all(s.status != "completed" for s in seen), [s.status for s in seen]
    for s in seen:
        assert s.native_status is None or is_unknown(s.native_status)
    noted = {e["raw"] for e in logs if e["event"] == "unknown_native_status"}
    assert {s.native_status for s in seen[1:] if s.native_status} <= noted


def music_ai(cid: str, audio: tuple[str | None, str | None]) -> bytes:
    mp3, wav = audio
    body = {"subtype": "music_ai", "task_id": TASK, "conversion_id": cid, "title": f"T {cid}"}
    body |= {"conversion_path": mp3, "conversion_path_wav": wav}
    return dumps(body)


song_audio = st.one_of(
    st.tuples(urls, st.none() | st.just("")),
    st.tuples(st.none() | st.just(""), urls.map(lambda u: u.replace(".mp3", ".wav"))),
    st.tuples(urls, urls.map(lambda u: u.replace(".mp3", ".wav"))),
)


@CHAINS
@given(
    start=started,
    word=unknown_words,
    before=st.lists(st.just(None) | unknown_words, max_size=2),
    audio=st.tuples(song_audio, song_audio),
    order=st.permutations([C1, C2]),
    repeats=st.lists(st.sampled_from([C1, C2]), max_size=2),
)
def test_music_ai_callbacks_with_audio_for_every_song_complete_despite_unknown_word(
    start: Start,
    word: Any,
    before: list[Any],
    audio: tuple[tuple[str | None, str | None], tuple[str | None, str | None]],
    order: list[str],
    repeats: list[str],
) -> None:
    """Documented rule: callbacks are direct evidence.

    A ``music_ai`` callback is MusicGPT saying "this song's file is ready"; once one has
    arrived with audio for every song of the task, the job is completed even when the
    last byId answer carried a status word outside the table (``render``: ``all_audio
    and (mapped == "completed" or all_done)``). Every output then plays the callback's
    file (the requested format, or the other one when only that exists).
    """
    last, fmt = start
    files = dict(zip((C1, C2), audio, strict=True))
    seq: list[Step] = [("by_id", dumps({"conversion": {"status": w}})) for w in before]
    seq.append(("by_id", dumps({"conversion": {"task_id": TASK, "status": word}})))
    seq += [("hook", music_ai(cid, files[cid])) for cid in [*order, *repeats]]
    with quiet():
        seen = run(last, fmt, seq)
    assert len(seen) == len(seq) + 1  # nothing refused
    done = seen[-1]
    assert done.status == "completed" and done.native_status == mapping.as_str(word)
    for out in done.outputs:
        mp3, wav = files[out.id or ""]
        want, other = (wav, mp3) if fmt == "wav" else (mp3, wav)
        assert out.audio_url == (want or other)
    first_both = len(before) + 3  # the snapshot after the second song's callback
    assert [s.status for s in seen[:first_both]].count("completed") == 0
    assert all(s.status == "completed" for s in seen[first_both:])


#: Older-shape fields present but empty ("" or null is absent, see ``coerce``).
EMPTY_OLDER = {
    k: st.sampled_from(["", " ", None])
    for k in ("conversion_id", "audio_url", "status_msg", "title")
}


def merged_by_id_with(word: Any | None) -> st.SearchStrategy[bytes]:
    """A byId answer in this job's merged shape whose ``status`` is ``word``."""
    base = st.fixed_dictionaries(
        {} if word is None else {"status": st.just(word)}, optional=EMPTY_OLDER
    )
    return wire(SONG_FIELDS, base).map(lambda c: dumps({"success": True, "conversion": c}))


@st.composite
def without_audio_for_every_song(draw: st.DrawFn) -> list[Step]:
    """Unknown-word polls in the job's (merged) shape and callbacks, where some song never
    gets a music_ai file; a generic callback's ``audio_url`` (the older single-output
    API) is left out: it re-shapes the job into one song."""
    missing = draw(st.sampled_from([C1, C2]))
    hooks = non_music_ai(st.sampled_from(["", None]))
    seq = draw(unknown_word_polls(merged_by_id_with, hooks))
    for _ in range(draw(st.integers(0, 4))):
        cid = draw(st.sampled_from([C1, C2]))
        audio = draw(song_audio) if cid != missing else (None, None)
        seq.insert(draw(st.integers(0, len(seq))), ("hook", music_ai(cid, audio)))
    return seq


# Regression: an empty older-shape field ("" is absent) turned the two-song job into one.
@example(
    start=created("mp3"),
    seq=[
        ("hook", music_ai(C1, ("https://cdn.example/1.mp3", None))),
        ("by_id", dumps({"conversion": {"status": "DONE", "status_msg": ""}})),
    ],
)
@CHAINS
@given(start=started, seq=without_audio_for_every_song())
def test_unknown_word_never_completes_without_music_ai_audio_for_every_song(
    start: Start, seq: list[Step]
) -> None:
    """The converse of the rule above: with a song lacking a music_ai file, an unknown
    word (even with every path present in byId answers) never completes the job."""
    last, fmt = start
    with quiet():
        seen = run(last, fmt, seq)
    assert all(s.status != "completed" for s in seen), [s.status for s in seen]


# ------------------------------------------------------- callbacks: any order, dups


@st.composite
def callback_story(draw: st.DrawFn) -> list[bytes]:
    """The callbacks one task may send: per song a music_ai (with its files), a stream and
    timestamped lyrics; a cover; an unknown subtype; or a flagged story. Each artefact
    has one value per task (a retry repeats the same body)."""
    cover = draw(st.none() | urls.map(lambda u: u.replace(".mp3", ".jpg")))
    flagged = draw(st.integers(0, 4)) == 0
    hooks: list[dict[str, Any]] = []
    base = {"task_id": TASK, "success": True}
    for cid in (C1, C2):
        if draw(st.booleans()):
            mp3, wav = (None, None) if flagged else draw(song_audio)
            hooks.append(
                base
                | {
                    "subtype": "music_ai",
                    "conversion_id": cid,
                    "conversion_path": mp3,
                    "conversion_path_wav": wav,
                    "conversion_duration": draw(st.none() | numeric),
                    "title": draw(st.none() | texts),
                    "lyrics": draw(st.none() | texts),
                    "album_cover_path": cover,
                    "is_flagged": False,
                }
            )
        if draw(st.booleans()):
            stream = f"https://cdn.example/{cid}.m3u8"
            hooks.append(
                base | {"subtype": "audio_streaming", "conversion_id": cid, "streaming_url": stream}
            )
        if draw(st.booleans()):
            hooks.append(
                base
                | {
                    "subtype": "lyrics_timestamped",
                    "conversion_id": cid,
                    "lyrics_timestamped": "[]",
                }
            )
    if draw(st.booleans()):
        hooks.append(
            base
            | {
                "subtype": "album_cover_generation",
                "image_path": cover,
                "image_paths": [cover],
                "conversion_id_1": C1,
                "conversion_id_2": C2,
            }
        )
    if draw(st.booleans()):
        hooks.append(base | {"subtype": "stems_separation"})
    if flagged:
        reason = draw(texts)
        hooks.append(
            base
            | {"subtype": "music_ai", "conversion_id": C1, "is_flagged": True, "reason": reason}
        )
    return [dumps(h) for h in hooks]


@st.composite
def story_and_delivery(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    story = draw(callback_story())
    extra = draw(st.lists(st.sampled_from(story), max_size=4)) if story else []
    return story, draw(st.permutations([*story, *extra]))


def view(snap: Snapshot) -> tuple[Any, ...]:
    return (snap.status, snap.progress, snap.error, snap.outputs)


@CHAINS
@given(start=started, pair=story_and_delivery())
def test_callbacks_converge_in_any_order_with_duplicates(
    start: Start, pair: tuple[list[bytes], list[bytes]]
) -> None:
    last, fmt = start
    story, delivery = pair
    with quiet():
        canonical = run(last, fmt, [("hook", raw) for raw in story], tick=0)[-1]
        shuffled = run(last, fmt, [("hook", raw) for raw in delivery], tick=0)[-1]
        again = run(shuffled, fmt, [("hook", raw) for raw in story], tick=0)[-1]
    assert view(shuffled) == view(canonical)
    assert view(again) == view(canonical)  # idempotent: replaying changes nothing
