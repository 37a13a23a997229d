"""Artefacts through real jobs: audio a provider answers as a URL is copied into the
artefact store (the SSRF guard for any host but the provider's own), converted when the
format asked differs, and, with ``GATEWAY_ARTEFACT_MIRROR``, an asynchronous provider's
outputs are copied in once its job completes.

Synchronous jobs use the test-only ``SyncEchoProvider`` (``{"echo_sync": {"url": ...}}``
answers that URL to copy) in an in-process gateway; the URLs are on a real HTTP server
on loopback (``tests/support/files.py``). The mirror runs against the MusicGPT simulator
over real HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from gateway.jobs import refresh
from providers.elevenlabs.sim_audio import mp3_chunks
from providers.simulator_media import MP3_BYTES
from tests.conftest import app_client
from tests.support.audio import probe
from tests.support.echo import EchoProvider, SyncEchoProvider
from tests.support.files import FileServer
from tests.support.servers import serve
from tests.support.upstreams import UPSTREAMS, Upstream
from tests.support.waiting import eventually

URL = "/v1/music/generate"
SYNC = "echo-sync/v1"
DOWNLOADS = "http://gateway.test/v1/artefacts/"


@pytest.fixture(scope="module")
def files() -> Iterator[FileServer]:
    app = FileServer()
    with serve(app) as base:
        app.base = base
        yield app


@pytest.fixture
def sync() -> SyncEchoProvider:
    return SyncEchoProvider()


@pytest.fixture
def gateway(make_settings: Callable[..., Settings], sync: SyncEchoProvider) -> Callable[..., Any]:
    """An in-process gateway (its providers: the echo pair) with ``env`` on top."""

    def build(**env: str) -> Any:
        settings = make_settings(GATEWAY_REFRESH_INTERVAL="0", **env)
        return app_client(create_app(settings, providers=[EchoProvider(), sync]))

    return build


def on_localhost(url: str, scheme: str = "http") -> str:
    """``url`` (on 127.0.0.1) by the name ``localhost``: a host that is not the
    provider's and resolves to loopback."""
    parts = urlsplit(url)
    return f"{scheme}://localhost:{parts.port}{parts.path}"


