"""ElevenLabs' pure mapping and checks: the catalog, the native body, the formats, the WAV
header, every ``check`` rule (400 naming the param) and every error body (the right
``ProviderError`` class, a message carrying what the provider said, no key)."""

from __future__ import annotations

import io
import wave
from typing import Any

import msgspec
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from providers.base import (
    CallsBack,
    Pollable,
    Provider,
    ProviderError,
    SubmitRequest,
    UpstreamAuthError,
    UpstreamError,
    UpstreamInsufficientCredits,
    UpstreamRateLimited,
    UpstreamRejected,
)
from providers.elevenlabs import DEFAULT_CONCURRENCY, create, mapping
from providers.elevenlabs.catalog import (
    CATALOG,
    CompositionPlan,
    ElevenLabsOptions,
    ElevenLabsState,
    PlanChunk,
    TimeRange,
)
from providers.elevenlabs.client import ClientSettings
from providers.kit import Answer, Timeouts

from .conftest import MODEL, V1_PLAN, V2_PLAN, chunk, planned, request

SECRET = "xi-mapping-secret-91c0d2"


# ------------------------------------------------------------------------- catalog


def test_catalog_models_aliases_and_block() -> None:
    ids = [m.id for m in CATALOG.models]
    assert ids == [
        "elevenlabs/music_v1",
        "elevenlabs/music_v2",
        "elevenlabs/music",
        "eleven-labs/music",
    ]
    for alias in ("elevenlabs/music", "eleven-labs/music"):
        assert MODEL[alias].native_model == "music_v2" and MODEL[alias].provider == "elevenlabs"
    for m in CATALOG.models:
        assert m.supports == {"prompt", "instrumental", "duration", "format"}
    assert CATALOG.native_block == "elevenlabs" and CATALOG.options_type is ElevenLabsOptions
    assert DEFAULT_CONCURRENCY == 2


def test_the_provider_is_synchronous_and_configured_by_its_key() -> None:
    p = create({"ELEVENLABS_API_KEY": "k"})
    assert isinstance(p, Provider)
    assert not isinstance(p, Pollable) and not isinstance(p, CallsBack)
    assert p.name == "elevenlabs" and p.configured
    assert [c.env for c in p.credentials] == ["ELEVENLABS_API_KEY"]
    assert p.credentials[0].secret and p.credentials[0].required
    assert p.state_type is ElevenLabsState and ElevenLabsState.__struct_fields__ == ()
    assert not create({}).configured


def test_settings_from_the_environment() -> None:
    s = ClientSettings.from_env({"ELEVENLABS_API_KEY": " k "})
    assert s.base_url == "https://api.elevenlabs.io" and s.api_key == "k"
    assert s.timeouts == Timeouts(connect=5.0, read=330.0, write=10.0, pool=5.0)
    s = ClientSettings.from_env(
        {"ELEVENLABS_BASE_URL": "http://sim:1/", "ELEVENLABS_READ_TIMEOUT": "12"}
    )
    assert s.base_url == "http://sim:1" and s.read_timeout == 12.0 and s.api_key is None
    with pytest.raises(ValueError, match="ELEVENLABS_READ_TIMEOUT"):
        ClientSettings.from_env({"ELEVENLABS_READ_TIMEOUT": "soon"})


def test_the_native_block_is_strict() -> None:
    decode = msgspec.json.Decoder(ElevenLabsOptions).decode
    with pytest.raises(msgspec.ValidationError, match="unknown field `sed`"):
        decode(b'{"sed": 1}')
    with pytest.raises(msgspec.ValidationError, match="chunks"):
        decode(b'{"composition_plan": {"chunks": [{"duration_ms": 10}]}}')
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        decode(b'{"composition_plan": {"chunks": [{"txt": "x"}]}}')
    with pytest.raises(msgspec.ValidationError, match="section_name"):
        decode(b'{"composition_plan": {"sections": [{"section_name": ""}]}}')
    with pytest.raises(msgspec.ValidationError, match="output_format"):
        decode(b'{"output_format": "ulaw_8000"}')
    plan = decode(
        b'{"composition_plan": {"chunks": [{"song_id": "s1", "range": {"start_ms": 0,'
        b' "end_ms": 4000}}]}, "seed": 7}'
    )
    assert plan.composition_plan and plan.composition_plan.chunks
    assert plan.composition_plan.chunks[0].range == TimeRange(start_ms=0, end_ms=4000)


# -------------------------------------------------------------------------- request


