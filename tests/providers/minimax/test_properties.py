"""Property-based tests (hypothesis) of MiniMax's pure parts, and of jobs end to end.

* Any answer (plausible ``base_resp``/``data``/``extra_info`` objects, any JSON, any
  bytes; the key sprinkled in), in any chunking, read by ``streams.finish``: a
  ``Finished`` with audio, or one ``ProviderError`` with a short message that never holds
  the key, a wait for every rate limit; the spool file closed either way.
* ``Splitter``: any JSON document in any chunking splits into the document itself (with
  a hex ``data.audio`` emptied) and that hex, decoded.
* Any request the gateway could decode either passes ``check`` or is rejected naming a
  parameter; one that passes is accepted by the simulator's model of the API.
* Jobs through the gateway under any sequence of simulator faults: status only moves
  forward (queued → in_progress → completed | failed; a job put back in the queue after
  a rate or plan limit stays ``in_progress``), a final status never changes,
  ``completed`` has playable audio, and no answer or log line holds the key.

Every run is derandomized (fixed seed, no example database).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from providers.base import (
    STATUS_RANK,
    ProviderError,
    RequestRejected,
    SubmitRequest,
    UpstreamRateLimited,
)
from providers.kit import scrub_bytes
from providers.minimax import mapping, streams, validation
from providers.minimax.answer import MalformedAnswer, Splitter
from providers.minimax.catalog import MODELS, MiniMaxOptions
from providers.minimax.sim_config import Fault
from providers.minimax.sim_validation import Order, validate
from providers.minimax.simulator import SimulatorConfig, create_simulator
from tests.support.servers import free_port, serve
from tests.support.waiting import wait_until
from tests.support.wire import json_values, texts

from .e2e import AUTH, GW_KEY, URL

SECRET = "mm-prop-secret-41d2c7"
PROPS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

numbers = st.one_of(st.integers(-(10**6), 10**12), st.floats(), st.just(10**400))
values = json_values(numbers)
say = st.one_of(texts, st.just(SECRET), texts.map(lambda t: f"{t}{SECRET}{t}"), values)
codes = st.one_of(st.sampled_from([0, 0, 0, *mapping.CODES, 1000, 1024]), numbers, texts)
audio = st.binary(min_size=0, max_size=300)
answers = st.fixed_dictionaries(
    {},
    optional={
        "base_resp": st.one_of(
            values, st.fixed_dictionaries({"status_code": codes}, optional={"status_msg": say})
        ),
        "data": st.one_of(
            values,
            st.fixed_dictionaries(
                {},
                optional={
                    "audio": st.one_of(
                        audio.map(bytes.hex),
                        st.sampled_from(["https://cdn.example/a.mp3", f"https://x/{SECRET}"]),
                        say,
                    ),
                    "audio_url": say,
                    "status": st.one_of(st.sampled_from([1, 2, 2, 2]), values),
                },
            ),
        ),
        "trace_id": say,
        "extra_info": st.one_of(
            values, st.fixed_dictionaries({}, optional={"music_duration": numbers})
        ),
    },
)
successes = st.fixed_dictionaries(
    {
        "data": st.fixed_dictionaries(
            {"audio": st.one_of(audio.map(bytes.hex), st.just("https://cdn.example/a.mp3"))},
            optional={"status": st.just(2)},
        ),
        "base_resp": st.fixed_dictionaries(
            {"status_code": st.just(0)}, optional={"status_msg": say}
        ),
    },
    optional={
        "trace_id": say,
        "extra_info": st.fixed_dictionaries({}, optional={"music_duration": numbers}),
    },
)
raw_answers = st.one_of(
    successes.map(lambda a: json.dumps(a).encode()),
    answers.map(lambda a: json.dumps(a).encode()),
    answers.map(lambda a: json.dumps(a).encode()),
    values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=60),
)


class Body:
    """An answer stream standing in for ``UpstreamStream``."""

    def __init__(self, raw: bytes, size: int, headers: dict[str, str]) -> None:
        self.headers = headers
        self.closed = False
        self._parts = [raw[i : i + size] for i in range(0, len(raw), size)]

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[bytes]:
        for part in self._parts:
            yield part

    async def aclose(self) -> None:
        self.closed = True


@PROPS
@given(raw_answers, st.integers(1, 50), st.sampled_from([{}, {"Retry-After": "2"}]))
def test_any_answer_is_a_song_or_one_short_scrubbed_error(
    raw: bytes, size: int, headers: dict[str, str]
) -> None:
    files: list[Any] = []
    real = tempfile.TemporaryFile

    def record(*args: Any, **kw: Any) -> Any:
        files.append(real(*args, **kw))
        return files[-1]

    body = Body(raw, size, headers)
    req = SubmitRequest(model=MODELS[0], prompt="p", instrumental=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(streams.tempfile, "TemporaryFile", record)
        try:
            result = asyncio.run(streams.finish(req, body, lambda b: scrub_bytes(b, SECRET)))
        except ProviderError as exc:
            assert exc.provider == "minimax" and SECRET not in exc.message
            assert len(exc.message) <= 600
            if isinstance(exc, UpstreamRateLimited):
                assert exc.retry_after is not None and exc.retry_after >= 0
            assert all(f.closed for f in files)
            event("error", type(exc).__name__)
        else:
            [art] = result.artefacts
            assert (art.audio_url is not None) != bool(result.streams)
            assert art.audio_url is None or SECRET not in art.audio_url
            assert art.duration is None or 0 < art.duration < 10**6
            if result.streams:
                data = asyncio.run(_read(result.streams[0]))
                assert len(data) == result.streams[0].length and data
            assert all(f.closed for f in files)
            event("finished", "hex" if result.streams else "url")
    assert body.closed


async def _read(stream: Any) -> bytes:
    return b"".join([c async for c in stream.chunks])


small = json_values(st.integers(-(10**6), 10**6)).filter(
    lambda v: "NaN" not in json.dumps(v) and "Infinity" not in json.dumps(v)
)
hexes = st.binary(min_size=1, max_size=300).map(bytes.hex)
not_hex = st.one_of(hexes.map(lambda h: h + "zz"), hexes.map(lambda h: h[:-1]))
datas = st.fixed_dictionaries(
    {}, optional={"audio": st.one_of(hexes, hexes, texts, not_hex), "status": small}
)
documents = st.one_of(
    st.dictionaries(
        st.sampled_from(["data", "base_resp", "trace_id", "x", "audio"]),
        st.one_of(small, datas),
        max_size=4,
    ),
    st.fixed_dictionaries({"data": datas}, optional={"base_resp": small, "audio": small}),
)
HEX_DIGITS = set("0123456789abcdefABCDEF")


@PROPS
@given(documents, st.integers(1, 40))
def test_any_document_splits_into_itself_and_its_hex(doc: dict[str, Any], size: int) -> None:
    raw = json.dumps(doc, ensure_ascii=bool(size % 2)).encode()
    value = doc["data"].get("audio") if isinstance(doc.get("data"), dict) else None
    starts_hex = isinstance(value, str) and value[:1] != "" and value[0] in HEX_DIGITS
    hexed = starts_hex and set(value) <= HEX_DIGITS and len(value) % 2 == 0
    if starts_hex and not hexed:  # neither a URL nor hex: the answer is unreadable
        with pytest.raises(MalformedAnswer):
            splitter = Splitter()
            for i in range(0, len(raw), size):
                splitter.feed(raw[i : i + size])
            splitter.close()
        event("malformed")
        return
    splitter = Splitter()
    got = b"".join(splitter.feed(raw[i : i + size]) for i in range(0, len(raw), size))
    skeleton = msgspec.json.decode(splitter.close())
    if hexed:
        assert got == bytes.fromhex(value) and splitter.hex
        assert skeleton == {**doc, "data": {**doc["data"], "audio": ""}}
        event("hex")
    else:
        assert got == b"" and skeleton == doc and not splitter.hex


# ------------------------------------------------------------------------ requests

short = st.one_of(st.none(), texts, st.just(""), st.just("p" * 2001), st.just("  "))
lyric = st.one_of(st.none(), texts, st.just("[Verse]\nla"), st.just("l" * 3501))
requests = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS),
        "format": st.sampled_from(["mp3", "wav"]),
        "prompt": short,
        "lyrics": lyric,
        "instrumental": st.one_of(st.none(), st.booleans()),
    },
    optional={
        "options": st.fixed_dictionaries(
            {},
            optional={
                "prompt": short,
                "lyrics": lyric,
                "is_instrumental": st.booleans(),
                "lyrics_optimizer": st.booleans(),
                "stream": st.sampled_from([False, False, False, True]),
                "output_format": st.sampled_from(["url", "hex"]),
                "aigc_watermark": st.booleans(),
                "audio_setting": st.fixed_dictionaries(
                    {},
                    optional={
                        "sample_rate": st.sampled_from([16000, 24000, 32000, 44100]),
                        "bitrate": st.sampled_from([32000, 64000, 128000, 256000]),
                        "format": st.sampled_from(["mp3", "wav", "pcm"]),
                    },
                ),
                "cover_feature_id": st.sampled_from([None, None, None, "c1"]),
            },
        )
    },
)
PARAMS = ("prompt", "lyrics", "instrumental", "minimax.")


@PROPS
@given(requests)
def test_what_check_accepts_the_api_accepts(raw: dict[str, Any]) -> None:
    opts = msgspec.convert(raw.pop("options", {}), MiniMaxOptions)
    req = SubmitRequest(options=opts, **raw)
    try:
        validation.check(req)
    except RequestRejected as exc:
        assert exc.param and exc.param.startswith(PARAMS) and exc.message
        event("rejected", exc.param)
        return
    event("accepted", "instrumental" if mapping.fields(req).instrumental else "song")
    body = mapping.to_native(req)
    order = validate(mapping.encode(body))
    assert isinstance(order, Order), order
    assert order.model == req.model.native_model and order.format == req.format
    assert order.output_format == (opts.output_format or "url")


# ------------------------------------------------------------------ through the gateway

KEY = "mm-gw-prop-key-9a0e55d1"
KINDS = [
    "rate_limited",
    "plan_limit",
    "auth_failed",
    "invalid_api_key",
    "insufficient_balance",
    "input_sensitive",
    "output_sensitive",
    "invalid_params",
    "unknown_error",
    "http_error",
    "unfinished",
    "malformed",
]
LIMITS = {"rate_limited", "plan_limit"}


@pytest.fixture(scope="module")
def served_sim() -> Iterator[tuple[str, SimulatorConfig]]:
    config = SimulatorConfig(api_key=KEY, length_ms=2000, echo_key_in_errors=True)
    with serve(create_simulator(config)) as url:
        yield url, config


@contextlib.contextmanager
def served_gateway(make_settings: Callable[..., Settings], sim_url: str) -> Iterator[httpx.Client]:
    settings = make_settings(
        GATEWAY_API_KEYS=GW_KEY,
        MINIMAX_API_KEY=KEY,
        MINIMAX_BASE_URL=sim_url,
        MINIMAX_READ_TIMEOUT="10",
        GATEWAY_REFRESH_INTERVAL="0",
        GATEWAY_RATE_LIMIT_RPM="0",
    )
    with serve(create_app(settings), port=free_port()) as base:
        with httpx.Client(base_url=base, headers=AUTH, timeout=30) as client:
            yield client


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    faults=st.one_of(
        st.lists(st.sampled_from(sorted(LIMITS)), max_size=2),
        st.lists(st.sampled_from(KINDS), max_size=3),
    ),
    output_format=st.sampled_from(["url", "hex"]),
)
def test_status_only_moves_forward_and_no_answer_or_log_holds_the_key(
    make_settings: Callable[..., Settings],
    served_sim: tuple[str, SimulatorConfig],
    capfd: pytest.CaptureFixture[str],
    faults: list[str],
    output_format: str,
) -> None:
    sim_url, config = served_sim
    config.faults = [Fault(kind=k, retry_after=0.1) for k in faults]  # type: ignore[arg-type]
    texts_seen: list[str] = []
    with served_gateway(make_settings, sim_url) as client:
        r = client.post(
            URL,
            json={
                "model": "minimax/music-3.0",
                "prompt": "x",
                "minimax": {"output_format": output_format},
            },
            headers={"Prefer": "respond-async"},
        )
        assert r.status_code == 200, r.text
        texts_seen.append(r.text)
        job_id = r.json()["id"]
        statuses = [r.json()["status"]]

        def polled() -> dict[str, Any] | None:
            got = client.get(f"{URL}/{job_id}")
            texts_seen.append(got.text)
            statuses.append(got.json()["status"])
            return got.json() if statuses[-1] in ("completed", "failed") else None

        done = wait_until(polled, timeout=30, interval=0.02, what=f"{job_id} final")
        for _ in range(2):  # final: it never changes
            again = client.get(f"{URL}/{job_id}")
            texts_seen.append(again.text)
            assert again.json()["status"] == statuses[-1]
        if done["status"] == "completed":
            audio = httpx.get(done["output"][0]["audio_url"])
            assert audio.status_code == 200 and audio.content
    for old, new in itertools.pairwise(statuses):
        back = STATUS_RANK[new] < STATUS_RANK[old]
        assert not back, statuses
    first = next((k for k in faults if k not in LIMITS), None)
    assert (done["status"] == "completed") == (first is None), (faults, done)
    logs = capfd.readouterr()
    assert all(KEY not in t for t in texts_seen)
    assert KEY not in logs.err and KEY not in logs.out
    event("outcome", done["status"])
    if LIMITS & set(faults):
        event("requeued after a rate or plan limit")
