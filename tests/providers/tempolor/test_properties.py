"""Property-based tests (hypothesis) of TemPolor's pure mapping: native bytes -> Snapshot.

Entry points, each fed any bytes, any JSON value and, mostly, structurally plausible
payloads (the real wire field names with values of mixed types):

* create answer: ``decode_create`` -> ``from_create``;
* status answer: ``decode_status`` -> ``merge_status`` -> ``to_snapshot``;
* callback body: ``decode_callback`` -> ``merge_status`` -> ``to_snapshot``;
* download answer (or its 404): ``decode_download`` -> ``apply_download`` -> ``to_snapshot``.

Properties: every answer is a valid ``Snapshot`` (see ``assert_valid``) or a documented
exception (a ``ProviderError`` from ``decode_create``/``decode_status``/
``decode_download``, ``ValueError`` from ``decode_callback``); a final native job stays
final and progress never drops; a native job whose status is not in the table (by the
test's own oracle, ``documented_code``) is never completed; callbacks converge in any
order, with duplicates. Every run is derandomized (fixed seed, no example database).

Usage::

    python3 -m uv run --frozen pytest tests/providers/tempolor/test_properties.py -q
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from providers.base import ProviderError, Snapshot
from providers.tempolor import mapping
from providers.tempolor.schemas import DownloadView, NativeJob
from tests.support.wire import NO_BASE, assert_valid, dumps, maybe_url, payloads, quiet, texts, urls
from tests.support.wire import bodies as wire_bodies
from tests.support.wire import json_values as wire_values

NOW = 1_750_000_000.0
IDS = tuple(f"user:1-tempolor:u-job:{c}" for c in "abc")

#: The documented codes and names (seed 002 "Status Values"); the test's own oracle.
DOC_CODES = {0: "in_progress", 10: "failed", 30: "completed"}
DOC_NAMES = {"GENERATING": 0, "FAILED": 10, "COMPLETED": 30}
_DECIMAL = re.compile(r"\s*[+-]?\d+(\.\d*)?([eE][+-]?\d+)?\s*", re.ASCII)

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


def documented_code(body: Any) -> int | str | None:
    """What a status body says, by the docs: a code of the table (a JSON number, or its
    ASCII decimal spelling), ``"unknown"`` for any other value, None when it says nothing.
    ``status_name`` counts only when ``status`` is absent or null."""
    if not isinstance(body, dict):
        return None
    raw = body.get("status")
    if raw is None:
        name = body.get("status_name")
        if not isinstance(name, str) or not name:
            return None
        return DOC_NAMES.get(name, "unknown")
    value: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str) and _DECIMAL.fullmatch(raw):
        value = float(raw)
    if value is not None and math.isfinite(value) and value.is_integer() and value in DOC_CODES:
        return int(value)
    return "unknown"


# -------------------------------------------------------------------- strategies

numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 5e-324, 1e-310, 1e308, -0.0, 100, 600, 10**30, 10**400, -(10**400)]),
)
numeric = st.one_of(
    numbers,
    numbers.map(str),
    st.sampled_from(["", " 60 ", "0.5", "nan", "inf", "-inf", "1_0", "６０", "abc"]),
)
flags = st.sampled_from([True, False, "true", "false", 1, 0, None])
known_status = st.one_of(
    st.sampled_from([0, 10, 30]),
    st.sampled_from([0.0, 30.0, "30", " 10 ", "0", "30.0", "3e1"]),
)
odd_status = st.sampled_from(
    ["３０", "3_0", "1_0", "٣٠", "30.5", "0x1e", "NaN", "Infinity", "COMPLETED", "done", ""]
)
unknown_status = st.one_of(
    odd_status, st.integers(-5, 100), texts, st.floats(), st.booleans(), st.lists(st.none())
).filter(lambda s: documented_code({"status": s}) == "unknown")
statuses = st.one_of(known_status, known_status, unknown_status)
names = st.one_of(
    st.sampled_from(["GENERATING", "FAILED", "COMPLETED", "REVIEWING", "completed", ""]), texts
)
codes = st.one_of(st.sampled_from([200, 402, 404, 429, 500, 1e20, "404", -1]), numeric)
json_values = wire_values(numbers)
#: Any type at all, for a field whose type upstream got wrong (NaN/Infinity included:
#: ``json.dumps`` writes them as tokens the strict decoder must refuse).
mixed = st.one_of(json_values, numeric, flags, statuses, maybe_url)
NOISE = ("bizType", "itemId", "unlimited", "x")


def wire(
    fields: dict[str, st.SearchStrategy[Any]],
    base: st.SearchStrategy[dict[str, Any]] = NO_BASE,
) -> st.SearchStrategy[dict[str, Any]]:
    return payloads(fields, mixed=mixed, noise=NOISE, json_values=json_values, base=base)


def bodies(plausible: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    return wire_bodies(plausible, json_values)


job_ids = st.one_of(st.sampled_from([*IDS, ""]), texts)
CREATE = wire({"jobs": st.lists(job_ids, max_size=4), "error": texts, "code": codes})
MATERIAL = wire({"style": texts, "key": texts, "bpm": numeric, "dur": numeric})
EXTEND = wire({"lyricsPrompt": texts, "prompt": texts, "model": texts, "modelShowName": texts})
STATUS_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "job_id": job_ids,
    "status": statuses,
    "status_name": names,
    "status_final": flags,
    "progress": numeric,
    "titleEn": texts,
    "cover": maybe_url,
    "musicMaterial": MATERIAL,
    "ltmMaterialExtendDto": EXTEND,
    "replyRef": texts,
    "error": st.one_of(texts, json_values),
    "code": codes,
}
STATUS = wire(STATUS_FIELDS)
DOWNLOAD = wire({"url": maybe_url, "remainSeconds": numeric, "error": texts, "code": codes})
formats = st.sampled_from(["mp3", "wav"])


@st.composite
def native_job(draw: st.DrawFn, job_id: str) -> NativeJob:
    """A native job in any state the mapping itself can leave one in."""
    status = draw(st.sampled_from([None, 0, 10, 30, 20, "REVIEWING"]))
    final = status in (10, 30) or (status in (20, "REVIEWING") and draw(st.booleans()))
    job = NativeJob(
        id=job_id,
        status=status,
        final=final,
        progress=0 if status is None else draw(st.integers(0, 100)),
        error="boom" if status == 10 or (final and status not in (10, 30)) else None,
        title=draw(st.none() | texts.filter(str.strip)),
    )
    if status == 30 and draw(st.booleans()):
        view = DownloadView(url=draw(urls), remainSeconds=draw(st.none() | numbers))
        job = mapping.apply_download(job, view, draw(formats), NOW - draw(st.integers(0, 900)))
    return job


jobs_lists = st.integers(1, 3).flatmap(lambda n: st.tuples(*(native_job(i) for i in IDS[:n])))


# ----------------------------------------------------------------------- helpers


def assert_monotonic(old: NativeJob, new: NativeJob) -> None:
    """``merge_status``: "never moves backwards"."""
    assert new.id == old.id and 0 <= new.progress <= 100
    assert new.progress >= old.progress
    if old.final or old.status in (10, 30):
        assert (new.status, new.final) == (old.status, old.final)
    if old.url is not None:
        assert new.url is not None


def snapshot(jobs: list[NativeJob]) -> Snapshot:
    snap = mapping.to_snapshot(jobs)
    assert_valid(snap)
    assert mapping.load_jobs(snap.state, [j.id for j in jobs]) == jobs  # state round-trips
    return snap


# --------------------------------------------------------- any input, no crash


@PROPS
@given(raw=bodies(CREATE))
def test_create_answer_gives_a_valid_submission_or_a_provider_error(raw: bytes) -> None:
    try:
        ids = mapping.decode_create(raw)
    except ProviderError:
        return
    assert ids and all(isinstance(i, str) and i for i in ids)
    sub = mapping.from_create(ids)
    assert_valid(sub.snapshot)
    assert sub.native_ids == ids and sub.native_id == ids[0]
    assert sub.snapshot.status == "queued" and sub.snapshot.progress == 0
    assert [o.index for o in sub.snapshot.outputs] == list(range(len(ids)))


@example(jobs=(NativeJob(id=IDS[0]),), pick=0, raw=dumps({"musicMaterial": {"dur": -1}}))
@example(jobs=(NativeJob(id=IDS[0]),), pick=0, raw=dumps({"status": 0, "progress": 10**400}))
@PROPS
@given(jobs=jobs_lists, pick=st.integers(0, 2), raw=bodies(STATUS))
def test_status_answer_gives_a_valid_snapshot_or_a_provider_error(
    jobs: tuple[NativeJob, ...], pick: int, raw: bytes
) -> None:
    try:
        view = mapping.decode_status(raw)
    except ProviderError:
        return
    merge_into(jobs, pick, view)


@PROPS
@given(jobs=jobs_lists, pick=st.integers(0, 2), raw=bodies(STATUS))
def test_callback_body_gives_a_valid_snapshot_or_a_value_error(
    jobs: tuple[NativeJob, ...], pick: int, raw: bytes
) -> None:
    try:
        view = mapping.decode_callback(raw)
    except ValueError:
        return
    merge_into(jobs, pick, view)


def merge_into(jobs: tuple[NativeJob, ...], pick: int, view: Any) -> None:
    """Merge ``view`` into one of ``jobs``: it never moves backwards, and the whole set
    still gives a valid snapshot."""
    i = pick % len(jobs)
    with quiet():
        merged = mapping.merge_status(jobs[i], view)
    assert_monotonic(jobs[i], merged)
    snapshot([*jobs[:i], merged, *jobs[i + 1 :]])


@example(  # regression: an integer beyond float range
    jobs=(NativeJob(id=IDS[0], status=30, final=True),),
    pick=0,
    raw=dumps({"url": "https://cdn.example/x.mp3", "remainSeconds": 10**400}),
    fmt="mp3",
    ttl=mapping.DEFAULT_URL_TTL,
)
@PROPS
@given(
    jobs=jobs_lists,
    pick=st.integers(0, 2),
    raw=st.none() | bodies(DOWNLOAD),
    fmt=formats,
    ttl=st.sampled_from([mapping.DEFAULT_URL_TTL, 1.0, 1e-300]),
)
def test_download_answer_gives_a_valid_snapshot_or_a_provider_error(
    jobs: tuple[NativeJob, ...], pick: int, raw: bytes | None, fmt: str, ttl: float
) -> None:
    """``raw`` None is the download endpoint's 404 ("not ready yet")."""
    try:
        view = None if raw is None else mapping.decode_download(raw)
    except ProviderError:
        return
    i = pick % len(jobs)
    job = mapping.apply_download(jobs[i], view, fmt, NOW, ttl)
    assert_monotonic(jobs[i], job)
    if view is not None and view.url and view.url.strip():  # a fresh URL and its expiry
        assert (job.url, job.url_format) == (view.url.strip(), fmt)
        assert job.url_expires_at is not None and job.url_refresh_at is not None
        assert NOW <= job.url_refresh_at <= job.url_expires_at
    elif jobs[i].url is not None:  # no new URL: keep the old one, ask again soon
        assert job.url == jobs[i].url
        assert job.url_refresh_at == NOW + mapping.URL_RETRY_SECONDS
    else:
        assert job == jobs[i]
    snapshot([*jobs[:i], job, *jobs[i + 1 :]])


