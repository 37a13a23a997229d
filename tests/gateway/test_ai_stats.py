"""A client written for AI Stats' music API, unchanged, against the gateway (issue 15).

The whole AI Stats request (routing options, debug switches, ``beta``), the parameter
policy (``warnings`` vs ``require_parameters``), the alias routes, diagnostics with every
secret scrubbed, and AI Stats' answer shape (top-level ``audio_url``, error ``reason``).
Real HTTP all the way: a served gateway in front of every provider's simulator.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest

from gateway.infra.settings import Settings
from gateway.jobs.records import to_public
from gateway.store.store import JobRecord
from providers.base import Artefact
from tests.support.audio import probe
from tests.support.upstreams import UPSTREAMS
from tests.support.waiting import eventually

from .ai_stats_stack import credentials, gateway, simulators

URL = "/v1/music/generate"
ALIAS = "/v1/music/generations"
FIRST_TRY = {"model": "musicgpt/v7", "prompt": "a calm lofi beat", "duration": 30, "format": "mp3"}

Sims = dict[str, tuple[str, dict[str, str]]]
MUSICGPT = UPSTREAMS["musicgpt"]


@pytest.fixture(scope="module")
def sims() -> Iterator[Sims]:
    with simulators() as running:
        yield running


async def _final(client: httpx.AsyncClient, job_id: str, path: str = URL) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        job = (await client.get(f"{path}/{job_id}")).json()
        return job if job["status"] in ("completed", "failed") else None

    return await eventually(done, what=f"job {job_id} final")


def _params(body: dict[str, Any]) -> list[str]:
    return [w["param"] for w in body["warnings"]]


# ------------------------------------------------------------ the parameter policy


async def test_the_first_ai_stats_request_runs_and_says_what_it_ignored(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    async with gateway(make_settings, sims) as client:
        r = await client.post(URL, json=FIRST_TRY)
        assert r.status_code == 200, r.text
        job = r.json()
        assert job["warnings"] == [
            {
                "code": "parameter_ignored",
                "param": "duration",
                "message": job["warnings"][0]["message"],
            }
        ]
        assert "musicgpt/v7" in job["warnings"][0]["message"]
        final = await _final(client, job["id"])
        assert final["status"] == "completed"
        assert _params(final) == ["duration"]  # on every later read too
        # AI Stats' shape: the first output's audio at the top level
        assert final["audio_url"] == final["output"][0]["audio_url"] is not None


async def test_require_parameters_turns_the_warning_into_the_400(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    async with gateway(make_settings, sims) as client:
        body = {**FIRST_TRY, "provider": {"require_parameters": True}}
        r = await client.post(URL, json=body)
        assert r.status_code == 400, r.text
        assert (r.json()["error"], r.json()["param"]) == ("unsupported_parameter", "duration")


async def test_the_deployment_can_require_parameters_and_a_request_can_opt_out(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    async with gateway(make_settings, sims, GATEWAY_REQUIRE_PARAMETERS="true") as client:
        r = await client.post(URL, json=FIRST_TRY)
        assert r.status_code == 400, r.text
        assert (r.json()["error"], r.json()["param"]) == ("unsupported_parameter", "duration")
        body = {**FIRST_TRY, "provider": {"require_parameters": False}}
        r = await client.post(URL, json=body)
        assert r.status_code == 200, r.text
        assert _params(r.json()) == ["duration"]


async def test_value_checks_stay_400s_naming_the_param(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    async with gateway(make_settings, sims) as client:
        r = await client.post(URL, json={**FIRST_TRY, "elevenlabs": {"seed": 1}})
        assert (r.status_code, r.json()["param"]) == (400, "elevenlabs")  # another's block
        r = await client.post(URL, json={**FIRST_TRY, "duration": 0})
        assert (r.status_code, r.json()["param"]) == (400, "duration")  # out of range
        r = await client.post(URL, json={**FIRST_TRY, "provider": {"bogus": 1}})
        assert (r.status_code, r.json()["error"]) == (400, "unknown_parameter")
        assert r.json()["param"] == "provider.bogus"
        r = await client.post(URL, json={**FIRST_TRY, "debug": {"verbose": True}})
        assert (r.status_code, r.json()["param"]) == (400, "debug.verbose")
        r = await client.post(URL, json={**FIRST_TRY, "nonsense": True})
        assert (r.status_code, r.json()["error"]) == (400, "unknown_parameter")


async def test_duration_is_honoured_where_the_model_can(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    async with gateway(make_settings, sims) as client:
        body = {"model": "elevenlabs/music_v1", "prompt": "a short sting", "duration": 3}
        r = await client.post(URL, json=body)
        assert r.status_code == 200, r.text
        job = r.json()
        assert job["status"] == "completed" and job["warnings"] == []
        assert abs(job["output"][0]["duration"] - 3.0) < 0.2


# ------------------------------------------------- AI Stats' docs examples, replayed

#: The request example of AI Stats' "Music Generation (Beta)" page, verbatim.
DOCS_EXAMPLE = {
    "model": "suno/v4.5plus",
    "prompt": "Warm jazz trio with brushed drums",
    "duration": 8,
    "provider": {"only": ["suno"]},
    "suno": {"customMode": False, "instrumental": False},
}


async def test_the_ai_stats_docs_example_is_accepted_and_routed_to_suno(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    async with gateway(make_settings, sims) as client:
        body = {**DOCS_EXAMPLE, "debug": {"return_upstream_request": True}}
        r = await client.post(URL, json=body)
        assert r.status_code == 200, r.text
        job = r.json()
        assert (job["provider"], job["model"]) == ("suno", "suno/v4.5plus")
        assert job["status"] in ("queued", "in_progress")
        assert _params(job) == ["duration"]  # Suno has no length: AI Stats bills it only
        sent = job["debug"]["upstream_request"]
        assert sent["url"] == sims["suno"][0] + "/api/v1/generate"
        assert sent["body"]["model"] == "V4_5PLUS"
        assert sent["body"]["customMode"] is False and sent["body"]["instrumental"] is False
        assert sent["body"]["prompt"] == DOCS_EXAMPLE["prompt"]
        final = await _final(client, job["id"])
        assert final["status"] == "completed" and final["nativeResponseId"]
        assert len(final["output"]) == 2 and final["audio_url"] == final["output"][0]["audio_url"]
        # the same example without its routing block, through the alias route
        plain = {k: v for k, v in DOCS_EXAMPLE.items() if k != "provider"}
        r = await client.post(ALIAS, json=plain)
        assert r.status_code == 200 and r.json()["provider"] == "suno"


async def test_ai_stats_suno_custom_mode_sends_the_prompt_as_lyrics(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    async with gateway(make_settings, sims) as client:
        body = {
            "model": "suno/v5",
            "prompt": "[Verse] neon rain on the window",
            "suno": {
                "customMode": True,
                "style": "jazz, piano",
                "title": "Midnight Blue",
                "callBackUrl": "https://client.example/hook",
            },
            "echo_upstream_request": True,
        }
        r = await client.post(URL, json=body)
        assert r.status_code == 200, r.text
        sent = r.json()["debug"]["upstream_request"]["body"]
        assert sent["customMode"] is True and sent["model"] == "V5"
        assert (sent["prompt"], sent["style"], sent["title"]) == (
            "[Verse] neon rain on the window",
            "jazz, piano",
            "Midnight Blue",
        )
        assert "client.example" not in sent["callBackUrl"]  # ours, never the client's
        assert _params(r.json()) == ["suno.callBackUrl"]
        # AI Stats' own validation rules, with its reason codes
        bad = {"model": "suno/v5", "prompt": "x", "suno": {"customMode": True}}
        r = await client.post(URL, json=bad)
        assert r.status_code == 400
        assert r.json()["reason"] == "style_and_title_required_when_custom_mode_enabled"
        bad = {"model": "suno/v5", "suno": {"customMode": False}}
        r = await client.post(URL, json=bad)
        assert r.json()["reason"] == "prompt_required_when_custom_mode_disabled"


# ------------------------------------------------------------------ routing options


@pytest.mark.parametrize(
    ("routing", "ok"),
    [
        ({"only": ["musicgpt"]}, True),
        ({"only": ["MusicGPT", "suno"]}, True),  # case and extra names do not matter
        ({"only": ["suno"]}, False),
        ({"ignore": ["musicgpt"]}, False),
        ({"ignore": ["tempolor"]}, True),
        ({"order": ["tempolor", "musicgpt"]}, True),
        ({"allow_fallbacks": False}, True),
        ({"allowFallbacks": True, "order": ["musicgpt"]}, True),
    ],
)
async def test_only_ignore_order_pick_among_the_models_providers(
    make_settings: Callable[..., Settings], sims: Sims, routing: dict[str, Any], ok: bool
) -> None:
    async with gateway(make_settings, sims) as client:
        body = {"model": "musicgpt/v7", "prompt": "routed", "provider": routing}
        r = await client.post(URL, json=body)
        if ok:
            assert r.status_code == 200, r.text
            assert r.json()["provider"] == "musicgpt" and r.json()["warnings"] == []
        else:
            assert r.status_code == 400, r.text
            error = r.json()
            assert (error["param"], error["reason"]) == ("provider", "no_allowed_provider")


async def test_routing_options_that_cannot_apply_are_reported(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    async with gateway(make_settings, sims) as client:
        body = {
            "model": "musicgpt/v7",
            "prompt": "routed",
            "provider": {
                "sort": "price",
                "data_collection": "deny",
                "max_price": {"request": 0.5},
                "only": ["musicgpt"],
            },
            "debug": {"trace": True},
            "beta": {"stems": True},
        }
        r = await client.post(URL, json=body)
        assert r.status_code == 200, r.text
        assert sorted(_params(r.json())) == [
            "beta.stems",
            "debug.trace",
            "provider.data_collection",
            "provider.max_price",
            "provider.sort",
        ]
        # routing {...} is AI Stats' other spelling; both at once is ambiguous
        r = await client.post(URL, json={**body, "routing": {"only": ["musicgpt"]}})
        assert (r.status_code, r.json()["param"]) == (400, "routing")


# ---------------------------------------------------------------------- diagnostics


async def test_echo_upstream_request_shows_the_call_with_every_secret_scrubbed(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    async with gateway(make_settings, sims) as client:
        body = {
            "model": "musicgpt/v7",
            "prompt": "show me the call",
            "echo_upstream_request": True,
            "debug": {"return_upstream_response": True},
        }
        r = await client.post(URL, json=body)
        assert r.status_code == 200, r.text
        job = r.json()
        sent = job["debug"]["upstream_request"]
        assert sent["method"] == "POST"
        assert sent["url"].startswith(sims["musicgpt"][0])
        assert sent["body"]["prompt"] == "show me the call"
        # our callback URL was sent; its per-job token is not shown
        assert f"/v1/callbacks/musicgpt/{job['id']}/[redacted]" in json.dumps(sent)
        got = job["debug"]["upstream_response"]
        assert got["status"] == 200 and isinstance(got["body"], dict)
        for secret in credentials(sims):
            assert secret not in r.text
        # on the create's answer only
        again = (await client.get(f"{URL}/{job['id']}")).json()
        assert again["debug"] is None


async def test_a_synchronous_generation_shows_its_call_too_never_the_audio(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    async with gateway(make_settings, sims) as client:
        body = {
            "model": "elevenlabs/music_v1",
            "prompt": "a sync call",
            "debug": {"return_upstream_request": True, "return_upstream_response": True},
        }
        r = await client.post(URL, json=body)
        assert r.status_code == 200, r.text
        job = r.json()
        assert job["status"] == "completed"
        sent, got = job["debug"]["upstream_request"], job["debug"]["upstream_response"]
        assert sent["url"].startswith(sims["elevenlabs"][0] + "/v1/music")
        assert sent["body"]["prompt"] == "a sync call"
        assert got["status"] == 200 and got["content_type"].startswith("audio/")
        assert "not echoed" in got["body"]
        for secret in credentials(sims):
            assert secret not in r.text
        assert (await client.get(f"{URL}/{job['id']}")).json()["debug"] is None


async def test_without_the_switches_no_debug(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    async with gateway(make_settings, sims) as client:
        r = await client.post(URL, json={"model": "musicgpt/v7", "prompt": "quiet"})
        assert r.status_code == 200 and r.json()["debug"] is None


# ------------------------------------------------------------ routes and the answer


async def test_the_alias_routes_behave_as_the_generate_routes(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    async with gateway(make_settings, sims) as client:
        r = await client.post(ALIAS, json={"model": "musicgpt/v7", "prompt": "via the alias"})
        assert r.status_code == 200, r.text
        job_id = r.json()["id"]
        final = await _final(client, job_id, ALIAS)
        assert final["status"] == "completed"
        assert (await client.get(f"{URL}/{job_id}")).json() == final  # one job, two paths
        async with client.stream("GET", f"{ALIAS}/{job_id}/events") as events:
            text = "".join([chunk async for chunk in events.aiter_text()])
        assert f"id: {job_id}.completed" in text
        missing = await client.get(f"{ALIAS}/mus_nope")
        assert missing.status_code == 404
        assert missing.json()["reason"] == "music_not_found_or_not_owned"
        spec = (await client.get("/docs/openapi.json")).json()
        ids = {
            op["operationId"]
            for path in spec["paths"].values()
            for op in path.values()
            if isinstance(op, dict) and "operationId" in op
        }
        assert {"generateMusicAlias", "getMusicGenerationAlias"} <= ids
        assert "/v1/music/generations" in spec["paths"]


@pytest.mark.parametrize(
    ("model", "fmt", "expected"),
    [
        ("elevenlabs/music_v1", "ogg", ("ogg", "opus", "audio/ogg")),
        ("elevenlabs/music_v1", "aac", ("aac", "aac", "audio/aac")),
        ("musicgpt/v7", "ogg", ("ogg", "opus", "audio/ogg")),
        ("musicgpt/v7", "aac", ("aac", "aac", "audio/aac")),
        ("suno/v5", "wav", ("wav", "pcm_s16le", "audio/wav")),
        ("minimax/music-2.6", "ogg", ("ogg", "opus", "audio/ogg")),
    ],
)
async def test_ogg_and_aac_are_served_as_real_files(
    make_settings: Callable[..., Settings],
    sims: Sims,
    model: str,
    fmt: str,
    expected: tuple[str, str, str],
) -> None:
    async with gateway(make_settings, sims) as client:
        r = await client.post(URL, json={"model": model, "prompt": "convert me", "format": fmt})
        assert r.status_code == 200, r.text
        assert r.json()["warnings"] == []
        job_id = r.json()["id"]
        seen = [r.json()]

        async def completed() -> dict[str, Any] | None:
            seen.append((await client.get(f"{URL}/{job_id}")).json())
            return seen[-1] if seen[-1]["status"] == "completed" else None

        if seen[0]["status"] != "completed":  # (a synchronous job answers it at once)
            await eventually(completed, interval=0.01, what=f"{model} completed")
        # completed only once converted: the first answer that says so has the file
        job = next(j for j in seen if j["status"] == "completed")
        urls = [o["audio_url"].split("?")[0] for o in job["output"]]
        assert urls and all(u.endswith(f".{fmt}") for u in urls), job
        for early in (j for j in seen if j["status"] != "completed"):  # no other file shown
            assert early.get("audio_url") is None, early
            assert all(o["audio_url"] is None for o in early["output"]), early
        got = await client.get(job["audio_url"])
        assert got.status_code == 200
        container, codec, kind = expected
        assert got.headers["content-type"].startswith(kind)
        found = probe(got.content)
        assert found[:2] == (container, codec) and found[2] > 0.1


@pytest.mark.parametrize("conversion", ["wanted", "due"])
def test_no_song_of_an_unconverted_job_is_shown_before_it_completes(conversion: str) -> None:
    """MusicGPT finishes its two songs one after the other: while a job's format is still
    to be converted, the first finished song (an mp3 where ogg was asked) has no
    ``audio_url`` in the answer; its stream URL, a preview, stays."""
    first = Artefact(index=0, audio_url="https://up.example/0.mp3", stream_audio_url="s0")
    second = Artefact(index=1)
    record = JobRecord(
        id="mus_x",
        owner="key_x",
        provider="musicgpt",
        model="musicgpt/v7",
        status="in_progress",
        created_at=1.0,
        updated_at=1.0,
        format="ogg",
        outputs=[first, second],
        conversion=conversion,
    )
    shown = to_public(record)
    assert [o.audio_url for o in shown.output] == [None, None]
    assert shown.output[0].stream_audio_url == "s0"
    plain = to_public(msgspec.structs.replace(record, format="mp3", conversion=None))
    assert plain.output[0].audio_url == "https://up.example/0.mp3"


async def test_ai_stats_elevenlabs_block_spellings_are_understood(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    """AI Stats' ``elevenlabs {prompt, music_length_ms, model_id, force_instrumental,
    with_timestamps}``: the block's values win, as AI Stats sends them; a ``model_id``
    other than the chosen model's is a 400; ``with_timestamps`` cannot apply (warning)."""
    async with gateway(make_settings, sims) as client:
        body = {
            "model": "eleven-labs/music",
            "elevenlabs": {
                "prompt": "an upbeat jingle",
                "music_length_ms": 4000,
                "model_id": "music_v2",
                "force_instrumental": True,
                "with_timestamps": False,
            },
            "debug": {"return_upstream_request": True},
        }
        r = await client.post(URL, json=body)
        assert r.status_code == 200, r.text
        job = r.json()
        assert job["status"] == "completed"
        assert _params(job) == ["elevenlabs.with_timestamps"]
        sent = job["debug"]["upstream_request"]["body"]
        assert (sent["prompt"], sent["music_length_ms"], sent["model_id"]) == (
            "an upbeat jingle",
            4000,
            "music_v2",
        )
        assert sent["force_instrumental"] is True and "with_timestamps" not in sent
        assert abs(job["output"][0]["duration"] - 4.0) < 0.2
        wrong = {"model": "elevenlabs/music_v1", "elevenlabs": {**body["elevenlabs"]}}
        r = await client.post(URL, json=wrong)
        assert (r.status_code, r.json()["param"]) == (400, "elevenlabs.model_id")
        long = {
            "model": "elevenlabs/music_v1",
            "prompt": "x",
            "elevenlabs": {"music_length_ms": 900},
        }
        r = await client.post(URL, json=long)
        assert (r.status_code, r.json()["param"]) == (400, "elevenlabs.music_length_ms")


