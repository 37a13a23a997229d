"""The simulator speaks useapi's wire format: raw HTTP against it."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.providers.tempolor.helpers import TOKEN, Sim
from tests.support.waiting import TIMEOUT

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def create(sim: Sim, kind: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    return sim.http.post(f"{sim.api}/tempolor/music/{kind}", json=body, headers=AUTH, **kw)


def test_bearer_auth_is_checked_with_the_native_envelope(sim: Sim) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        r = sim.http.post(f"{sim.api}/tempolor/music/song", json={"prompt": "x"}, headers=headers)
        assert r.status_code == 401 and r.json() == {"error": "Unauthorized", "code": 401}
    r = sim.http.get(f"{sim.api}/tempolor/music/user:1-tempolor:x-job:y")
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("song", {"prompt": "p", "model_song": "v3"}),
        ("song", {"prompt": "p", "model_song": "v4.5+", "lyrics": "l", "maxJobs": 2}),
        ("instrumental", {"prompt": "p", "model_instrumental": "i3.5"}),
        ("instrumental", {"prompt": "p", "model_instrumental": "i3.5 beta", "chord": "C G"}),
        ("instrumental", {"prompt": "p", "tonality": "Eb:minor", "bpm": 190, "chords": "Am"}),
    ],
)
def test_valid_creates_answer_a_jobs_array(sim: Sim, kind: str, body: dict[str, Any]) -> None:
    r = create(sim, kind, body)
    assert r.status_code == 200, r.text
    (job_id,) = r.json()["jobs"]
    assert job_id.startswith("user:12345-tempolor:") and "-job:" in job_id


@pytest.mark.parametrize(
    ("kind", "body", "fragment"),
    [
        ("song", {}, "prompt is required"),
        ("song", {"prompt": "p", "tonality": "C:major"}, "Unknown parameter tonality"),
        ("song", {"prompt": "p", "model_song": "v9"}, "model_song"),
        ("instrumental", {"prompt": "p", "lyrics": "l"}, "Unknown parameter lyrics"),
        ("instrumental", {"prompt": "p", "bpm": 200}, "bpm"),
        ("instrumental", {"prompt": "p", "tonality": "C:dorian"}, "tonality"),
        ("instrumental", {"prompt": "p", "chords": "C" * 201}, "chords"),
    ],
)
def test_invalid_creates_are_400s(sim: Sim, kind: str, body: dict, fragment: str) -> None:
    r = create(sim, kind, body)
    assert r.status_code == 400 and r.json()["code"] == 400
    assert fragment in r.json()["error"]


def test_status_progression_and_download(sim: Sim) -> None:
    # Phases of a second and more: the first poll sees the queue, a later one the rise,
    # however slow the machine (a slow poll would skip a phase of a tenth of a second).
    sim.configure(queue_seconds=1.0, generate_seconds=1.5, url_ttl_seconds=30)
    (job_id,) = create(sim, "song", {"prompt": "slow ballad"}).json()["jobs"]
    url = f"{sim.api}/tempolor/music/{job_id}"
    seen = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        body = sim.http.get(url, headers=AUTH).json()
        seen.append((body["status"], body["progress"], body["status_final"], body["status_name"]))
        if body["status_final"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.03)
    assert seen[0] == (0, 0, False, "GENERATING")
    rising = [p for s, p, _, _ in seen if s == 0 and p > 0]
    assert rising and rising == sorted(rising) and max(rising) < 100
    assert seen[-1] == (30, 100, True, "COMPLETED")
    assert body["job_id"] == job_id and body["titleEn"] == "Slow Ballad"
    assert body["musicMaterial"]["dur"] == 1 and body["cover"].startswith(sim.base)
    r = sim.http.get(
        f"{sim.api}/tempolor/music/download/{job_id}", params={"file_format": "wav"}, headers=AUTH
    )
    assert r.status_code == 200 and r.json()["remainSeconds"] == 30
    assert r.json()["url"].startswith(f"{sim.base}/media/") and "auth_key=" in r.json()["url"]
    assert sim.http.get(r.json()["url"]).content[:4] == b"RIFF"


def test_status_and_download_errors(sim: Sim) -> None:
    r = sim.http.get(f"{sim.api}/tempolor/music/not-a-job-id", headers=AUTH)
    assert r.status_code == 400 and r.json()["error"] == "job_id has incorrect format"
    missing = "user:12345-tempolor:sim-job:0000"
    r = sim.http.get(f"{sim.api}/tempolor/music/{missing}", headers=AUTH)
    assert r.status_code == 404 and r.json() == {
        "error": f"No record found for {missing}",
        "code": 404,
    }
    sim.configure(generate_seconds=5)
    (job_id,) = create(sim, "song", {"prompt": "p"}).json()["jobs"]
    r = sim.http.get(f"{sim.api}/tempolor/music/download/{job_id}", headers=AUTH)
    assert r.status_code == 400 and r.json()["error"] == "Generation is not completed yet (0)"
    assert sim.http.get(f"{sim.base}/media/x.mp3?auth_key=forged").status_code == 403


def test_config_endpoint_validates_and_stats_count(sim: Sim) -> None:
    r = sim.http.post(sim.base + "/__sim__/config", json={"no_such_knob": 1})
    assert r.status_code == 400
    r = sim.http.post(sim.base + "/__sim__/config", json={"queue_seconds": "slow"})
    assert r.status_code == 400
    assert sim.http.get(sim.base + "/__sim__/config").json()["api_token"] == TOKEN
    # generate_seconds: the job is still generating when the stats are read
    sim.configure(fault_status=503, fault_count=2, fault_endpoints=["create"], generate_seconds=600)
    codes = [create(sim, "song", {"prompt": "p"}).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    stats = sim.stats()
    assert stats["creates_accepted"] == 1 and stats["creates_rejected"] == 2
    assert stats["faults_injected"] == 2 and stats["jobs"] == {"generating": 1}


def test_malformed_json_and_latency_knobs(sim: Sim) -> None:
    sim.configure(malformed_json=True, fault_endpoints=["create"], fault_count=1)
    r = create(sim, "song", {"prompt": "p"})
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    sim.configure(latency_seconds=0.2, latency_endpoints=["create"])
    started = time.monotonic()
    assert create(sim, "song", {"prompt": "p"}).status_code == 200
    assert time.monotonic() - started >= 0.2