def body_of(req: SubmitRequest) -> dict[str, Any]:
    return msgspec.json.decode(mapping.encode(mapping.to_native(req).body))


def test_a_prompt_request_as_the_native_body() -> None:
    req = request("elevenlabs/music", duration=42, instrumental=True)
    call = mapping.to_native(req)
    assert call.params == {"output_format": "mp3_44100_128"} and call.pcm_rate is None
    assert body_of(req) == {
        "prompt": req.prompt,
        "music_length_ms": 42000,
        "model_id": "music_v2",
        "force_instrumental": True,
    }
    assert body_of(request("elevenlabs/music_v1")) == {
        "prompt": request().prompt,
        "model_id": "music_v1",
    }


def test_formats_and_the_output_format_override() -> None:
    assert mapping.to_native(request(format="wav")).params == {"output_format": "pcm_44100"}
    assert mapping.to_native(request(format="wav")).pcm_rate == 44100
    opts = ElevenLabsOptions(output_format="mp3_48000_192")
    assert mapping.output_format(request(options=opts)) == "mp3_48000_192"
    assert mapping.pcm_rate("pcm_16000") == 16000 and mapping.pcm_rate("mp3_44100_128") is None
    assert mapping.content_type("pcm_44100", "audio/pcm") == "audio/wav"
    assert mapping.content_type("mp3_44100_128", "audio/mpeg; x=1") == "audio/mpeg"
    assert mapping.content_type("mp3_44100_128", "application/octet-stream") == "audio/mpeg"
    assert not mapping.is_audio_answer("application/json; charset=utf-8")
    assert not mapping.is_audio_answer("text/html") and mapping.is_audio_answer(None)


def test_plans_and_native_fields_pass_through() -> None:
    req = planned(
        "elevenlabs/music_v2",
        V2_PLAN,
        seed=11,
        finetune_id="ft-1",
        finetune_strength=0.5,
        store_for_inpainting=True,
        sign_with_c2pa=True,
    )
    body = body_of(req)
    assert body == {
        "composition_plan": {"chunks": [msgspec.to_builtins(c) for c in V2_PLAN.chunks or ()]},
        "model_id": "music_v2",
        "seed": 11,
        "finetune_id": "ft-1",
        "finetune_strength": 0.5,
        "store_for_inpainting": True,
        "sign_with_c2pa": True,
    }
    v1 = body_of(planned("elevenlabs/music_v1", V1_PLAN, respect_sections_durations=True))
    assert v1["composition_plan"]["positive_global_styles"] == []  # required lists filled
    assert v1["composition_plan"]["negative_global_styles"] == []
    assert v1["composition_plan"]["sections"][0]["lines"] == ["la la"]
    assert v1["respect_sections_durations"] is True and "prompt" not in v1


def test_durations() -> None:
    assert mapping.duration_of(request(duration=30)) == 30.0
    assert mapping.duration_of(request(duration=30), (441000, 44100)) == 5.0
    assert mapping.duration_of(request()) is None
    assert mapping.duration_of(planned("elevenlabs/music_v2", V2_PLAN)) == 15.0
    assert mapping.duration_of(planned("elevenlabs/music_v1", V1_PLAN)) is None
    v1 = planned("elevenlabs/music_v1", V1_PLAN, respect_sections_durations=True)
    assert mapping.duration_of(v1) == 15.0
    ref = CompositionPlan(
        chunks=[chunk(5000), PlanChunk(song_id="s", range=TimeRange(start_ms=1000, end_ms=4000))]
    )
    assert mapping.plan_ms(ref) == 8000


def test_the_wav_header_describes_the_pcm() -> None:
    pcm = bytes(range(256)) * 40
    data = mapping.wav_header(22050, len(pcm)) + pcm
    assert len(data) - len(pcm) == mapping.WAV_HEADER_BYTES
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
        assert w.getnframes() == len(pcm) // 2 and w.readframes(w.getnframes()) == pcm
    with pytest.raises(ValueError):
        mapping.wav_header(44100, 1 << 32)


# --------------------------------------------------------------------------- errors


def _api() -> Any:
    from providers.kit import Upstream, UpstreamHTTP

    return Upstream(
        provider="elevenlabs",
        label="ElevenLabs",
        http=UpstreamHTTP("http://unused"),
        secret=SECRET,
        error_text=mapping.error_message,
        error_class=mapping.error_class,
        rate_limit_retry=5.0,
    )


def status_error(status: int, body: Any, retry: str | None = None) -> ProviderError:
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    headers = CIMultiDict({"Retry-After": retry} if retry else {})
    return _api().status_error("compose", Answer(status, "Reason", CIMultiDictProxy(headers), raw))


