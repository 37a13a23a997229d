"""Hostile input against a real app whose providers point at both simulators.

Every bounded string (found by walking the app's own request type, so a new field is
covered without editing this file) answers 400 one character past its limit, naming the
field; malformed JSON and wrong types answer 400; a body over GATEWAY_MAX_BODY_BYTES
answers 413; all in the error envelope, and nothing ever reaches an upstream.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest

from gateway.api.app import create_app
from gateway.api.schemas import build_request_type
from gateway.infra.settings import Settings
from providers.musicgpt import MusicGPTProvider
from providers.musicgpt.simulator import SimulatorConfig as MusicGPTSimConfig
from providers.musicgpt.simulator import create_simulator as musicgpt_simulator
from providers.tempolor import TemPolorProvider
from providers.tempolor.simulator import SimulatorConfig as TemPolorSimConfig
from providers.tempolor.simulator import create_simulator as tempolor_simulator
from tests.conftest import TEST_KEY, app_client
from tests.support.servers import serve

URL = "/v1/music/generate"
MAX_BODY = 32 * 1024
MG_KEY = "mg-hostile-key-0001"
UA_TOKEN = "user:1-hostile-token-0001"
MODEL = "musicgpt/v7"
Inspect = msgspec.inspect


class Upstreams:
    """Both simulators over real HTTP on loopback, and their create counters."""

    def __init__(self, urls: dict[str, str], http: httpx.Client) -> None:
        self.urls, self.http = urls, http

    def creates(self) -> dict[str, int]:
        mg = self.http.get(self.urls["musicgpt"] + "/__sim__/stats").json()
        ua = self.http.get(self.urls["tempolor"] + "/__sim__/stats").json()
        mg_outcomes = mg["creates_accepted"] + mg["creates_rejected"] + mg["creates_flagged"]
        ua_outcomes = ua["creates_accepted"] + ua["creates_rejected"]
        return {
            "musicgpt": max(mg.get("create_calls", 0), mg_outcomes),
            "tempolor": max(ua.get("create_calls", 0), ua_outcomes),
        }


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    mg = musicgpt_simulator(MusicGPTSimConfig(api_key=MG_KEY))
    ua = tempolor_simulator(TemPolorSimConfig(api_token=UA_TOKEN))
    with serve(mg) as mg_url, serve(ua) as ua_url, httpx.Client(timeout=10) as http:
        yield Upstreams({"musicgpt": mg_url, "tempolor": ua_url}, http)


@pytest.fixture(scope="module")
async def gateway(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams
) -> AsyncIterator[httpx.AsyncClient]:
    """One gateway for the module (no test here may change its state): both real
    providers, pointed at the simulators, on the session Redis under its own prefix."""
    settings = Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "GATEWAY_REDIS_PREFIX": f"t{secrets.token_hex(4)}:",
            "GATEWAY_API_KEYS": TEST_KEY,
            "GATEWAY_DATA_DIR": str(tmp_path_factory.mktemp("data")),
            "GATEWAY_LOG_FORMAT": "json",
            "GATEWAY_MAX_BODY_BYTES": str(MAX_BODY),
            "MUSICGPT_API_KEY": MG_KEY,
            "MUSICGPT_BASE_URL": upstreams.urls["musicgpt"],
            "USEAPI_TOKEN": UA_TOKEN,
            "USEAPI_BASE_URL": upstreams.urls["tempolor"] + "/v1",
        }
    )
    async with app_client(create_app(settings)) as c:
        yield c


@pytest.fixture
def client(gateway: httpx.AsyncClient, upstreams: Upstreams) -> Iterator[httpx.AsyncClient]:
    """The module's gateway; after each test, no upstream has seen a create."""
    yield gateway
    assert upstreams.creates() == {"musicgpt": 0, "tempolor": 0}


def request_type() -> Any:
    """The create request type, built as the app builds it (it reads only each provider's
    class attributes ``name`` and ``options_type``)."""
    return build_request_type([MusicGPTProvider, TemPolorProvider])  # type: ignore[list-item]


async def post(client: httpx.AsyncClient, body: Any = None, **kw: Any) -> httpx.Response:
    if body is not None:
        kw["content"] = msgspec.json.encode(body)
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    return await client.post(URL, headers=headers, **kw)


