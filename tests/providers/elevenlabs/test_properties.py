"""Property-based tests (hypothesis) of ElevenLabs' pure parts.

* Any error answer (plausible ``detail`` objects and arrays, any JSON, any bytes; any
  status; the key sprinkled in) becomes one ``ProviderError`` with a short message that
  never holds the key, and a wait for every rate limit.
* Any request the gateway could decode either passes ``check`` or is rejected naming a
  parameter; one that passes is accepted by the simulator's model of the API's
  validation (``sim_validation``), at the length the request asked for.

Every run is derandomized (fixed seed, no example database).
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from providers.base import ProviderError, RequestRejected, SubmitRequest, UpstreamRateLimited
from providers.elevenlabs import mapping, validation
from providers.elevenlabs.catalog import MODELS, ElevenLabsOptions
from providers.elevenlabs.sim_validation import Order, validate
from providers.kit import Answer, Upstream, UpstreamHTTP
from tests.support.wire import dumps, json_values, texts

SECRET = "xi-prop-secret-77aa10"
PROPS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
API = Upstream(
    provider="elevenlabs",
    label="ElevenLabs",
    http=UpstreamHTTP("http://unused"),
    secret=SECRET,
    error_text=mapping.error_message,
    error_class=mapping.error_class,
    rate_limit_retry=5.0,
)

numbers = st.one_of(st.integers(-(10**6), 10**12), st.floats(), st.just(10**400))
values = json_values(numbers)
words = st.one_of(st.sampled_from(sorted(mapping.STATUS_CLASSES)), texts, st.none(), numbers)
say = st.one_of(texts, st.just(SECRET), texts.map(lambda t: f"{t}{SECRET}{t}"), values)
plan_items = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "section_name": say,
            "text": say,
            "song_id": say,
            "duration_ms": numbers,
        },
    ),
    max_size=4,
)
suggested_plan = st.one_of(
    values,
    st.fixed_dictionaries(
        {}, optional={"positive_global_styles": st.lists(say), "sections": plan_items}
    ),
    st.fixed_dictionaries({}, optional={"chunks": plan_items}),
)
business = st.fixed_dictionaries(
    {},
    optional={
        "status": words,
        "code": words,
        "message": say,
        "data": st.one_of(
            values,
            st.fixed_dictionaries({"prompt_suggestion": say}),
            st.fixed_dictionaries({"composition_plan_suggestion": suggested_plan}),
        ),
    },
)
issues = st.lists(
    st.one_of(
        values,
        st.fixed_dictionaries(
            {},
            optional={
                "loc": st.lists(st.one_of(texts, st.integers(), st.booleans(), values)),
                "msg": say,
                "type": say,
            },
        ),
    ),
    max_size=8,
)
bodies = st.one_of(
    st.fixed_dictionaries({"detail": st.one_of(business, issues, say)}).map(dumps),
    st.fixed_dictionaries({}, optional={"message": say, "error": say}).map(dumps),
    values.map(dumps),
    st.binary(max_size=60),
    st.text(max_size=60).map(lambda t: f"{t}{SECRET}".encode()),
)


@PROPS
@given(st.integers(400, 599), bodies, st.one_of(st.none(), st.sampled_from(["3", "x", "-1"])))
def test_any_error_answer_is_one_short_scrubbed_error(
    status: int, raw: bytes, retry: str | None
) -> None:
    headers = CIMultiDictProxy(CIMultiDict({"Retry-After": retry} if retry else {}))
    err = API.status_error("compose", Answer(status, "Reason", headers, raw))
    assert isinstance(err, ProviderError) and err.provider == "elevenlabs"
    assert SECRET not in err.message and len(err.message) <= 560
    assert err.message.startswith(f"ElevenLabs compose answered {status}: ")
    if isinstance(err, UpstreamRateLimited):
        assert err.retry_after is not None and err.retry_after >= 0
    text = mapping.error_message(raw)
    assert text is None or (isinstance(text, str) and 0 < len(text) <= mapping.MESSAGE_MAX)


# ------------------------------------------------------------------------ requests

styles = st.lists(st.sampled_from(["pop", "rock", "pop", "x" * 201]), max_size=2)
ms = st.one_of(st.integers(3000, 60000), st.integers(3000, 60000), st.integers(2000, 130000))
section = st.fixed_dictionaries(
    {
        "section_name": st.sampled_from(["Intro", "Verse"]),
        "positive_local_styles": styles,
        "negative_local_styles": styles,
        "duration_ms": ms,
        "lines": st.lists(st.just("la"), max_size=2),
    }
)
span = st.fixed_dictionaries({"start_ms": st.integers(0, 5000), "end_ms": st.integers(0, 9000)})
generation = st.fixed_dictionaries(
    {"text": st.just("[Verse]\nla"), "duration_ms": ms, "positive_styles": styles},
    optional={
        "negative_styles": styles,
        "context_adherence": st.sampled_from(["low", "high"]),
        "conditioning_ref": st.fixed_dictionaries({"song_id": st.just("s0"), "range": span}),
        "condition_strength": st.sampled_from(["low", "xhigh"]),
    },
)
odd_chunk = st.fixed_dictionaries(
    {}, optional={"text": texts, "duration_ms": ms, "song_id": st.just("s1"), "range": span}
)
chunk = st.one_of(
    generation,
    generation,
    st.fixed_dictionaries({"song_id": st.just("s1"), "range": span}),
    odd_chunk,
)
v1_plans = st.fixed_dictionaries(
    {"sections": st.lists(section, min_size=1, max_size=3)},
    optional={"positive_global_styles": styles, "negative_global_styles": styles},
)
v2_plans = st.fixed_dictionaries({"chunks": st.lists(chunk, min_size=1, max_size=3)})
odd_plans = st.fixed_dictionaries(
    {}, optional={"sections": st.just([]), "chunks": st.just([]), "positive_global_styles": styles}
)
plans = st.one_of(v1_plans, v2_plans, odd_plans)
common: dict[str, st.SearchStrategy[Any]] = {
    "finetune_id": st.just("ft"),
    "finetune_strength": st.floats(0, 2),
    "store_for_inpainting": st.booleans(),
    "sign_with_c2pa": st.booleans(),
    "output_format": st.sampled_from(["mp3_44100_192", "pcm_16000", "pcm_44100"]),
}
prompted = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS),
        "format": st.sampled_from(["mp3", "wav"]),
        "prompt": st.one_of(texts.filter(str.strip), texts.filter(str.strip), st.just("p" * 2001)),
    },
    optional={
        "duration": st.one_of(st.integers(3, 600), st.integers(-5, 700)),
        "instrumental": st.booleans(),
        "options": st.fixed_dictionaries(
            {},
            optional={**common, "seed": st.integers(0, 9), "composition_plan": plans},
        ),
    },
)


@st.composite
def planned(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly a plan of the model's own shape, sometimes anything; rarely with a prompt,
    a duration or instrumental."""
    model = draw(st.sampled_from(MODELS))
    own = v1_plans if model.native_model == "music_v1" else v2_plans
    opts = draw(
        st.fixed_dictionaries(
            {"composition_plan": st.one_of(own, own, own, plans)},
            optional={
                **common,
                "seed": st.integers(0, 9),
                "respect_sections_durations": st.booleans(),
            },
        )
    )
    out = {"model": model, "format": draw(st.sampled_from(["mp3", "wav"])), "options": opts}
    if draw(st.integers(0, 4)) == 0:
        out.update(
            draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "prompt": st.one_of(st.none(), texts),
                        "duration": st.integers(3, 600),
                        "instrumental": st.booleans(),
                    },
                )
            )
        )
    return out


requests = st.one_of(prompted, planned())
PARAMS = ("prompt", "duration", "instrumental", "elevenlabs.")


@PROPS
@given(requests)
def test_what_check_accepts_the_api_accepts(raw: dict[str, Any]) -> None:
    try:
        opts = msgspec.convert(raw.pop("options", {}), ElevenLabsOptions)
    except msgspec.ValidationError:
        assume(False)  # the gateway's strict decoding answers 400 before check
        return
    req = SubmitRequest(options=opts, **raw)
    try:
        validation.check(req)
    except RequestRejected as exc:
        assert exc.param and exc.param.startswith(PARAMS) and exc.message
        event("rejected", exc.param)
        return
    event("accepted", "plan" if opts.composition_plan else "prompt")
    call = mapping.to_native(req)
    order = validate(call.output_format, mapping.encode(call.body))
    assert isinstance(order, Order), order
    plan = opts.composition_plan
    if plan is not None:
        want = mapping.plan_ms(plan)
    else:
        want = req.duration * 1000 if req.duration is not None else None
    assert order.length_ms == want
    assert order.model == req.model.native_model
