"""Hypothesis strategies for native payloads, shared by the providers' property tests.

Usage::

    values = json_values(numbers)
    CREATE = payloads({"task_id": ids, "eta": numeric}, mixed=mixed, noise=("x",),
                      json_values=values)
    @given(bodies(CREATE, values))
    def test_...(raw: bytes) -> None: ...
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

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
