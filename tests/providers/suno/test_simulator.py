"""The Suno simulator speaks sunoapi.org's format: checked bodies, the documented shapes,
real media bytes, and its control surface."""

from __future__ import annotations

from typing import Any

import pytest

from providers.simulator_media import MP3_BYTES, PNG_BYTES
from tests.providers.suno.helpers import KEY, Sim
from tests.support.waiting import wait_until

GOOD = {
    "customMode": False,
    "instrumental": False,
    "model": "V5",
    "callBackUrl": "https://callback.invalid/x",
    "prompt": "a calm piano piece",
}


def create(sim: Sim, body: Any, key: str = KEY) -> dict[str, Any]:
    r = sim.http.post(
        sim.base + "/api/v1/generate", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 200, r.text  # errors arrive inside HTTP 200
    return r.json()


def record(sim: Sim, task_id: str) -> dict[str, Any]:
    r = sim.http.get(
        sim.base + "/api/v1/generate/record-info",
        params={"taskId": task_id},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ({"callBackUrl": None}, 400),
        ({"customMode": "no"}, 400),
        ({"model": "V3_5"}, 400),
        ({"prompt": None}, 400),
        ({"prompt": "x" * 501}, 413),
        ({"customMode": True, "style": "s"}, 400),  # no title
        ({"customMode": True, "style": "s", "title": "t"}, 200),  # prompt: the lyrics
        ({"customMode": True, "instrumental": True, "style": "s", "title": "t"}, 200),
        ({"customMode": True, "style": "s" * 201, "title": "t", "model": "V4"}, 413),
        ({"customMode": True, "style": "s", "title": "t" * 101}, 413),
        ({"vocalGender": "x", "customMode": True, "style": "s", "title": "t"}, 400),
        ({"surprise": 1}, 400),
    ],
)
def test_create_bodies_are_checked_as_documented(
    sim: Sim, patch: dict[str, Any], code: int
) -> None:
    body = {k: v for k, v in {**GOOD, **patch}.items() if v is not None}
    answer = create(sim, body)
    assert answer["code"] == code, answer
    if code == 200:
        assert answer["msg"] == "success" and answer["data"]["taskId"]


def test_wrong_key_is_code_401_and_can_echo_it(sim: Sim) -> None:
    sim.configure(echo_auth_in_errors=True)
    answer = create(sim, GOOD, key="nope")
    assert answer["code"] == 401 and "Bearer nope" in answer["msg"]


def test_a_task_moves_through_the_documented_stages_with_real_media(sim: Sim) -> None:
    sim.configure(callbacks=False, text_seconds=0.3, first_seconds=0.6, complete_seconds=0.9)
    task = create(sim, GOOD)["data"]["taskId"]
    seen: list[str] = []

    def done() -> bool:
        data = record(sim, task)["data"]
        if not seen or seen[-1] != data["status"]:
            seen.append(data["status"])
        return data["status"] == "SUCCESS"

    wait_until(done, interval=0.02, what="SUCCESS")
    assert seen[0] == "PENDING" and seen[-1] == "SUCCESS"
    assert set(seen) <= {"PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", "SUCCESS"}
    data = record(sim, task)["data"]
    assert data["type"] == "GENERATE" and isinstance(data["param"], str)
    songs = data["response"]["sunoData"]
    assert len(songs) == 2 and all(s["duration"] == 1.0 for s in songs)
    for s in songs:
        assert sim.http.get(s["audioUrl"]).content == MP3_BYTES
        assert sim.http.get(s["streamAudioUrl"]).content == MP3_BYTES
        assert sim.http.get(s["imageUrl"]).content == PNG_BYTES


@pytest.mark.parametrize(
    ("prompt", "word"),
    [
        ("failme", "GENERATE_AUDIO_FAILED"),
        ("sensitiveme", "SENSITIVE_WORD_ERROR"),
        ("createfailme", "CREATE_TASK_FAILED"),
    ],
)
def test_failure_words_end_in_the_failure_statuses(sim: Sim, prompt: str, word: str) -> None:
    sim.configure(callbacks=False)
    task = create(sim, {**GOOD, "prompt": prompt})["data"]["taskId"]
    wait_until(lambda: record(sim, task)["data"]["status"] == word, what=word)
    data = record(sim, task)["data"]
    assert data["errorCode"] == 501 and data["errorMessage"]
    assert data["response"]["sunoData"] == []


def test_unknown_task_and_faults_answer_body_codes(sim: Sim) -> None:
    assert record(sim, "nope")["code"] == 404
    sim.configure(faults=[{"code": 455, "endpoints": ["status"], "count": 1}])
    assert record(sim, "nope")["code"] == 455
    assert record(sim, "nope")["code"] == 404  # the fault was for one request
    sim.configure(faults=[{"code": 500, "http_status": 503, "endpoints": ["create"]}])
    r = sim.http.post(sim.base + "/api/v1/generate", json=GOOD)
    assert r.status_code == 503 and r.json()["code"] == 500


def test_placeholder_callbacks_are_never_looked_up_and_mark_callback_exception(
    sim: Sim,
) -> None:
    task = create(sim, GOOD)["data"]["taskId"]
    wait_until(lambda: sim.stats()["callbacks_failed"] >= 3, what="3 undeliverable callbacks")
    assert sim.stats()["callback_attempts"] == 0  # .invalid: no connection was tried
    data = record(sim, task)["data"]
    assert data["status"] == "CALLBACK_EXCEPTION"
    assert all(s["audioUrl"] for s in data["response"]["sunoData"])


def test_control_surface(sim: Sim) -> None:
    assert sim.configure(text_seconds=5.0)["text_seconds"] == 5.0
    bad = sim.http.post(sim.base + "/__sim__/config", json={"no_such_knob": 1})
    assert bad.status_code == 400
    create(sim, GOOD)
    assert sim.stats()["creates_accepted"] == 1 and sim.creates() == [GOOD]
    assert sim.stats()["tasks"] == {"PENDING": 1}
    sim.reset()
    assert sim.stats()["creates_accepted"] == 0 and sim.creates() == []