def detail(status: str, message: str | None = None, **data: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"status": status}
    if message:
        d["message"] = message
    if data:
        d["data"] = data
    return {"detail": d}


@pytest.mark.parametrize(
    ("status", "body", "cls", "words"),
    [
        (
            422,
            detail("bad_prompt", prompt_suggestion="An upbeat song in a classic style"),
            UpstreamRejected,
            ["bad_prompt", "suggested prompt: An upbeat song in a classic style"],
        ),
        (
            400,
            detail("bad_prompt", "Artist names are not allowed", prompt_suggestion="A ballad"),
            UpstreamRejected,
            ["Artist names are not allowed", "suggested prompt: A ballad"],
        ),
        (
            422,
            detail(
                "bad_composition_plan",
                composition_plan_suggestion={
                    "positive_global_styles": ["pop", "upbeat"],
                    "sections": [{"section_name": "Intro", "duration_ms": 10000}],
                },
            ),
            UpstreamRejected,
            ["bad_composition_plan", "suggested plan:", "pop, upbeat", "Intro 10s"],
        ),
        (
            422,
            detail(
                "bad_composition_plan",
                composition_plan_suggestion={
                    "chunks": [{"text": "[Verse 1]\nla", "duration_ms": 5000}]
                },
            ),
            UpstreamRejected,
            ["chunks [Verse 1] 5s"],
        ),
        (
            422,
            {
                "detail": [
                    {
                        "type": "less_than_equal",
                        "loc": ["body", "music_length_ms"],
                        "msg": "Input should be less than or equal to 600000",
                    },
                    {"loc": ["body", "composition_plan", "sections", 0, "lines"], "msg": "bad"},
                ]
            },
            UpstreamRejected,
            [
                "music_length_ms: Input should be less than or equal to 600000",
                "composition_plan.sections[0].lines: bad",
            ],
        ),
        (401, detail("invalid_api_key", "Invalid API key"), UpstreamAuthError, ["invalid_api_key"]),
        (400, detail("invalid_api_key", "Invalid API key"), UpstreamAuthError, ["Invalid API key"]),
        (401, detail("needs_authorization", "No key"), UpstreamAuthError, ["needs_authorization"]),
        (
            401,
            detail("quota_exceeded", "You have 0 credits remaining"),
            UpstreamInsufficientCredits,
            ["quota_exceeded", "0 credits"],
        ),
        (400, detail("quota_exceeded"), UpstreamInsufficientCredits, ["quota_exceeded"]),
        (
            429,
            detail("too_many_concurrent_requests", "Too many"),
            UpstreamRateLimited,
            ["too_many_concurrent_requests"],
        ),
        (429, detail("system_busy", "Busy"), UpstreamRateLimited, ["system_busy: Busy"]),
        (500, {"detail": "Internal Server Error"}, UpstreamError, ["Internal Server Error"]),
        (503, b"<html>down</html>", UpstreamError, ["503: Reason"]),
        (403, detail("only_for_creator+", "Upgrade"), UpstreamAuthError, ["only_for_creator+"]),
    ],
)
def test_error_bodies(status: int, body: Any, cls: type, words: list[str]) -> None:
    err = status_error(status, body)
    assert type(err) is cls and err.native_status == status and err.provider == "elevenlabs"
    assert err.message.startswith(f"ElevenLabs compose answered {status}: ")
    for word in words:
        assert word in err.message
    assert len(err.message) < 600


def test_rate_limits_carry_retry_after() -> None:
    busy = detail("system_busy", "Busy")
    assert status_error(429, busy, retry="12").retry_after == 12.0
    assert status_error(429, busy).retry_after == 5.0
    assert status_error(429, b"").retry_after == 5.0
    assert status_error(422, detail("bad_prompt"), retry="3").retry_after is None


def test_the_key_never_reaches_a_message() -> None:
    for body in (
        detail("invalid_api_key", f"Invalid API key {SECRET}"),
        {"detail": [{"loc": ["header", "xi-api-key"], "msg": f"bad {SECRET}"}]},
        detail("bad_prompt", prompt_suggestion=f"{SECRET}"),
    ):
        err = status_error(401, body)
        assert SECRET not in err.message and "[redacted]" in err.message


def test_long_suggestions_are_cut() -> None:
    err = status_error(422, detail("bad_prompt", "m" * 900, prompt_suggestion="s" * 5000))
    assert len(err.message) <= 560
