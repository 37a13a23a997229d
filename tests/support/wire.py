"""Hypothesis strategies for native payloads, and the snapshot contract, shared by the
providers' property tests.

Usage::

    values = json_values(numbers)
    CREATE = payloads({"task_id": ids, "eta": numeric}, mixed=mixed, noise=("x",),
                      json_values=values)
    @given(bodies(CREATE, values))
    def test_...(raw: bytes) -> None: ...
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from hypothesis import strategies as st
from structlog.testing import capture_logs

from providers.base import Snapshot

texts = st.text(max_size=10)
urls = st.text("abc12", min_size=1, max_size=4).map(lambda s: f"https://cdn.example/{s}.mp3")
maybe_url = st.one_of(urls, st.sampled_from(["", " "]))
NO_BASE: st.SearchStrategy[dict[str, Any]] = st.just({})


def json_values(numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Any JSON value (small), NaN and infinities included."""
    scalars = st.one_of(st.none(), st.booleans(), numbers, st.floats(), texts)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
        max_leaves=4,
    )


@st.composite
def payloads(
    draw: st.DrawFn,
    fields: dict[str, st.SearchStrategy[Any]],
    *,
    mixed: st.SearchStrategy[Any],
    noise: tuple[str, ...],
    json_values: st.SearchStrategy[Any],
    base: st.SearchStrategy[dict[str, Any]] = NO_BASE,
) -> dict[str, Any]:
    """A payload: any subset of the real field names with plausible values, sometimes a
    field of the wrong type (``mixed``) and fields we do not read (``noise``); ``base``
    fields come first."""
    keys = sorted(fields)
    out = dict(draw(base))
    for name in draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys))):
        out[name] = draw(fields[name])
    if draw(st.integers(0, 5)) == 0:
        out[draw(st.sampled_from(keys))] = draw(mixed)
    if draw(st.integers(0, 5)) == 0:
        out[draw(st.sampled_from(noise))] = draw(json_values)
    return out


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def bodies(
    plausible: st.SearchStrategy[dict[str, Any]], json_values: st.SearchStrategy[Any]
) -> st.SearchStrategy[bytes]:
    """Raw bodies: plausible payloads (most), any JSON value, or any bytes."""
    return st.one_of(
        plausible.map(dumps), plausible.map(dumps), json_values.map(dumps), st.binary(max_size=40)
    )


@contextmanager
def quiet() -> Iterator[list[dict[str, Any]]]:
    """Capture structlog events instead of printing them (and let tests read them)."""
    with capture_logs() as logs:
        yield logs


def assert_valid(snap: Snapshot) -> None:
    """The normalized contract every snapshot must satisfy."""
    assert snap.status in ("queued", "in_progress", "completed", "failed")
    assert snap.progress is None or 0 <= snap.progress <= 100
    indexes = [o.index for o in snap.outputs]
    assert len(indexes) == len(set(indexes)), indexes
    if snap.status == "completed":
        assert snap.outputs, "completed without outputs"
        assert all(o.audio_url and o.audio_url.strip() for o in snap.outputs), snap.outputs
    if snap.status == "failed":
        assert snap.error is not None and snap.error.code and snap.error.message
    for out in snap.outputs:  # durations feed usage.output_audio_seconds
        assert out.duration is None or (math.isfinite(out.duration) and out.duration >= 0)
    assert snap.refresh_after is None or math.isfinite(snap.refresh_after)
    # The gateway stores it (its state as the provider's state type) and hands it back.
    kind = Snapshot[type(snap.state)] if snap.state is not None else Snapshot  # type: ignore[misc]
    stored = msgspec.msgpack.decode(msgspec.msgpack.encode(snap), type=kind)
    assert stored == snap
