"""End to end: client -> gateway (real HTTP) -> ElevenLabs simulator (real HTTP) -> the
artefact store -> the job's ``audio_url`` (the gateway's signed route, or S3's presigned
URL) -> back.

The gateway is ``create_app(make_settings(...))`` with the registry's providers, served on
loopback on the session's Redis, ElevenLabs pointed at a simulator served over HTTP. The
simulator is wrapped in a tap recording the ``song-id`` header of every answer it sends,
so the job's ``nativeResponseId`` can be compared with the one the upstream really gave.
The last test runs two gateway processes (``tests/support/gateway_process.py``) against
one simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec
import pytest
from litestar import Litestar

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from providers.elevenlabs.simulator import create_simulator
from tests.support.audio import probe
from tests.support.gateway_process import spawn_gateway, stop_gateway, wait_ready
from tests.support.servers import free_port, serve

from .conftest import DEFAULTS, KEY, Sim

GW_KEY = "sk-e2e-elevenlabs-0001"
AUTH = {"Authorization": f"Bearer {GW_KEY}"}
URL = "/v1/music/generate"
MODEL = "elevenlabs/music_v2"
PROMPT = "a bright synth-pop instrumental about loopback interfaces"


# --------------------------------------------------------------------- the simulator


class SongIds:
    """ASGI wrapper: records the ``song-id`` header of every answer of ``app``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.ids: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def tap(message: Any) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", []):
                    if name.lower() == b"song-id":
                        self.ids.append(value.decode())
            await send(message)

        await self.app(scope, receive, tap)


@dataclasses.dataclass
class Upstream:
    sim: Sim
    tap: SongIds

    @property
    def url(self) -> str:
        return self.sim.url


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[Upstream]:
    config = msgspec.structs.replace(DEFAULTS)
    tap = SongIds(create_simulator(config))
    with serve(tap) as url:
        yield Upstream(Sim(url=url, config=config), tap)


@pytest.fixture
async def upstream(upstream_server: Upstream) -> AsyncIterator[Upstream]:
    """The simulator with default knobs, empty counters and no song ids recorded."""
    sim = upstream_server.sim
    await sim.set(**msgspec.to_builtins(DEFAULTS))
    await sim.wait_for("in_flight", 0)
    async with httpx.AsyncClient() as c:
        (await c.post(f"{sim.url}/__sim__/reset")).raise_for_status()
    upstream_server.tap.ids.clear()
    yield upstream_server


# ----------------------------------------------------------------------- the gateway


@dataclasses.dataclass
class Gateway:
    client: httpx.AsyncClient  # authenticated, base URL the served gateway
    app: Litestar

    @property
    def base(self) -> str:
        return str(self.client.base_url).rstrip("/")


@contextlib.asynccontextmanager
async def gateway(
    make_settings: Callable[..., Settings], up: Upstream, **env: str
) -> AsyncIterator[Gateway]:
    port = free_port()
    env = {
        "GATEWAY_API_KEYS": GW_KEY,
        "ELEVENLABS_API_KEY": KEY,
        "ELEVENLABS_BASE_URL": up.url,
        "ELEVENLABS_CONNECT_TIMEOUT": "1",
        "ELEVENLABS_READ_TIMEOUT": "10",
        "GATEWAY_REFRESH_INTERVAL": "0",
        **env,
    }
    app = create_app(make_settings(**env))
    with serve(app, port=port) as base:
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as client:
            yield Gateway(client, app)