# ------------------------------------------------------------------ sequences

Step = tuple[str, int, Any]  # (kind, native job index, body)
URL = {"url": "https://cdn.example/x.mp3", "remainSeconds": 600}
steps = st.lists(
    st.one_of(
        st.tuples(st.just("status"), st.integers(0, 2), bodies(STATUS)),
        st.tuples(st.just("callback"), st.integers(0, 2), STATUS.map(dumps)),
        st.tuples(st.just("download"), st.integers(0, 2), st.none() | DOWNLOAD.map(dumps)),
    ),
    max_size=8,
)


def apply(job: NativeJob, kind: str, raw: bytes | None, now: float) -> NativeJob | None:
    """One native answer folded into one native job; None when it is refused (as
    documented: ``ProviderError`` for an answer, ``ValueError`` for a callback)."""
    try:
        if kind == "download":
            view = None if raw is None else mapping.decode_download(raw)
            return mapping.apply_download(job, view, "mp3", now)
        assert raw is not None
        if kind == "status":
            return mapping.merge_status(job, mapping.decode_status(raw))
        view = mapping.decode_callback(raw)
    except ProviderError:
        assert kind != "callback"
        return None
    except ValueError:
        assert kind == "callback"
        return None
    return mapping.merge_status(job, view)


def run(n: int, seq: list[Step], tick: float = 5.0) -> tuple[list[Snapshot], list[Step]]:
    """Apply the steps to ``n`` fresh native jobs, checking every snapshot and that a
    final gateway job stays final; returns the snapshots and the steps not refused."""
    jobs = list(mapping.load_jobs(None, list(IDS[:n])))
    seen, taken = [snapshot(jobs)], []
    for t, (kind, pick, raw) in enumerate(seq):
        i = pick % n
        new = apply(jobs[i], kind, raw, NOW + tick * t)
        if new is None:
            continue
        taken.append((kind, pick, raw))
        assert_monotonic(jobs[i], new)
        jobs[i] = new
        seen.append(snapshot(jobs))
        if seen[-2].status in ("completed", "failed"):
            assert seen[-1].status == seen[-2].status
    return seen, taken


