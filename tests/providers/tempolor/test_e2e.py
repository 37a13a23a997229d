"""End to end: the gateway over real HTTP, routing ``tempolor/*`` to the simulator.

The gateway is built the way it runs (``create_app(Settings.from_env(env))``, providers
from the registry) with ``USEAPI_BASE_URL`` pointing at the simulator; tests drive
``POST /v1/music/generate`` and ``GET /v1/music/generate/{id}`` as a client would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.infra.settings import Settings
from tests.providers.tempolor.helpers import TOKEN, Sim
from tests.support.served import served_gateways
from tests.support.waiting import TIMEOUT, wait_until

KEY = "sk-tempolor-e2e-0001"
MP3_SYNC = b"\xff\xfb"
Gateway = Callable[..., httpx.Client]


@pytest.fixture
def gateway(make_settings: Callable[..., Settings], sim: Sim) -> Iterator[Gateway]:
    """Start a gateway on the simulator: ``gateway(callbacks=False, **extra_env)``."""
    env = {"USEAPI_TOKEN": TOKEN, "USEAPI_BASE_URL": sim.api}
    with served_gateways(make_settings, KEY, env) as start:
        yield start


def generate(gw: httpx.Client, **body: Any) -> dict[str, Any]:
    r = gw.post("/v1/music/generate", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def wait(
    gw: httpx.Client, job_id: str, until: Callable[[dict[str, Any]], bool] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    until = until or (lambda j: j["status"] in ("completed", "failed"))
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        r = gw.get(f"/v1/music/generate/{job_id}")
        assert r.status_code == 200, r.text
        seen.append(r.json())
        if until(seen[-1]):
            return seen[-1], seen
        assert time.monotonic() < deadline, f"timed out at {seen[-1]}"
        time.sleep(0.03)


def test_song_to_completion_with_playable_audio(gateway: Gateway, sim: Sim) -> None:
    sim.configure(generate_seconds=1.5)  # long enough for a slow first poll to see it
    gw = gateway()
    job = generate(gw, model="tempolor/v4.8", prompt="a warm summer anthem", lyrics="la la")
    assert job["object"] == "music" and job["provider"] == "tempolor"
    assert job["status"] == "queued" and job["nativeResponseId"].startswith("user:12345-")
    done, seen = wait(gw, job["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert "in_progress" in [j["status"] for j in seen]
    (out,) = done["output"]
    assert out["id"] == job["nativeResponseId"] and out["lyrics"] == "la la"
    assert done["usage"] == {"output_audio_count": 1, "output_audio_seconds": 1.0}
    audio = sim.http.get(out["audio_url"])
    assert audio.status_code == 200 and audio.content.startswith(MP3_SYNC)
    assert sim.http.get(out["image_url"]).content.startswith(b"\x89PNG")
    assert sim.creates()[0]["body"]["model_song"] == "v4.8"


def test_instrumental_with_native_block_in_wav(gateway: Gateway, sim: Sim) -> None:
    gw = gateway()
    job = generate(
        gw, model="tempolor/i3.5", prompt="lo-fi beat", format="wav",
        tempolor={"tonality": "Bb:minor", "bpm": 84, "chords": "Am F C G"},
    )  # fmt: skip
    done, _ = wait(gw, job["id"])
    assert done["status"] == "completed"
    assert sim.http.get(done["output"][0]["audio_url"]).content[:4] == b"RIFF"
    assert sim.creates()[0]["body"] == {
        "prompt": "lo-fi beat", "model_instrumental": "i3.5 beta", "tonality": "Bb:minor",
        "bpm": 84, "chords": "Am F C G",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"model": "tempolor/v4.8", "instrumental": True}, "unsupported_parameter",
         "instrumental"),
        ({"model": "tempolor/v3", "tempolor": {"bpm": 100}}, "unsupported_parameter",
         "tempolor.bpm"),
        ({"model": "tempolor/i4", "tempolor": {"bpm": 300}}, "validation_error", "tempolor.bpm"),
        ({"model": "tempolor/i3", "tempolor": {"tonality": "X:major"}}, "validation_error",
         "tempolor.tonality"),
        ({"model": "tempolor/i4", "tempolor": {"midiItemId": "m"}}, "unsupported_parameter",
         "tempolor.midiItemId"),
        ({"model": "tempolor/v4.8", "duration": 30, "provider": {"require_parameters": True}},
         "unsupported_parameter", "duration"),
        ({"model": "tempolor/i3", "lyrics": "words", "provider": {"require_parameters": True}},
         "unsupported_parameter", "lyrics"),
    ],
)  # fmt: skip
def test_requests_tempolor_cannot_honour_are_400s(
    gateway: Gateway, sim: Sim, body: dict[str, Any], code: str, param: str
) -> None:
    r = gateway().post("/v1/music/generate", json={"prompt": "p", **body})
    assert r.status_code == 400, r.text
    assert (r.json()["error"], r.json()["param"]) == (code, param)
    if param == "instrumental":
        assert "tempolor/i3, tempolor/i3.5, tempolor/i4" in r.json()["description"]
    assert sim.stats()["creates_accepted"] + sim.stats()["creates_rejected"] == 0


def test_fields_tempolor_cannot_use_are_warnings_and_never_sent(gateway: Gateway, sim: Sim) -> None:
    body = {"model": "tempolor/i3", "prompt": "p", "lyrics": "words", "duration": 30}
    r = gateway().post("/v1/music/generate", json=body)
    assert r.status_code == 200, r.text
    assert sorted(w["param"] for w in r.json()["warnings"]) == ["duration", "lyrics"]
    sent = sim.creates()[0]["body"]
    assert "words" not in str(sent) and "lyrics" not in sent


def test_404_after_completion_is_not_ready_yet(gateway: Gateway, sim: Sim) -> None:
    sim.configure(download_404_seconds=1.5)  # wide: a slow first poll still falls within
    gw = gateway()
    job = generate(gw, model="tempolor/v3.5", prompt="p")
    done, seen = wait(gw, job["id"])
    assert done["status"] == "completed" and done["output"][0]["audio_url"]
    waiting = [j for j in seen if j["status"] == "in_progress" and j["progress"] == 99]
    assert waiting and all(not o.get("audio_url") for j in waiting for o in j["output"])
    assert sim.stats()["download_calls"] >= 2


def test_expired_url_is_refetched_before_a_client_gets_it(gateway: Gateway, sim: Sim) -> None:
    sim.configure(url_ttl_seconds=3.0)  # renewal due at 80 %: 2.4 s for the checks before it
    gw = gateway()
    job = generate(gw, model="tempolor/v4.8", prompt="p")
    done, _ = wait(gw, job["id"])
    old = done["output"][0]["audio_url"]
    before = sim.stats()
    assert gw.get(f"/v1/music/generate/{job['id']}").json()["output"][0]["audio_url"] == old
    assert sim.stats()["download_calls"] == before["download_calls"]  # served from the store
    wait_until(lambda: sim.http.get(old).status_code == 403, what="the old URL dead")
    again = gw.get(f"/v1/music/generate/{job['id']}").json()
    new = again["output"][0]["audio_url"]
    assert again["status"] == "completed" and new != old
    assert sim.http.get(new).status_code == 200
    after = sim.stats()
    assert after["download_calls"] == before["download_calls"] + 1
    assert after["status_calls"] == before["status_calls"]


def test_multi_job_create(gateway: Gateway, sim: Sim) -> None:
    sim.configure(jobs_per_create=2)
    gw = gateway()
    job = generate(gw, model="tempolor/i4", prompt="p")
    done, _ = wait(gw, job["id"])
    assert done["status"] == "completed"
    assert [o["index"] for o in done["output"]] == [0, 1]
    assert done["usage"]["output_audio_count"] == 2
    assert all(sim.http.get(o["audio_url"]).status_code == 200 for o in done["output"])


def test_generation_failure(gateway: Gateway, sim: Sim) -> None:
    sim.configure(fail_next_jobs=1)
    gw = gateway()
    job = generate(gw, model="tempolor/v4.8", prompt="p")
    done, _ = wait(gw, job["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "generation_failed"
    assert done.get("usage") is None


@pytest.mark.parametrize(
    ("knobs", "status", "code"),
    [
        ({"fault_status": 400, "fault_message": "Parameter prompt is required"}, 400,
         "upstream_rejected"),
        ({"fault_status": 401}, 502, "upstream_auth_error"),
        ({"fault_status": 402, "fault_message": "Subscription required"}, 402,
         "upstream_insufficient_credits"),
        ({"fault_status": 412}, 402, "upstream_insufficient_credits"),
        ({"fault_status": 429, "retry_after": 20}, 429, "upstream_rate_limited"),
        ({"fault_status": 503}, 502, "upstream_error"),
        # Answer unreadable or lost: maybe created, never re-sent (no callback URL here).
        ({"malformed_json": True}, 504, "upstream_outcome_unknown"),
        ({"latency_seconds": 4.0}, 504, "upstream_outcome_unknown"),
    ],
)  # fmt: skip
def test_create_faults_map_to_client_errors(
    gateway: Gateway, sim: Sim, knobs: dict[str, Any], status: int, code: str
) -> None:
    sim.configure(fault_endpoints=["create"], latency_endpoints=["create"], **knobs)
    gw = gateway(USEAPI_READ_TIMEOUT="1.0")  # answers in ms; the latency knob far beyond
    r = gw.post("/v1/music/generate", json={"model": "tempolor/v4.8", "prompt": "p"})
    assert r.status_code == status, r.text
    assert r.json()["error"] == code
    assert TOKEN not in r.text
    if "fault_message" in knobs:
        assert knobs["fault_message"] in r.json()["description"]
    if status == 429:
        assert r.headers["Retry-After"] == "20"


def test_status_fault_answers_the_last_known_snapshot(gateway: Gateway, sim: Sim) -> None:
    gw = gateway()
    job = generate(gw, model="tempolor/v4.8", prompt="p")
    sim.configure(fault_status=503, fault_endpoints=["status"])
    r = gw.get(f"/v1/music/generate/{job['id']}")
    assert r.status_code == 200 and r.json()["status"] == "queued"
    sim.configure(fault_status=None)
    done, _ = wait(gw, job["id"])
    assert done["status"] == "completed"


def test_callbacks_complete_the_job_without_polling(gateway: Gateway, sim: Sim) -> None:
    gw = gateway(callbacks=True)
    job = generate(gw, model="tempolor/v4.8", prompt="p")
    reply = sim.creates()[0]["body"]
    assert reply["replyUrl"].startswith(str(gw.base_url).rstrip("/") + "/v1/callbacks/tempolor/")
    assert reply["replyRef"].startswith(job["id"] + ":")
    wait_until(lambda: sim.stats()["callbacks_sent"] >= 3, what="3 callbacks answered")
    done = gw.get(f"/v1/music/generate/{job['id']}").json()
    assert done["status"] == "completed" and done["output"][0]["audio_url"]
    stats = sim.stats()
    assert stats["status_calls"] == 0 and stats["download_calls"] == 1
    assert stats["callbacks_failed"] == 0