@pytest.fixture(params=["file", "s3"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The artefact store: the default folder (under the data dir), or S3 (rclone)."""
    if request.param == "file":
        return {}
    s3 = request.getfixturevalue("s3_server")
    return {**s3.env(), "GATEWAY_ARTEFACT_STORE": f"s3://artefacts/e2e{secrets.token_hex(4)}"}


# ------------------------------------------------------------------------- helpers


async def create(
    gw: Gateway, prefer: str | None = None, status: int = 200, **body: Any
) -> httpx.Response:
    body.setdefault("model", MODEL)
    body.setdefault("prompt", PROMPT)
    headers = {"Prefer": prefer} if prefer else None
    r = await gw.client.post(URL, json=body, headers=headers)
    assert r.status_code == status, r.text
    return r


async def poll(
    gw: Gateway, job_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> list[dict[str, Any]]:
    """Every job object read until ``until`` holds (a deadline, not a fixed wait)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        r = await gw.client.get(f"{URL}/{job_id}")
        assert r.status_code == 200, r.text
        seen.append(r.json())
        if until(seen[-1]):
            return seen
        assert time.monotonic() < deadline, f"timed out: {seen[-1]}"
        await asyncio.sleep(0.03)


def final(job: dict[str, Any]) -> bool:
    return job["status"] in ("completed", "failed")


async def download(url: str, **headers: str) -> httpx.Response:
    """A plain GET, no API key: the URL is the authorization."""
    async with httpx.AsyncClient(timeout=30) as c:
        return await c.get(url, headers=headers)


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert (body["error"], body["status_code"]) == (code, status), body
    assert body["request_id"] == r.headers["x-request-id"]
    return body


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- 1. the happy path


async def test_default_wait_answers_the_completed_song(
    make_settings: Callable[..., Settings],
    upstream: Upstream,
    store_env: dict[str, str],
    tmp_path: Path,
) -> None:
    async with gateway(make_settings, upstream, **store_env) as gw:
        r = await create(gw, duration=5)
        assert "preference-applied" not in r.headers
        job = r.json()
        assert job["status"] == "completed", job
        assert (job["provider"], job["model"], job["progress"]) == ("elevenlabs", MODEL, 100)
        assert job["error"] is None
        stats = await upstream.sim.stats()
        assert (stats["music_calls"], stats["completed"]) == (1, 1)
        assert stats["last_query"] == "mp3_44100_128"
        sent = msgspec.json.decode(stats["last_body"])
        assert (sent["prompt"], sent["model_id"], sent["music_length_ms"]) == (
            PROMPT,
            "music_v2",
            5000,
        )
        assert upstream.tap.ids and job["nativeResponseId"] == upstream.tap.ids[-1]

        [out] = job["output"]
        assert (out["index"], out["id"], out["duration"]) == (0, job["nativeResponseId"], 5.0)
        url = out["audio_url"]
        if store_env:  # S3: S3's own presigned URL, fetched directly
            assert url.startswith(store_env["AWS_ENDPOINT_URL"]) and "X-Amz-Signature=" in url
            assert f"/{job['id']}/0.mp3" in urlsplit(url).path
        else:  # a folder: the gateway's signed route
            assert url.startswith(f"{gw.base}/v1/artefacts/{job['id']}/0.mp3?exp=")
        audio = await download(url)
        assert audio.status_code == 200, audio.text
        assert audio.headers["content-type"].startswith("audio/mpeg")
        assert len(audio.content) == stats["last_bytes"]
        assert sha(audio.content) == stats["last_sha256"]  # byte for byte as sent
        assert job["usage"]["output_audio_count"] == 1

        again = (await gw.client.get(f"{URL}/{job['id']}")).json()
        assert again["status"] == "completed" and again["output"][0]["id"] == out["id"]
        assert (await upstream.sim.stats())["music_calls"] == 1  # final: never sent again
        if not store_env:  # the copy is where the default store keeps it
            stored = tmp_path / "data" / "artefacts" / job["id"] / "0.mp3"  # make_settings
            assert sha(stored.read_bytes()) == stats["last_sha256"]


async def test_respond_async_answers_queued_then_completes(
    make_settings: Callable[..., Settings], upstream: Upstream
) -> None:
    await upstream.sim.set(latency=0.5)
    async with gateway(make_settings, upstream) as gw:
        r = await create(gw, prefer="respond-async")
        assert r.headers["preference-applied"] == "respond-async"
        job = r.json()
        assert job["status"] == "queued" and job["output"] == [] and job["progress"] is None
        seen = await poll(gw, job["id"], final)
        statuses = [j["status"] for j in seen]
        assert statuses[-1] == "completed" and "failed" not in statuses
        done = seen[-1]
        stats = await upstream.sim.stats()
        assert stats["music_calls"] == 1
        assert done["nativeResponseId"] == upstream.tap.ids[-1]
        audio = await download(done["output"][0]["audio_url"])
        assert audio.status_code == 200 and sha(audio.content) == stats["last_sha256"]


async def test_prefer_wait_bounds_the_answer(
    make_settings: Callable[..., Settings], upstream: Upstream
) -> None:
    await upstream.sim.set(latency=3.0)  # far past the wait, even on a slow machine
    async with gateway(make_settings, upstream) as gw:
        began = time.monotonic()
        r = await create(gw, prefer="wait=0.3")
        took = time.monotonic() - began
        assert r.headers["preference-applied"] == "wait=0.3"
        job = r.json()
        assert job["status"] in ("queued", "in_progress"), job
        assert 0.3 <= took < 3.0  # the wait asked, not the generation's length
        assert (await upstream.sim.stats())["accepted"] == 0  # still generating upstream
        done = (await poll(gw, job["id"], final))[-1]
        assert done["status"] == "completed"
        assert done["nativeResponseId"] == upstream.tap.ids[-1]


# ----------------------------------------------------- 3. the signed URL of a real job


async def test_signed_url_ranges_head_tampering_expiry_and_fresh_urls(
    make_settings: Callable[..., Settings], upstream: Upstream
) -> None:
    async with gateway(make_settings, upstream, GATEWAY_ARTEFACT_URL_TTL="600") as gw:
        job = (await create(gw, duration=4)).json()
        assert job["status"] == "completed", job
        url = job["output"][0]["audio_url"]
        whole = await download(url)
        assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
        data, size = whole.content, len(whole.content)
        assert sha(data) == (await upstream.sim.stats())["last_sha256"]

        part = await download(url, Range="bytes=100-1099")
        assert part.status_code == 206 and part.content == data[100:1100]
        assert part.headers["content-range"] == f"bytes 100-1099/{size}"
        assert part.headers["content-length"] == "1000"
        assert part.headers["content-type"].startswith("audio/mpeg")
        tail = await download(url, Range="bytes=-500")
        assert tail.status_code == 206 and tail.content == data[-500:]
        past = await download(url, Range=f"bytes={size}-")
        assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"

        async with httpx.AsyncClient() as c:
            head = await c.head(url)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(size)
        assert head.headers["content-type"].startswith("audio/mpeg")

        query = parse_qs(urlsplit(url).query)
        sig, exp = query["sig"][0], int(query["exp"][0])
        assert time.time() + 590 < exp <= time.time() + 601  # GATEWAY_ARTEFACT_URL_TTL
        flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        tampered = url.replace(f"sig={sig}", f"sig={flipped}")
        body = assert_error(await download(tampered), 403, "invalid_signature")
        assert data[:16].hex() not in str(body)
        later = url.replace(f"exp={exp}", f"exp={exp + 3600}")  # a longer life, same sig
        assert_error(await download(later), 403, "invalid_signature")
        other_key = url.replace("/0.mp3?", "/1.mp3?")
        assert_error(await download(other_key), 403, "invalid_signature")
        assert_error(await download(url.split("?")[0]), 403, "invalid_signature")

        # Time passes (the signer's clock, injected): the URL expires; reading the job
        # again answers a fresh one for the same bytes.
        signer = gw.app.state.artefacts.signer
        signer.clock = lambda: time.time() + 3600
        assert_error(await download(url), 403, "url_expired")
        async with httpx.AsyncClient() as c:
            assert (await c.head(url)).status_code == 403
        fresh = (await gw.client.get(f"{URL}/{job['id']}")).json()["output"][0]["audio_url"]
        assert fresh != url
        assert int(parse_qs(urlsplit(fresh).query)["exp"][0]) > exp + 3000
        again = await download(fresh)
        assert again.status_code == 200 and again.content == data


# -------------------------------------------------------- 4. formats, converted


@pytest.mark.parametrize(
    ("fmt", "container", "codec", "content_type", "query"),
    [
        ("mp3", "mp3", "mp3", "audio/mpeg", "mp3_44100_128"),
        ("wav", "wav", "pcm_s16le", "audio/wav", "pcm_44100"),
        ("ogg", "ogg", "opus", "audio/ogg", "mp3_44100_128"),
        ("aac", "aac", "aac", "audio/aac", "mp3_44100_128"),  # ADTS: FFmpeg's "aac" demuxer
    ],
)
async def test_each_format_is_served_decodable_and_of_the_asked_length(
    make_settings: Callable[..., Settings],
    upstream: Upstream,
    fmt: str,
    container: str,
    codec: str,
    content_type: str,
    query: str,
) -> None:
    seconds = 4
    async with gateway(make_settings, upstream) as gw:
        job = (await create(gw, duration=seconds, format=fmt)).json()
        assert job["status"] == "completed", job
        stats = await upstream.sim.stats()
        assert stats["last_query"] == query  # ogg and aac: asked as MP3, then converted
        url = job["output"][0]["audio_url"]
        assert urlsplit(url).path == f"/v1/artefacts/{job['id']}/0.{fmt}"
        audio = await download(url)
        assert audio.status_code == 200, audio.text
        assert audio.headers["content-type"].split(";")[0] == content_type
        got = probe(audio.content)
        assert got[:2] == (container, codec), got
        assert abs(got[2] - seconds) <= 0.05 * seconds, got
        if fmt == "mp3":  # given natively: stored byte for byte as the provider sent it
            assert sha(audio.content) == stats["last_sha256"]
        if fmt == "wav":  # the provider's PCM, as sent, behind a 44-byte RIFF header
            assert audio.content[:4] == b"RIFF" and sha(audio.content[44:]) == stats["last_sha256"]


# --------------------------------------------------------------- 5. errors surfaced


async def test_bad_prompt_fails_with_the_providers_suggestion(
    make_settings: Callable[..., Settings], upstream: Upstream
) -> None:
    suggestion = "A calm solo piano piece in a minor key"
    await upstream.sim.set(faults=[{"kind": "bad_prompt", "suggestion": suggestion}])
    async with gateway(make_settings, upstream) as gw:
        job = (await create(gw)).json()
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "upstream_rejected"
        assert "bad_prompt" in job["error"]["message"]
        assert suggestion in job["error"]["message"]
        assert job["output"] == []
        stats = await upstream.sim.stats()
        assert (stats["music_calls"], stats["faults_injected"]) == (1, 1)  # never re-sent
        again = (await gw.client.get(f"{URL}/{job['id']}")).json()
        assert again["status"] == "failed" and again["error"] == job["error"]


async def test_a_refused_key_is_an_auth_error_and_is_never_echoed(
    make_settings: Callable[..., Settings], upstream: Upstream
) -> None:
    await upstream.sim.set(faults=[{"kind": "invalid_api_key"}], echo_key_in_errors=True)
    async with gateway(make_settings, upstream) as gw:
        r = await create(gw)
        job = r.json()
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "upstream_auth_error"
        assert KEY not in r.text
        assert (await upstream.sim.stats())["music_calls"] == 1


async def test_an_upstream_validation_error_names_the_field(
    make_settings: Callable[..., Settings], upstream: Upstream
) -> None:
    await upstream.sim.set(faults=[{"kind": "validation"}])
    async with gateway(make_settings, upstream) as gw:
        job = (await create(gw, duration=30)).json()
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "upstream_rejected"
        assert "music_length_ms" in job["error"]["message"]


@pytest.mark.parametrize("duration", [1, 2, 601, 0])
async def test_a_duration_out_of_range_is_refused_before_any_upstream_call(
    make_settings: Callable[..., Settings], upstream: Upstream, duration: int
) -> None:
    async with gateway(make_settings, upstream) as gw:
        r = await create(gw, status=400, duration=duration)
        body = r.json()
        assert body["status_code"] == 400 and body["param"] == "duration", body
        if 1 <= duration <= 600:  # the schema allows it; ElevenLabs' check does not
            assert body["error"] == "invalid_parameter"
            assert "3 to 600 seconds" in body["description"]
        stats = await upstream.sim.stats()
        assert stats["music_calls"] == 0
        assert not upstream.tap.ids


async def test_a_concurrency_429_requeues_the_job_until_it_completes(
    make_settings: Callable[..., Settings], upstream: Upstream
) -> None:
    rule = {"kind": "too_many_concurrent_requests", "count": 2, "retry_after": 0.3}
    await upstream.sim.set(faults=[rule])
    async with gateway(make_settings, upstream) as gw:
        job = (await create(gw, prefer="respond-async")).json()
        seen = await poll(gw, job["id"], final)
        statuses = [j["status"] for j in seen]
        assert "failed" not in statuses and statuses[-1] == "completed", seen[-1]
        stats = await upstream.sim.stats()
        # two 429s, then the generation: three calls, one song
        assert (stats["music_calls"], stats["faults_injected"], stats["accepted"]) == (3, 2, 1)
        assert seen[-1]["nativeResponseId"] == upstream.tap.ids[-1]
        assert len(upstream.tap.ids) == 1
        registry = gw.app.state.metrics.registry
        labels = {"provider": "elevenlabs", "reason": "rate"}
        assert registry.get_sample_value("gateway_generations_requeued_total", labels) == 2


async def test_a_429_keeps_the_job_in_progress_between_attempts(
    make_settings: Callable[..., Settings], upstream: Upstream
) -> None:
    rule = {"kind": "too_many_concurrent_requests", "count": 1, "retry_after": 1.5}
    await upstream.sim.set(faults=[rule])
    async with gateway(make_settings, upstream) as gw:
        job = (await create(gw, prefer="respond-async")).json()
        await upstream.sim.wait_for("faults_injected", 1)
        # After the 429 the job waits 1.5 s for its next attempt: not failed, and still
        # in_progress (status only moves forward: never queued again).
        waiting = (await poll(gw, job["id"], lambda j: True))[-1]
        assert waiting["status"] == "in_progress", waiting
        assert (await upstream.sim.stats())["music_calls"] == 1
        seen = await poll(gw, job["id"], final)
        assert [j["status"] for j in seen] == ["in_progress"] * (len(seen) - 1) + ["completed"]
        assert (await upstream.sim.stats())["music_calls"] == 2


# ----------------------------------- 6. the concurrency cap across gateway processes


@pytest.mark.timeout(90)
async def test_two_gateway_processes_share_the_concurrency_cap(
    upstream: Upstream, redis_env: dict[str, str], tmp_path: Path
) -> None:
    # The simulator itself refuses a third concurrent call (429): the gateway must never
    # provoke one, whichever process runs the generation.
    await upstream.sim.set(latency=0.6, max_concurrency=2)
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GATEWAY_", "ELEVENLABS_", "REDIS_"))
        },
        **redis_env,
        "GATEWAY_REDIS_PREFIX": f"t{secrets.token_hex(4)}:",
        "GATEWAY_API_KEYS": GW_KEY,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_CONCURRENCY": "elevenlabs=2",
        "GATEWAY_REFRESH_INTERVAL": "0",
        "ELEVENLABS_API_KEY": KEY,
        "ELEVENLABS_BASE_URL": upstream.url,
        "ELEVENLABS_READ_TIMEOUT": "10",
    }
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"gateway-{port}.log" for port in ports]
    procs = [spawn_gateway(env, port, log) for port, log in zip(ports, logs, strict=True)]
    try:
        for proc, port, log in zip(procs, ports, logs, strict=True):  # started side by side
            wait_ready(proc, port, log)
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        async with httpx.AsyncClient(headers=AUTH, timeout=10) as client:
            headers = {"Prefer": "respond-async"}
            body = {"model": MODEL, "prompt": PROMPT, "duration": 3}
            sent = []
            for i in range(6):  # alternately through each process
                r = await client.post(f"{bases[i % 2]}{URL}", json=body, headers=headers)
                assert r.status_code == 200 and r.json()["status"] == "queued", r.text
                sent.append(r.json()["id"])
            done = {}
            deadline = time.monotonic() + 40
            while len(done) < len(sent):
                for i, job_id in enumerate(sent):
                    if job_id in done:
                        continue
                    job = (await client.get(f"{bases[(i + 1) % 2]}{URL}/{job_id}")).json()
                    assert job["status"] != "failed", job
                    if job["status"] == "completed":
                        done[job_id] = job
                assert time.monotonic() < deadline, f"not all completed: {len(done)}/6"
                await asyncio.sleep(0.05)
        stats = await upstream.sim.stats()
        assert stats["accepted"] == stats["completed"] == 6
        assert stats["rate_limited"] == 0  # never a third call at once
        assert stats["max_in_flight"] <= 2, stats
        assert stats["music_calls"] == 6  # no requeue ever needed the provider's 429
        assert sorted(j["nativeResponseId"] for j in done.values()) == sorted(upstream.tap.ids)
        for job in done.values():
            audio = await download(job["output"][0]["audio_url"])
            assert audio.status_code == 200
            assert audio.headers["content-type"].startswith("audio/mpeg")
    finally:
        for proc in procs:
            stop_gateway(proc)
