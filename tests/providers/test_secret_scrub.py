"""Provider credentials never come back through upstream error text.

Both simulators run with ``echo_auth_in_errors``: every native error body quotes the
``Authorization`` value received, as some real APIs do. Each provider client must scrub
its own credential before the text goes into a ``ProviderError``, so neither the error a
client receives (first answer or idempotent replay), nor the job store, nor the log ever
holds the provider key or the client's bearer key. The provider-level tests need no
gateway at all, so they hold whatever the gateway adds as defence in depth.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

import providers.musicgpt as musicgpt
import providers.tempolor as tempolor
from gateway.api.app import create_app
from gateway.infra.settings import Settings
from providers.base import ModelSpec, ProviderError, SubmitRequest
from providers.musicgpt.simulator import SimulatorConfig as MusicGPTSimConfig
from providers.musicgpt.simulator import create_simulator as musicgpt_simulator
from providers.tempolor.simulator import SimulatorConfig as TemPolorSimConfig
from providers.tempolor.simulator import create_simulator as tempolor_simulator
from tests.conftest import app_client
from tests.support.servers import serve

MG_KEY = "mgk-live-3b8e61f0d27c4a95"
UA_TOKEN = "user:777-ua-tok/a1b2c3d4e5f60789"
CLIENT_KEY = "sk-scrub-client-9c41d7e0b2"
SECRETS = (MG_KEY, UA_TOKEN, CLIENT_KEY)
URL = "/v1/music/generate"
ECHO = "received Authorization"  # what the simulators add to an error body


def leaks(text: str) -> list[str]:
    """Every 8-character piece of a secret found in ``text`` (a cut key leaks too)."""
    return sorted(
        {s[i : i + 8] for s in SECRETS for i in range(len(s) - 7) if s[i : i + 8] in text}
    )


class Upstreams:
    def __init__(self, urls: dict[str, str], http: httpx.Client) -> None:
        self.urls, self.http = urls, http

    def configure(self, provider: str, **knobs: Any) -> None:
        r = self.http.post(self.urls[provider] + "/__sim__/config", json=knobs)
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    mg = musicgpt_simulator(MusicGPTSimConfig(api_key=MG_KEY))
    ua = tempolor_simulator(TemPolorSimConfig(api_token=UA_TOKEN))
    with serve(mg) as mg_url, serve(ua) as ua_url, httpx.Client(timeout=10) as http:
        yield Upstreams({"musicgpt": mg_url, "tempolor": ua_url}, http)


@pytest.fixture
def sims(upstreams: Upstreams) -> Upstreams:
    """Both simulators echoing credentials in errors, fast, with no fault set."""
    upstreams.configure(
        "musicgpt",
        api_key=MG_KEY,
        faults=[],
        echo_auth_in_errors=True,
        queue_seconds=0.2,
        progress_seconds=0.4,
        callbacks=False,
    )
    upstreams.configure(
        "tempolor",
        api_token=UA_TOKEN,
        fault_status=None,
        fault_message=None,
        fault_count=None,
        fault_endpoints=["create", "status", "download"],
        echo_auth_in_errors=True,
        queue_seconds=0.2,
        generate_seconds=0.4,
        callbacks=False,
    )
    return upstreams


def env(sims: Upstreams) -> dict[str, str]:
    return {
        "MUSICGPT_API_KEY": MG_KEY,
        "MUSICGPT_BASE_URL": sims.urls["musicgpt"],
        "USEAPI_TOKEN": UA_TOKEN,
        "USEAPI_BASE_URL": sims.urls["tempolor"] + "/v1",
    }


def set_fault(
    sims: Upstreams, provider: str, status: int, message: str | None = None, **kw: Any
) -> None:
    if provider == "musicgpt":
        fault = {"status": status, "message": message, "endpoints": [kw.get("endpoint", "create")]}
        if "style" in kw:
            fault["body_style"] = kw["style"]
        sims.configure("musicgpt", faults=[fault])
    else:
        sims.configure(
            "tempolor",
            fault_status=status,
            fault_message=message,
            fault_endpoints=[kw.get("endpoint", "create")],
        )


MODELS = {"musicgpt": "musicgpt/v7", "tempolor": "tempolor/v4.8"}
# A message so long that the echoed key straddles the cut each client makes (MusicGPT
# keeps 500 characters of a native message, TemPolor 300): 10 characters of the key would
# survive a scrub made after the cut. The simulators append " (received Authorization: ".
_PREFIX = len(" (received Authorization: ")
STRADDLE = {
    "musicgpt": "m" * (500 - 10 - _PREFIX),
    "tempolor": "t" * (300 - 10 - _PREFIX - len("Bearer ")),
}
FAULTS = [
    pytest.param("musicgpt", 400, None, {}, id="musicgpt-400"),
    pytest.param("musicgpt", 401, None, {}, id="musicgpt-401"),
    pytest.param("musicgpt", 402, None, {"style": "message"}, id="musicgpt-402-message"),
    pytest.param("musicgpt", 403, None, {}, id="musicgpt-403"),
    pytest.param("musicgpt", 422, None, {"style": "detail"}, id="musicgpt-422-detail"),
    pytest.param("musicgpt", 429, None, {}, id="musicgpt-429"),
    pytest.param("musicgpt", 500, None, {}, id="musicgpt-500"),
    pytest.param("musicgpt", 400, STRADDLE["musicgpt"], {}, id="musicgpt-400-cut"),
    pytest.param("tempolor", 400, None, {}, id="tempolor-400"),
    pytest.param("tempolor", 401, None, {}, id="tempolor-401"),
    pytest.param("tempolor", 402, None, {}, id="tempolor-402"),
    pytest.param("tempolor", 429, None, {}, id="tempolor-429"),
    pytest.param("tempolor", 503, None, {}, id="tempolor-503"),
    pytest.param("tempolor", 400, STRADDLE["tempolor"], {}, id="tempolor-400-cut"),
]


# ------------------------------------------------------------ provider level (no gateway)


def _spec(provider: Any, model: str) -> ModelSpec:
    return next(m for m in provider.models if m.id == model)


@pytest.mark.parametrize(("name", "status", "message", "kw"), FAULTS)
async def test_provider_error_carries_no_credential(
    sims: Upstreams,
    capsys: pytest.CaptureFixture[str],
    name: str,
    status: int,
    message: str | None,
    kw: dict[str, Any],
) -> None:
    set_fault(sims, name, status, message, **kw)
    factory = musicgpt.create if name == "musicgpt" else tempolor.create
    provider = factory(env(sims))
    try:
        req = SubmitRequest(model=_spec(provider, MODELS[name]), prompt="a calm piano piece")
        with pytest.raises(ProviderError) as info:
            await provider.start(req)
    finally:
        await provider.aclose()
    exc = info.value
    text = f"{exc} {exc.message!r} {exc.args!r}"
    assert leaks(text) == [], text
    if message is None:  # the echo survived the cut: it was there, and it was scrubbed
        assert ECHO in exc.message and "[redacted]" in exc.message, exc.message
    out = capsys.readouterr()
    assert leaks(out.out + out.err) == []


@pytest.mark.parametrize("name", ["musicgpt", "tempolor"])
async def test_a_wrong_provider_key_is_not_echoed_either(
    sims: Upstreams, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """The upstream refuses the key we hold and quotes it back: still a secret."""
    wrong = "wrong-" + secrets.token_hex(12)
    factory = musicgpt.create if name == "musicgpt" else tempolor.create
    settings = {**env(sims), "MUSICGPT_API_KEY": wrong, "USEAPI_TOKEN": wrong}
    provider = factory(settings)
    try:
        req = SubmitRequest(model=_spec(provider, MODELS[name]), prompt="a calm piano piece")
        with pytest.raises(ProviderError) as info:
            await provider.start(req)
    finally:
        await provider.aclose()
    assert info.value.http_status == 502  # upstream_auth_error: our key, not the client's
    assert wrong[6:] not in str(info.value) and ECHO in info.value.message
    out = capsys.readouterr()
    assert wrong[6:] not in out.out + out.err


# ------------------------------------------------------------------- through the gateway


@pytest.fixture(scope="module")
async def gateway(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "GATEWAY_REDIS_PREFIX": f"t{secrets.token_hex(4)}:",
            "GATEWAY_API_KEYS": CLIENT_KEY,
            "GATEWAY_DATA_DIR": str(tmp_path_factory.mktemp("data")),
            "GATEWAY_LOG_FORMAT": "json",
            "GATEWAY_REFRESH_INTERVAL": "0",
            "GATEWAY_BREAKER_FAILURES": "1000",  # every fault here must reach the upstream
            "GATEWAY_UPSTREAM_BUDGETS": "musicgpt=6000,tempolor=6000",
            "GATEWAY_BACKGROUND_REFRESH": "false",  # only the test's GETs poll
            "GATEWAY_POLL_RETRIES": "0",
            **env(upstreams),
        }
    )
    async with app_client(create_app(settings), key=CLIENT_KEY) as c:
        yield c


async def stored(client: httpx.AsyncClient) -> dict[str, str]:
    """Everything the gateway keeps in Redis, as text by key."""
    store = client.app.state.store  # type: ignore[attr-defined]
    redis = store.redis
    found: dict[str, str] = {}
    async for key in redis.scan_iter(match=f"{store.prefix}*", count=500):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            value: Any = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        else:
            value = await redis.dump(key)
        found[key.decode()] = repr(value)
    return found


def written_since(before: dict[str, str], after: dict[str, str]) -> str:
    """What this test wrote (the module shares one gateway and one key prefix)."""
    return "\n".join(f"{k} {v}" for k, v in after.items() if before.get(k) != v)


@pytest.mark.parametrize(("name", "status", "message", "kw"), FAULTS)
async def test_failed_create_through_the_gateway_leaks_nothing(
    gateway: httpx.AsyncClient,
    sims: Upstreams,
    capsys: pytest.CaptureFixture[str],
    name: str,
    status: int,
    message: str | None,
    kw: dict[str, Any],
) -> None:
    before = await stored(gateway)
    set_fault(sims, name, status, message, **kw)
    body = {"model": MODELS[name], "prompt": "a calm piano piece"}
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = await gateway.post(URL, json=body, headers=headers)
    again = await gateway.post(URL, json=body, headers=headers)  # replayed from the store
    for r in (first, again):
        assert r.status_code >= 400, r.text
        assert leaks(r.text) == [] and leaks(str(r.headers)) == [], r.text
    if message is None:
        assert "[redacted]" in first.text, first.text  # the upstream did echo the key
    written = written_since(before, await stored(gateway))
    assert "[redacted]" in written or message is not None, written  # the failure was stored
    assert leaks(written) == []
    out = capsys.readouterr()
    assert leaks(out.out + out.err) == []


@pytest.mark.parametrize("name", ["musicgpt", "tempolor"])
async def test_failed_status_polls_leak_nothing(
    gateway: httpx.AsyncClient, sims: Upstreams, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    before = await stored(gateway)
    r = await gateway.post(URL, json={"model": MODELS[name], "prompt": "a calm piano piece"})
    assert r.status_code == 200, r.text
    job = r.json()
    for status in (401, 500, 429):
        set_fault(sims, name, status, endpoint="status")
        r = await gateway.get(f"{URL}/{job['id']}")
        assert leaks(r.text) == [], r.text
    assert leaks(written_since(before, await stored(gateway))) == []
    out = capsys.readouterr()
    assert leaks(out.out + out.err) == []
    if name == "musicgpt":  # its client logs the upstream message: scrubbed, not dropped
        assert "[redacted]" in out.err