@CHAINS
@given(n=st.integers(1, 3), seq=steps)
def test_any_sequence_of_answers_stays_valid_and_final_stays_final(n: int, seq: list[Step]) -> None:
    with quiet():
        run(n, seq)


# --------------------------------------------------------------- unknown status


@st.composite
def unknown_status_steps(draw: st.DrawFn) -> list[Step]:
    """Status answers and callbacks whose status is unknown (or absent), with download
    answers that do hand out URLs."""
    no_status = {k: v for k, v in STATUS_FIELDS.items() if k not in ("status", "status_name")}
    unknown_body = st.one_of(
        st.fixed_dictionaries({"status": unknown_status}, optional={"status_name": names}),
        st.fixed_dictionaries({"status_name": names.filter(lambda s: s not in DOC_NAMES)}),
        st.just({}),
    )
    seq: list[Step] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["status", "callback", "download"]))
        if kind == "download":
            body = {"url": draw(urls), "remainSeconds": draw(numeric)}
        else:
            body = draw(wire(no_status, unknown_body))
            assert documented_code(body) in ("unknown", None)
        seq.append((kind, draw(st.integers(0, 2)), dumps(body)))
    return seq


# Regressions: float() reads non-ASCII digits and underscores, so these were 30.
@example(n=1, seq=[("status", 0, dumps({"status": "３０"})), ("download", 0, dumps(URL))])
@example(n=1, seq=[("callback", 0, dumps({"status": "3_0"})), ("download", 0, dumps(URL))])
@CHAINS
@given(n=st.integers(1, 3), seq=unknown_status_steps())
def test_unknown_status_is_logged_and_never_completed(n: int, seq: list[Step]) -> None:
    with quiet() as logs:
        seen, taken = run(n, seq)
    assert all(s.status != "completed" for s in seen), [s.status for s in seen]
    assert all(o.audio_url is None for s in seen for o in s.outputs)
    said = [documented_code(json.loads(raw)) for kind, _, raw in taken if kind != "download"]
    warned = [e for e in logs if e["event"] == "unknown_native_status"]
    assert len(warned) == said.count("unknown")  # every unknown word read is logged