async def final(client: httpx.AsyncClient, job_id: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = (await client.get(f"{URL}/{job_id}")).json()
        if job["status"] in ("completed", "failed"):
            return job
        assert time.monotonic() < deadline, f"not final in time: {job}"
        await asyncio.sleep(0.03)


# ------------------------------------------------------- 7. copying in from a URL


@pytest.mark.parametrize(
    ("scheme", "why"),
    [
        ("https", "a loopback address"),  # resolves to 127.0.0.1: refused by address
        ("http", "must use https"),  # refused by scheme before any lookup
    ],
)
async def test_a_private_url_on_a_foreign_host_fails_the_job_clearly(
    gateway: Callable[..., Any],
    sync: SyncEchoProvider,
    files: FileServer,
    scheme: str,
    why: str,
) -> None:
    url = on_localhost(files.add(os.urandom(5000), "audio/mpeg"), scheme)
    path = urlsplit(url).path
    async with gateway(GATEWAY_WEBHOOK_ALLOW_PRIVATE="false") as client:
        r = await client.post(URL, json={"model": SYNC, "prompt": "x", "echo_sync": {"url": url}})
        assert r.status_code == 200, r.text
        job = r.json()
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "artefact_copy_failed"
        message = job["error"]["message"]
        assert message.startswith("The provider's audio URL was refused: "), message
        assert why in message and "webhook_url" not in message
        assert "GATEWAY_WEBHOOK_ALLOW_PRIVATE" in message  # says how to allow it
        assert job["output"] == []
        assert sync.calls["submit"] == 1  # the generation ran; only the copy was refused
    assert path not in files.requests  # never fetched
    # nothing was left in the store for the job
    store = client.app.state.artefacts  # type: ignore[attr-defined]
    assert await store.head(f"{job['id']}/0.mp3") is None


async def test_a_private_url_is_copied_when_private_targets_are_allowed(
    gateway: Callable[..., Any], files: FileServer
) -> None:
    data = os.urandom(700_000)  # several chunks of the copy
    url = on_localhost(files.add(data, "audio/mpeg"))
    async with gateway(GATEWAY_WEBHOOK_ALLOW_PRIVATE="true") as client:
        r = await client.post(URL, json={"model": SYNC, "prompt": "x", "echo_sync": {"url": url}})
        job = r.json()
        assert job["status"] == "completed", job
        audio_url = job["output"][0]["audio_url"]
        assert audio_url.startswith(f"{DOWNLOADS}{job['id']}/0.mp3?exp="), audio_url
        assert "localhost" not in audio_url  # the stored copy, not the provider's URL
        got = await client.get(audio_url)
        assert got.status_code == 200
        assert got.headers["content-type"].startswith("audio/mpeg")
        assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
        # The source going away changes nothing: the copy is the gateway's.
        files.files.pop(urlsplit(url).path.rsplit("/", 1)[-1])
        again = (await client.get(f"{URL}/{job['id']}")).json()
        assert (await client.get(again["output"][0]["audio_url"])).content == data


async def test_the_providers_own_host_is_trusted_without_the_guard(
    gateway: Callable[..., Any], sync: SyncEchoProvider, files: FileServer
) -> None:
    sync.base_url = files.base + "/api"  # the provider's configured base URL
    data = os.urandom(20_000)
    url = files.add(data, "audio/mpeg")  # same origin as the base URL, http, loopback
    async with gateway(GATEWAY_WEBHOOK_ALLOW_PRIVATE="false") as client:
        r = await client.post(URL, json={"model": SYNC, "prompt": "x", "echo_sync": {"url": url}})
        job = r.json()
        assert job["status"] == "completed", job
        assert (await client.get(job["output"][0]["audio_url"])).content == data


async def test_a_copied_url_is_converted_to_the_format_asked(
    gateway: Callable[..., Any], sync: SyncEchoProvider, files: FileServer
) -> None:
    sync.base_url = files.base
    mp3 = b"".join(mp3_chunks(3000, 65536))  # 3 s of real MP3
    url = files.add(mp3, "audio/mpeg")
    async with gateway() as client:
        body = {"model": SYNC, "prompt": "x", "format": "wav", "echo_sync": {"url": url}}
        job = (await client.post(URL, json=body)).json()
        assert job["status"] == "completed", job
        audio_url = job["output"][0]["audio_url"]
        assert urlsplit(audio_url).path == f"/v1/artefacts/{job['id']}/0.wav"
        got = await client.get(audio_url)
        assert got.headers["content-type"].startswith("audio/wav")
        container, codec, seconds = probe(got.content)
        assert (container, codec) == ("wav", "pcm_s16le")
        assert abs(seconds - 3.0) <= 0.15
        store = client.app.state.artefacts  # type: ignore[attr-defined]
        assert await store.head(f"{job['id']}/0.mp3") is None  # the source copy is gone


# ------------------------------------------------- 8. mirroring an asynchronous job


@pytest.fixture(scope="module")
def musicgpt() -> Iterator[tuple[Upstream, str]]:
    up = UPSTREAMS["musicgpt"]
    with serve(up.app()) as url:
        yield up, url


@pytest.fixture
def mg(musicgpt: tuple[Upstream, str]) -> Iterator[tuple[Upstream, str]]:
    up, url = musicgpt
    with httpx.Client() as http:
        up.configure(http, url, up.fast(queue=0.05, run=0.1))
        up.reset(http, url)
    yield musicgpt


@pytest.fixture
async def mirrored(
    make_settings: Callable[..., Settings], mg: tuple[Upstream, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway with the registry's providers, MusicGPT on its simulator, mirroring."""
    up, url = mg
    settings = make_settings(
        GATEWAY_ARTEFACT_MIRROR="true",
        GATEWAY_REFRESH_INTERVAL="0",
        **up.env(url, read_timeout=2),
    )
    async with app_client(create_app(settings)) as client:
        yield client


async def until_mirrored(client: httpx.AsyncClient, job_id: str, timeout: float = 15) -> dict:
    """The job once every output's audio_url is the gateway's own (a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        job = (await client.get(f"{URL}/{job_id}")).json()
        assert job["status"] in ("queued", "in_progress", "completed"), job
        urls = [o["audio_url"] or "" for o in job["output"]]
        if job["status"] == "completed" and urls and all(u.startswith(DOWNLOADS) for u in urls):
            return job
        assert time.monotonic() < deadline, f"not mirrored in time: {job}"
        await asyncio.sleep(0.05)


async def test_a_completed_async_job_is_mirrored_into_the_store(
    mirrored: httpx.AsyncClient, mg: tuple[Upstream, str]
) -> None:
    up, sim = mg
    client = mirrored
    r = await client.post(URL, json={"model": up.model, "prompt": "a mirrored song"})
    assert r.status_code == 200, r.text
    job = await until_mirrored(client, r.json()["id"])
    assert [o["index"] for o in job["output"]] == [0, 1]
    for out in job["output"]:
        assert urlsplit(out["audio_url"]).path == f"/v1/artefacts/{job['id']}/{out['index']}.mp3"
        assert sim not in out["audio_url"]
        got = await client.get(out["audio_url"])
        assert got.status_code == 200 and got.content == MP3_BYTES  # what the provider served
        assert got.headers["content-type"].startswith("audio/mpeg")
    # the job stays completed; reads answer fresh signed URLs, never a status call
    with httpx.Client() as http:
        calls = up.stats(http, sim)["status_calls"]
    again = (await client.get(f"{URL}/{job['id']}")).json()
    assert again["status"] == "completed"
    assert [o["audio_url"].split("?")[0] for o in again["output"]] == [
        o["audio_url"].split("?")[0] for o in job["output"]
    ]
    with httpx.Client() as http:
        assert up.stats(http, sim)["status_calls"] == calls


async def test_an_async_job_in_a_format_the_provider_lacks_is_mirrored_converted(
    mirrored: httpx.AsyncClient, mg: tuple[Upstream, str]
) -> None:
    up, _ = mg
    body = {"model": up.model, "prompt": "a converted song", "format": "ogg"}
    r = await mirrored.post(URL, json=body)
    assert r.status_code == 200, r.text
    job = await until_mirrored(mirrored, r.json()["id"])
    for out in job["output"]:
        assert urlsplit(out["audio_url"]).path.endswith(f"/{out['index']}.ogg")
        got = await mirrored.get(out["audio_url"])
        assert got.headers["content-type"].startswith("audio/ogg")
        container, codec, seconds = probe(got.content)
        assert (container, codec) == ("ogg", "opus") and abs(seconds - 1.0) < 0.1


async def test_a_conversion_whose_copy_is_lost_is_enqueued_again_then_given_up(
    make_settings: Callable[..., Settings],
    mg: tuple[Upstream, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The provider finished; the copy that converts the audio never runs (its process
    died with it). The job stays ``in_progress`` (never ``completed`` in mp3 while ogg
    was asked), the refresher enqueues the copy again, and past the deadline completes
    the job with the provider's audio, its warnings saying why."""
    monkeypatch.setattr(refresh, "CONVERSION_RECHECK", 0.3)
    monkeypatch.setattr(refresh, "CONVERSION_DEADLINE", 1.5)
    up, url = mg
    settings = make_settings(
        GATEWAY_ARTEFACT_MIRROR="true",
        GATEWAY_REFRESH_INTERVAL="0.2",
        **up.env(url, read_timeout=2),
    )
    async with app_client(create_app(settings)) as client:
        attempts: list[int] = []

        async def lost(record: Any, attempt: int) -> None:  # enqueued, never run
            attempts.append(attempt)

        core = client.app.state.jobs.core  # type: ignore[attr-defined]
        core.convert = lost
        core.on_completed.clear()  # no mirror at all: the provider's audio stays
        body = {"model": up.model, "prompt": "a lost conversion", "format": "ogg"}
        r = await client.post(URL, json=body)
        assert r.status_code == 200, r.text
        seen: list[dict[str, Any]] = []

        async def completed() -> dict[str, Any] | None:
            seen.append((await client.get(f"{URL}/{r.json()['id']}")).json())
            return seen[-1] if seen[-1]["status"] == "completed" else None

        job = await eventually(completed, timeout=15, what="the conversion given up")
    assert {j["status"] for j in seen[:-1]} <= {"queued", "in_progress"}
    assert attempts[0] == 0 and max(attempts) >= 1, attempts  # at once, then the refresher
    assert [(w["code"], w["param"]) for w in job["warnings"]] == [
        ("format_not_converted", "format")
    ]
    assert "in time" in job["warnings"][0]["message"]
    assert job["progress"] == 100 and job["audio_url"].split("?")[0].endswith(".mp3")


async def test_a_format_no_provider_gives_needs_a_stored_copy(
    echo_client: httpx.AsyncClient,
) -> None:
    """Without a generation worker (no synchronous provider, no mirror) nothing stores an
    asynchronous provider's audio, so nothing can convert it: the job runs in mp3 and its
    warnings say so (the 400 under ``require_parameters``)."""
    asked = {"model": "echo/v1", "prompt": "x", "format": "aac"}
    r = await echo_client.post(URL, json=asked)
    assert r.status_code == 200, r.text
    warning = r.json()["warnings"][0]
    assert (warning["code"], warning["param"]) == ("parameter_ignored", "format")
    assert "GATEWAY_ARTEFACT_MIRROR" in warning["message"]
    r = await echo_client.post(URL, json={**asked, "provider": {"require_parameters": True}})
    assert r.status_code == 400, r.text
    body = r.json()
    assert (body["error"], body["param"]) == ("unsupported_parameter", "format")
    r = await echo_client.post(URL, json={"model": "echo/v1", "prompt": "x", "format": "wav"})
    assert r.status_code == 200, r.text  # a format it gives natively
    assert r.json()["warnings"] == []