def envelope(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    data = r.json()
    assert data["status_code"] == status and data["error"] and data["description"]
    assert data["request_id"] == r.headers["x-request-id"]
    return data


# ------------------------------------------------------------- the bounded strings


def _unwrap(t: Any) -> Any:
    """The type itself: without ``Annotated`` metadata, the non-None member of an option."""
    while isinstance(t, Inspect.Metadata | Inspect.UnionType):
        if isinstance(t, Inspect.Metadata):
            t = t.type
        else:
            (t,) = [m for m in t.types if not isinstance(m, Inspect.NoneType)]
    return t


def bounded_fields() -> list[Any]:
    """(path, over-long value, param) for every bounded string, dict and list of the
    request."""
    cases: list[Any] = []

    def walk(t: Any, path: tuple[str, ...]) -> None:
        t = _unwrap(t)
        name = ".".join(path)
        if isinstance(t, Inspect.StructType):
            for f in t.fields:
                walk(f.type, (*path, f.encode_name))
        elif isinstance(t, Inspect.StrType):
            cases.append(pytest.param(path, "x" * (t.max_length + 1), name, id=name))
        elif isinstance(t, Inspect.DictType):
            n, k, v = t.max_length, _unwrap(t.key_type), _unwrap(t.value_type)
            many = {f"k{i}": "v" for i in range(n + 1)}
            cases.append(pytest.param(path, many, name, id=f"{name}-items"))
            if isinstance(v, Inspect.StrType):  # (``beta``'s values are any JSON)
                long_value = {"k": "v" * (v.max_length + 1)}
                cases.append(pytest.param(path, long_value, name, id=f"{name}-value"))
            long_key = {"k" * (k.max_length + 1): "v"}
            cases.append(pytest.param(path, long_key, name, id=f"{name}-key"))
        elif isinstance(t, Inspect.ListType):
            cases.append(pytest.param(path, [""] * (t.max_length + 1), name, id=f"{name}-items"))

    walk(Inspect.type_info(request_type()), ())
    return cases


def test_every_inbound_string_and_collection_is_bounded() -> None:
    unbounded: list[str] = []

    def walk(t: Any, path: str) -> None:
        t = _unwrap(t)
        if isinstance(t, Inspect.StructType):
            for f in t.fields:
                walk(f.type, f"{path}.{f.encode_name}".lstrip("."))
        elif isinstance(t, Inspect.StrType | Inspect.DictType | Inspect.ListType):
            if t.max_length is None:
                unbounded.append(path)
            if isinstance(t, Inspect.DictType):
                walk(t.key_type, f"{path}<key>")
                walk(t.value_type, f"{path}<value>")
            if isinstance(t, Inspect.ListType):
                walk(t.item_type, f"{path}[]")

    walk(Inspect.type_info(request_type()), "")
    assert unbounded == []
    names = {p.id for p in bounded_fields()}
    for field in ("model", "prompt", "lyrics", "title", "style", "webhook_url"):
        assert field in names
    for field in ("musicgpt.voice_id", "musicgpt.negative_tags", "tempolor.chords"):
        assert field in names
    assert {"metadata-items", "metadata-key", "metadata-value"} <= names


def _body(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "prompt": "a calm piano piece"}
    node = body
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return body


@pytest.mark.parametrize(("path", "value", "param"), bounded_fields())
async def test_over_long_field_is_a_400_naming_it(
    client: httpx.AsyncClient, path: tuple[str, ...], value: Any, param: str
) -> None:
    e = envelope(await post(client, _body(path, value)), 400)
    assert e["error"] == "validation_error"
    assert e["param"] == param
    assert "length" in e["description"]


@pytest.mark.parametrize(("path", "value", "param"), bounded_fields())
async def test_a_field_at_its_limit_passes_decoding(
    client: httpx.AsyncClient, path: tuple[str, ...], value: Any, param: str
) -> None:
    """One below the over-long value decodes; whatever is said next is not about length.

    (An unknown model stops the request after decoding, before any upstream.)"""
    at_limit: Any = value[:-1] if isinstance(value, str | list) else dict(list(value.items())[:-1])
    if isinstance(value, dict) and len(value) == 1:
        ((k, v),) = value.items()
        at_limit = {k[:-1]: v} if len(k) > len(v) else {k: v[:-1]}
    body = _body(path, at_limit)
    if path != ("model",):
        body["model"] = "nosuch/model"
    e = envelope(await post(client, body), 400)
    assert e["error"] == "unknown_model", e


async def test_characters_are_counted_not_bytes(client: httpx.AsyncClient) -> None:
    e = envelope(await post(client, {"model": MODEL, "prompt": "\U0001f3b5" * 4001}), 400)
    assert e["param"] == "prompt"
    e = envelope(await post(client, {"model": "nosuch/m", "prompt": "\U0001f3b5" * 4000}), 400)
    assert e["error"] == "unknown_model"


# ------------------------------------------------------------ malformed and mistyped


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"model": "musicgpt/v7", "prompt": "x"', id="truncated"),
        pytest.param(b'{"model": "musicgpt/v7", "prompt": "x",}', id="trailing-comma"),
        pytest.param(b'{"model": "musicgpt/v7"} {"x": 1}', id="trailing-garbage"),
        pytest.param(b"{'model': 'musicgpt/v7'}", id="single-quotes"),
        pytest.param(
            b'{"model": "musicgpt/v7", "prompt": "\xff\xfe"}',
            id="invalid-utf8",
        ),
        pytest.param(b'{"model": "musicgpt/v7", "prompt": NaN}', id="nan"),
        pytest.param(b"", id="empty"),
        pytest.param(b"null", id="null"),
        pytest.param(b'"musicgpt/v7"', id="string"),
        pytest.param(b'[{"model": "musicgpt/v7"}]', id="array"),
        pytest.param(b"[" * 15_000 + b"]" * 15_000, id="deeply-nested"),
        pytest.param(
            b'{"metadata": ' + b'{"a": ' * 4000 + b"1" + b"}" * 4001,
            id="nested-dict",
        ),
    ],
)
async def test_malformed_json_is_a_400(client: httpx.AsyncClient, content: bytes) -> None:
    assert len(content) <= MAX_BODY
    e = envelope(await post(client, content=content), 400)
    assert e["error"] in {"invalid_json", "validation_error"}


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"model": 7}, "model"),
        ({"model": None}, "model"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": {"text": "x"}}, "prompt"),
        ({"lyrics": ["la", "la"]}, "lyrics"),
        ({"instrumental": "yes"}, "instrumental"),
        ({"duration": "ten"}, "duration"),
        ({"duration": 10**30}, "duration"),
        ({"format": 3}, "format"),
        ({"webhook_url": {"url": "https://x"}}, "webhook_url"),
        ({"metadata": ["a"]}, "metadata"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"metadata": {"k": None}}, "metadata"),
        ({"musicgpt": "v7"}, "musicgpt"),
        ({"musicgpt": {"voice_id": 12}}, "musicgpt.voice_id"),
        ({"musicgpt": {"gender": "robot"}}, "musicgpt.gender"),
        ({"musicgpt": {"vocal_only": "maybe"}}, "musicgpt.vocal_only"),
        ({"tempolor": {"bpm": "fast"}}, "tempolor.bpm"),
        ({"tempolor": {"bpm": 80.5}}, "tempolor.bpm"),
        ({"tempolor": {"chords": ["Am", "F"]}}, "tempolor.chords"),
        ({"tempolor": {"maxJobs": True}}, "tempolor.maxJobs"),
        # Strings are never converted into numbers or booleans.
        ({"duration": "10"}, "duration"),
        ({"instrumental": "true"}, "instrumental"),
        ({"musicgpt": {"vocal_only": "true"}}, "musicgpt.vocal_only"),
        ({"tempolor": {"bpm": "96"}}, "tempolor.bpm"),
    ],
)
async def test_wrong_types_are_a_400_naming_the_param(
    client: httpx.AsyncClient, patch: dict[str, Any], param: str
) -> None:
    body = {"model": MODEL, "prompt": "a calm piano piece", **patch}
    e = envelope(await post(client, body), 400)
    assert e["error"] == "validation_error"
    assert e["param"] == param