async def test_a_rejected_create_shows_the_exchange_in_its_error(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    url = sims["musicgpt"][0]
    with httpx.Client() as http:
        MUSICGPT.configure(http, url, MUSICGPT.create_error(400, count=1))
    async with gateway(make_settings, sims) as client:
        body = {
            "model": "musicgpt/v7",
            "prompt": "rejected upstream",
            "debug": {"return_upstream_request": True, "return_upstream_response": True},
        }
        r = await client.post(URL, json=body)
        assert r.status_code == 400, r.text
        error = r.json()
        assert error["error"] == "upstream_rejected"
        assert error["debug"]["upstream_request"]["body"]["prompt"] == "rejected upstream"
        assert error["debug"]["upstream_response"]["status"] == 400
        for secret in credentials(sims):
            assert secret not in r.text
        r = await client.post(URL, json={"model": "musicgpt/v7", "prompt": "fine again"})
        assert r.status_code == 200 and "debug" not in r.json()["warnings"]


async def test_an_ai_stats_minimax_request_runs_as_sent(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    """AI Stats' ``minimax {...}`` block (its strict fields) through the gateway."""
    async with gateway(make_settings, sims) as client:
        body = {
            "model": "minimax/music-2.6",
            "prompt": "indie folk, warm and intimate",
            "format": "mp3",
            "minimax": {
                "lyrics": "[Verse] under the lamp light",
                "lyrics_optimizer": False,
                "output_format": "url",
                "audio_setting": {"sample_rate": 44100, "bitrate": 256000, "format": "mp3"},
            },
            "echo_upstream_request": True,
        }
        r = await client.post(URL, json=body)
        assert r.status_code == 200, r.text
        job = r.json()
        assert job["status"] == "completed" and job["warnings"] == []
        sent = job["debug"]["upstream_request"]
        assert sent["url"] == sims["minimax"][0] + "/v1/music_generation"
        assert (sent["body"]["model"], sent["body"]["lyrics"]) == (
            "music-2.6",
            "[Verse] under the lamp light",
        )
        assert job["audio_url"] and (await client.get(job["audio_url"])).status_code == 200
        for secret in credentials(sims):
            assert secret not in r.text
        r = await client.post(URL, json={**body, "minimax": {"stream": True}})
        assert (r.status_code, r.json()["param"]) == (400, "minimax.stream")
        r = await client.post(URL, json={**body, "minimax": {"voice": "x"}})
        assert (r.status_code, r.json()["error"]) == (400, "unknown_parameter")


async def test_a_conversion_that_fails_is_said_in_the_warnings(
    make_settings: Callable[..., Settings], sims: Sims
) -> None:
    url = sims["musicgpt"][0]
    broken = {"faults": [{"status": 500, "endpoints": ["download"]}]}
    with httpx.Client() as http:
        MUSICGPT.configure(http, url, broken)
    try:
        async with gateway(make_settings, sims) as client:
            body = {"model": "musicgpt/v7", "prompt": "no copy for me", "format": "ogg"}
            r = await client.post(URL, json=body)
            assert r.status_code == 200 and r.json()["warnings"] == []

            async def completed() -> dict[str, Any] | None:
                job = (await client.get(f"{URL}/{r.json()['id']}")).json()
                return job if job["status"] == "completed" else None

            # the first read that says completed says why the audio is mp3
            job = await eventually(completed, interval=0.01, what="the job completed")
            assert [(w["code"], w["param"]) for w in job["warnings"]] == [
                ("format_not_converted", "format")
            ]
            assert job["audio_url"] and ".ogg" not in job["audio_url"]
    finally:
        with httpx.Client() as http:
            MUSICGPT.configure(http, url, {"faults": []})
