"""End to end: the gateway over real HTTP, routing ``suno/*`` to the simulator, for every
row of the status and error tables.

The gateway is built the way it runs (``create_app(Settings.from_env(env))``, providers
from the registry) with ``SUNO_BASE_URL`` pointing at the simulator; tests drive
``POST /v1/music/generate`` and ``GET /v1/music/generate/{id}`` as a client would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.infra.settings import Settings
from providers.simulator_media import MP3_BYTES
from tests.providers.suno.helpers import KEY, Sim
from tests.support.served import served_gateways
from tests.support.waiting import TIMEOUT, wait_until

CLIENT = "sk-suno-e2e-0001"
Gateway = Callable[..., httpx.Client]


@pytest.fixture
def gateway(make_settings: Callable[..., Settings], sim: Sim) -> Iterator[Gateway]:
    """Start a gateway on the simulator: ``gateway(callbacks=False, **extra_env)``."""
    env = {"GATEWAY_LOG_FORMAT": "json", "SUNO_API_KEY": KEY, "SUNO_BASE_URL": sim.base}
    with served_gateways(make_settings, CLIENT, env) as start:
        yield start


def generate(gw: httpx.Client, **body: Any) -> dict[str, Any]:
    r = gw.post("/v1/music/generate", json={"model": "suno/v4.5", **body})
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
        time.sleep(0.02)  # the poll's pace, not a synchronisation


ORDER = ["queued", "in_progress", "completed", "failed"]


def forward(seen: list[dict[str, Any]]) -> None:
    ranks = [min(ORDER.index(j["status"]), 2) for j in seen]
    assert ranks == sorted(ranks), [j["status"] for j in seen]


# -------------------------------------------------------------------------- statuses


def test_without_public_url_polling_completes_despite_callback_exception(
    gateway: Gateway, sim: Sim
) -> None:
    sim.configure(complete_seconds=1.0)  # long enough for polls to see every stage
    gw = gateway()
    job = generate(gw, prompt="a warm summer anthem")
    assert job["provider"] == "suno" and job["status"] == "queued" and job["nativeResponseId"]
    assert sim.creates()[0]["callBackUrl"].startswith("https://callback.invalid/")
    done, seen = wait(gw, job["id"])
    forward(seen)
    assert done["status"] == "completed" and done["progress"] == 100
    assert "in_progress" in [j["status"] for j in seen]
    assert sim.stats()["tasks"] == {"CALLBACK_EXCEPTION": 1}  # what sunoapi.org reports
    assert len(done["output"]) == 2 and done["usage"]["output_audio_count"] == 2
    for out in done["output"]:
        assert sim.http.get(out["audio_url"]).content == MP3_BYTES
        assert out["stream_audio_url"] and out["image_url"] and out["title"] and out["lyrics"]


def test_with_public_url_the_callbacks_complete_the_job_without_polling(
    gateway: Gateway, sim: Sim
) -> None:
    gw = gateway(callbacks=True, GATEWAY_BACKGROUND_REFRESH="false")
    job = generate(gw, style="jazz, piano", title="Blue", lyrics="[Verse] la la")
    sent = sim.creates()[0]
    assert sent["callBackUrl"].startswith(f"{gw.base_url}".rstrip("/") + "/v1/callbacks/suno/")
    assert (sent["customMode"], sent["prompt"], sent["title"]) == (True, "[Verse] la la", "Blue")
    wait_until(lambda: sim.stats()["callbacks_sent"] >= 3, what="3 callbacks answered")
    done = gw.get(f"/v1/music/generate/{job['id']}").json()
    assert done["status"] == "completed" and all(o["audio_url"] for o in done["output"])
    assert sim.stats()["status_calls"] == 0 and sim.stats()["callbacks_failed"] == 0


def test_first_success_shows_the_stream_url_while_in_progress(gateway: Gateway, sim: Sim) -> None:
    sim.configure(first_seconds=0.1, complete_seconds=30.0, callbacks=False)
    gw = gateway()
    job = generate(gw, prompt="p")
    got, _ = wait(gw, job["id"], lambda j: any(o["stream_audio_url"] for o in j["output"]))
    assert got["status"] == "in_progress" and got["usage"] is None
    first, second = got["output"]
    assert first["stream_audio_url"] and first["audio_url"] is None
    assert second["stream_audio_url"] is None
    assert sim.http.get(first["stream_audio_url"]).content == MP3_BYTES


@pytest.mark.parametrize(
    ("prompt", "code", "native"),
    [
        ("failme", "generation_failed", "GENERATE_AUDIO_FAILED"),
        ("sensitiveme", "content_flagged", "SENSITIVE_WORD_ERROR"),
        ("createfailme", "generation_failed", "CREATE_TASK_FAILED"),
    ],
)
def test_failure_statuses_fail_the_job_with_the_native_reason(
    gateway: Gateway, sim: Sim, prompt: str, code: str, native: str
) -> None:
    sim.configure(callbacks=False)
    gw = gateway()
    done, seen = wait(gw, generate(gw, prompt=prompt)["id"])
    forward(seen)
    assert done["status"] == "failed" and done["usage"] is None
    assert done["error"]["code"] == code and done["error"]["native_status"] == native
    assert done["error"]["message"]  # the native reason (errorMessage)


def test_error_callback_fails_the_job_at_once(gateway: Gateway, sim: Sim) -> None:
    gw = gateway(callbacks=True, GATEWAY_BACKGROUND_REFRESH="false")
    job = generate(gw, prompt="failme")
    wait_until(lambda: sim.stats()["callbacks_sent"] >= 2, what="text and error called back")
    done = gw.get(f"/v1/music/generate/{job['id']}").json()
    assert done["status"] == "failed" and done["error"]["native_status"] == "error"
    assert sim.stats()["status_calls"] == 0


def test_callback_exception_with_audio_completes(gateway: Gateway, sim: Sim) -> None:
    sim.configure(callbacks=False, end_word="CALLBACK_EXCEPTION")
    gw = gateway()
    done, _ = wait(gw, generate(gw, prompt="p")["id"])
    assert done["status"] == "completed" and len(done["output"]) == 2


def test_unknown_status_is_never_completed(gateway: Gateway, sim: Sim) -> None:
    sim.configure(callbacks=False, end_word="MYSTERY_STATE")
    gw = gateway()
    job = generate(gw, prompt="p")
    wait_until(lambda: sim.stats()["tasks"] == {"MYSTERY_STATE": 1}, what="the odd word")
    before = sim.stats()["status_calls"]
    _, seen = wait(gw, job["id"], lambda j: sim.stats()["status_calls"] >= before + 3)
    assert all(j["status"] == "in_progress" for j in seen[-2:]), seen[-1]
    assert all(all(o["audio_url"] for o in j["output"]) for j in seen[-2:])  # audio or not


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        (400, 400, "upstream_rejected"),
        (401, 502, "upstream_auth_error"),
        (405, 429, "upstream_rate_limited"),
        (413, 400, "upstream_rejected"),
        (429, 402, "upstream_insufficient_credits"),
        (430, 429, "upstream_rate_limited"),
        (455, 503, "upstream_unavailable"),
        (500, 502, "upstream_error"),
        (503, 502, "upstream_error"),
    ],
)
def test_create_error_codes_in_an_http_200_map_to_client_errors(
    gateway: Gateway, sim: Sim, capsys: pytest.CaptureFixture[str], code: int, status: int,
    error: str,
) -> None:  # fmt: skip
    sim.configure(
        faults=[{"code": code, "message": f"native {code}", "endpoints": ["create"]}],
        echo_auth_in_errors=True,
    )
    r = gateway().post("/v1/music/generate", json={"model": "suno/v5", "prompt": "p"})
    assert r.status_code == status, r.text
    assert r.json()["error"] == error and f"native {code}" in r.json()["description"]
    if status == 429:
        assert r.headers["Retry-After"] == "10"
    assert KEY not in r.text and "[redacted]" in r.text
    out = capsys.readouterr()
    assert KEY not in out.out + out.err


def test_a_create_answer_lost_is_never_sent_again(gateway: Gateway, sim: Sim) -> None:
    sim.configure(faults=[{"malformed": True, "endpoints": ["create"], "after_create": True}])
    r = gateway().post("/v1/music/generate", json={"model": "suno/v4", "prompt": "p"})
    assert r.status_code == 504 and r.json()["error"] == "upstream_outcome_unknown"
    assert sim.stats()["create_calls"] == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x" * 501}, "prompt"),
        ({"lyrics": "la", "title": "T"}, "style"),
        ({"style": "s", "lyrics": "la"}, "title"),
        ({"style": "s", "title": "T", "prompt": None}, "lyrics"),
        ({"model": "suno/v4", "style": "s" * 201, "title": "T", "instrumental": True}, "style"),
        ({"model": "suno/v4.5-all", "style": "s", "title": "t" * 81, "lyrics": "la",
          "prompt": None}, "title"),
        ({"suno": {"vocalGender": "m"}}, "suno.vocalGender"),
        ({"suno": {"styleWeight": 2}}, "suno.styleWeight"),
        ({"suno": {"nope": 1}}, "suno.nope"),
    ],
)  # fmt: skip
def test_bad_requests_are_400s_naming_the_param_before_any_call(
    gateway: Gateway, sim: Sim, body: dict[str, Any], param: str
) -> None:
    payload = {"model": "suno/v4.5", "prompt": "p", **body}
    r = gateway().post("/v1/music/generate", json={k: v for k, v in payload.items() if v})
    assert r.status_code == 400, r.text
    assert r.json()["param"] == param, r.json()
    assert sim.stats()["create_calls"] == 0


# ------------------------------------------------------------------ ready and models


def test_ready_says_what_happens_without_a_public_url(gateway: Gateway, sim: Sim) -> None:
    without = gateway().get("/ready").json()["providers"]["suno"]
    assert without["configured"] is True and without["callbacks"] is False
    assert "callback.invalid" in without["note"] and "polling" in without["note"]
    assert gateway().get("/ready").json()["providers"]["elevenlabs"]["callbacks"] is None
    with_url = gateway(callbacks=True).get("/ready").json()["providers"]["suno"]
    assert with_url["callbacks"] is True and with_url["note"] is None


def test_models_lists_every_suno_model(gateway: Gateway, sim: Sim) -> None:
    data = {m["id"]: m for m in gateway().get("/v1/models").json()["data"]}
    ids = ["suno/v4", "suno/v4.5", "suno/v4.5+", "suno/v4.5-all", "suno/v5", "suno/v4.5plus"]
    assert [i for i in data if i.startswith("suno/")] == ids
    for i in ids:
        assert data[i]["available"] is True and data[i]["native_block"] == "suno"
        assert "duration" not in data[i]["supported_parameters"]
        assert "personaId" in data[i]["native_parameters"]