# -------------------------------------------------------------------- body size


def _sized(total: int) -> bytes:
    """A JSON create body of exactly ``total`` bytes (its prompt is over-long)."""
    head, tail = b'{"model":"musicgpt/v7","prompt":"', b'"}'
    return head + b"x" * (total - len(head) - len(tail)) + tail


async def test_body_at_the_limit_is_read_and_one_byte_more_is_a_413(
    client: httpx.AsyncClient,
) -> None:
    e = envelope(await post(client, content=_sized(MAX_BODY)), 400)
    assert e["param"] == "prompt"  # read and decoded: the prompt is too long
    e = envelope(await post(client, content=_sized(MAX_BODY + 1)), 413)
    assert e["error"] == "payload_too_large"


async def test_chunked_body_without_length_is_cut_off_with_a_413(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        data = _sized(4 * MAX_BODY)
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    r = await post(client, content=chunks())
    assert "content-length" not in r.request.headers
    assert envelope(r, 413)["error"] == "payload_too_large"


async def test_lying_content_length_is_not_trusted(client: httpx.AsyncClient) -> None:
    """A small declared length over a big body: the bytes read decide, not the header."""

    async def chunks() -> AsyncIterator[bytes]:
        yield _sized(2 * MAX_BODY)

    r = await post(client, content=chunks(), headers={"Content-Length": "100"})
    assert r.request.headers["content-length"] == "100"
    assert envelope(r, 413)["error"] == "payload_too_large"