# ------------------------------------------------------- callbacks: any order, dups


@st.composite
def callback_story(draw: st.DrawFn, job_id: str) -> list[bytes]:
    """One native job's callbacks: progress updates (known or unknown words) and exactly
    one final word, each with the job's one set of metadata (present or not)."""
    meta = {
        "titleEn": draw(st.none() | texts),
        "cover": draw(st.none() | urls),
        "musicMaterial": {"style": draw(st.none() | texts), "dur": draw(st.none() | numeric)},
    }

    def body(fields: dict[str, Any]) -> bytes:
        shown = {k: v for k, v in meta.items() if draw(st.booleans())}
        return dumps({"job_id": job_id, **shown, **fields})

    updates = [
        body({"status": draw(st.sampled_from([0, "0", 20])), "progress": draw(numeric)})
        for _ in range(draw(st.integers(0, 3)))
    ]
    final = draw(
        st.sampled_from(
            [
                {"status": 30, "status_name": "COMPLETED", "status_final": True, "progress": 100},
                {"status_name": "COMPLETED", "status_final": True},
                {"status": "30"},
                {"status": 10, "status_final": True, "error": "Content policy"},
                {"status": 10},
                {"status": "REVIEWING?", "status_final": True},
            ]
        )
    )
    return [*updates, body(final)]


@st.composite
def delivery(draw: st.DrawFn) -> tuple[int, list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    n = draw(st.integers(1, 3))
    story = [(i, raw) for i in range(n) for raw in draw(callback_story(IDS[i]))]
    extra = draw(st.lists(st.sampled_from(story), max_size=4))
    return n, story, draw(st.permutations([*story, *extra]))


def deliver(n: int, callbacks: list[tuple[int, bytes]]) -> Snapshot:
    """Each callback folded into its native job, then the download a completed native job
    triggers (as ``Provider.callback`` does), all at one moment."""
    jobs = mapping.load_jobs(None, list(IDS[:n]))
    for i, raw in callbacks:
        jobs[i] = mapping.merge_status(jobs[i], mapping.decode_callback(raw))
        if mapping.needs_download(jobs[i], NOW):
            view = DownloadView(url=f"https://cdn.example/{i}.mp3", remainSeconds=600)
            jobs[i] = mapping.apply_download(jobs[i], view, "mp3", NOW)
    return snapshot(jobs)


def view(snap: Snapshot) -> tuple[Any, ...]:
    return (snap.status, snap.native_status, snap.progress, snap.error, snap.outputs)


@CHAINS
@given(story=delivery())
def test_callbacks_converge_in_any_order_with_duplicates(
    story: tuple[int, list[tuple[int, bytes]], list[tuple[int, bytes]]],
) -> None:
    n, in_order, shuffled = story
    with quiet():
        expected = deliver(n, in_order)
        got = deliver(n, shuffled)
        replayed = deliver(n, [*shuffled, *in_order])
    assert expected.status in ("completed", "failed")  # every native job got its final word
    assert view(got) == view(expected)
    assert view(replayed) == view(expected)
