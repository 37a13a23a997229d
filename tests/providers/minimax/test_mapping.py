"""MiniMax's pure mapping: the catalog, the native body (defaults, the ``minimax`` block,
AI Stats' instrumental rule), every ``base_resp`` code (the right ``ProviderError``, the
native message kept, the field named), a success answer's audio, duration and id, and
the settings read from the environment."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from providers.base import (
    CallsBack,
    Pollable,
    Provider,
    ProviderError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamInsufficientCredits,
    UpstreamRateLimited,
    UpstreamRejected,
)
from providers.minimax import DEFAULT_CONCURRENCY, create, mapping
from providers.minimax.catalog import CATALOG, AudioSetting, MiniMaxOptions, MiniMaxState
from providers.minimax.client import ClientSettings
from providers.registry import REGISTRY

from .conftest import LYRICS, PROMPT, request

# ------------------------------------------------------------------------- catalog


def test_catalog_models_block_and_concurrency() -> None:
    assert [(m.id, m.native_model, m.kind) for m in CATALOG.models] == [
        ("minimax/music-2.6", "music-2.6", "song"),
        ("minimax/music-3.0", "music-3.0", "song"),
    ]
    for m in CATALOG.models:
        assert m.provider == "minimax"
        assert m.supports == {"prompt", "lyrics", "instrumental", "format"}
    assert CATALOG.native_block == "minimax" and CATALOG.options_type is MiniMaxOptions
    assert CATALOG.synchronous and CATALOG.concurrency == DEFAULT_CONCURRENCY == 20
    assert set(MiniMaxOptions.__struct_fields__) >= {
        "lyrics_optimizer",
        "audio_setting",
        "output_format",
        "is_instrumental",
        "stream",
        "aigc_watermark",
    }


def test_registered_with_its_credential_and_simulator() -> None:
    reg = REGISTRY["minimax"]
    assert reg.required == ("MINIMAX_API_KEY",) and reg.models == CATALOG.models
    env = reg.simulator.env_for("http://127.0.0.1:1")
    assert env == {"MINIMAX_API_KEY": "sim-minimax-key", "MINIMAX_BASE_URL": "http://127.0.0.1:1"}


def test_the_provider_is_synchronous_only() -> None:
    p = create({})
    assert isinstance(p, Provider) and not isinstance(p, (Pollable, CallsBack))
    assert not p.configured and p.state_type is MiniMaxState
    assert p.base_url == "https://api.minimax.io"
    assert create({"MINIMAX_API_KEY": "k"}).configured


def test_settings_from_the_environment() -> None:
    s = ClientSettings.from_env({"MINIMAX_BASE_URL": "https://api.minimaxi.com/"})
    assert s.base_url == "https://api.minimaxi.com" and s.api_key is None
    assert (s.connect_timeout, s.read_timeout, s.write_timeout, s.pool_timeout) == (5, 600, 10, 5)
    s = ClientSettings.from_env({"MINIMAX_API_KEY": " k ", "MINIMAX_READ_TIMEOUT": "30"})
    assert s.api_key == "k" and s.read_timeout == 30
    with pytest.raises(ValueError, match="MINIMAX_READ_TIMEOUT"):
        ClientSettings.from_env({"MINIMAX_READ_TIMEOUT": "soon"})


# ------------------------------------------------------------------------- request


def body(**kw: Any) -> dict[str, Any]:
    return msgspec.json.decode(mapping.encode(mapping.to_native(request(**kw))))


DEFAULT_SETTING = {"sample_rate": 44100, "bitrate": 256000, "format": "mp3"}


def test_a_prompt_alone_is_an_instrumental_asked_as_a_url() -> None:
    assert body() == {
        "model": "music-2.6",
        "prompt": PROMPT,
        "is_instrumental": True,
        "stream": False,
        "output_format": "url",
        "audio_setting": DEFAULT_SETTING,
    }


def test_lyrics_make_a_song_on_the_model_asked() -> None:
    sent = body(model="minimax/music-3.0", lyrics=LYRICS, format="wav")
    assert sent["model"] == "music-3.0" and sent["lyrics"] == LYRICS
    assert sent["is_instrumental"] is False
    assert sent["audio_setting"] == {**DEFAULT_SETTING, "format": "wav"}


def test_the_optimizer_makes_a_song_without_lyrics() -> None:
    sent = body(options=MiniMaxOptions(lyrics_optimizer=True))
    assert sent["is_instrumental"] is False and sent["lyrics_optimizer"] is True
    assert "lyrics" not in sent


def test_the_block_is_passed_through() -> None:
    opts = MiniMaxOptions(
        prompt="block prompt",
        lyrics="[Verse]\nla",
        is_instrumental=False,
        output_format="hex",
        audio_setting=AudioSetting(sample_rate=32000, bitrate=128000),
        aigc_watermark=True,
    )
    sent = body(prompt=None, options=opts)
    assert sent == {
        "model": "music-2.6",
        "prompt": "block prompt",
        "lyrics": "[Verse]\nla",
        "is_instrumental": False,
        "stream": False,
        "output_format": "hex",
        "audio_setting": {"sample_rate": 32000, "bitrate": 128000, "format": "mp3"},
        "aigc_watermark": True,
    }
    f = mapping.fields(request(prompt=None, options=opts))
    assert (f.prompt_param, f.lyrics_param, f.instrumental_param) == (
        "minimax.prompt",
        "minimax.lyrics",
        "minimax.is_instrumental",
    )


def test_an_explicit_instrumental_false_and_content_types() -> None:
    f = mapping.fields(request(instrumental=False))
    assert not f.instrumental and f.instrumental_param == "instrumental"
    assert mapping.content_type(request()) == "audio/mpeg"
    assert mapping.content_type(request(format="wav")) == "audio/wav"


# -------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("code", "cls", "wait"),
    [
        (1002, UpstreamRateLimited, 10.0),
        (2056, UpstreamRateLimited, 60.0),
        (2045, UpstreamRateLimited, 10.0),
        (1041, UpstreamRateLimited, 10.0),
        (1004, UpstreamAuthError, None),
        (2049, UpstreamAuthError, None),
        (1008, UpstreamInsufficientCredits, None),
        (1026, UpstreamRejected, None),
        (1027, UpstreamRejected, None),
        (2013, UpstreamRejected, None),
        (1000, UpstreamError, None),
        (1024, UpstreamError, None),
        (99999, UpstreamError, None),
    ],
)
def test_every_base_resp_code(code: int, cls: type[ProviderError], wait: float | None) -> None:
    err = mapping.base_error(code, "what MiniMax said")
    assert type(err) is cls and err.provider == "minimax" and err.native_status == code
    assert err.retry_after == wait and err.sent
    assert "what MiniMax said" in err.message and str(code) in err.message
    if code in (1026, 1027):
        assert "content policy" in err.message
    if cls is UpstreamRateLimited:  # a Retry-After the answer carried wins
        assert mapping.base_error(code, None, 3.0).retry_after == 3.0


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("invalid params, lyrics: length must be between 1 and 3500", "lyrics"),
        (
            "invalid params, audio_setting.sample_rate must be one of ...",
            "audio_setting.sample_rate",
        ),
        ("Invalid params: prompt is required when is_instrumental is true", "prompt"),
        ("invalid params", None),
        ("invalid params, lyricsx", None),
    ],
)
def test_invalid_params_names_the_field(message: str, field: str | None) -> None:
    assert mapping.field_named(message) == field
    err = mapping.base_error(2013, message)
    assert type(err) is UpstreamRejected and message in err.message
    if field:
        assert f"rejected {field} (2013)" in err.message


def test_http_error_bodies() -> None:
    raw = b'{"base_resp":{"status_code":1008,"status_msg":"insufficient balance"}}'
    assert mapping.error_class(400, raw) is UpstreamInsufficientCredits
    assert mapping.error_message(raw) == "status_code 1008: insufficient balance"
    assert mapping.error_class(500, b'{"base_resp":{"status_code":1000}}') is None
    assert mapping.error_class(429, b'{"error":"slow down"}') is None
    assert mapping.error_message(b'{"error":"slow down"}') == "slow down"
    assert mapping.error_class(502, b"<html>") is None and mapping.error_message(b"<html>") is None


# ------------------------------------------------------------------------- answers

SUCCESS = {"status_code": 0, "status_msg": "success"}


def ok(data: Any, **top: Any) -> bytes:
    return msgspec.json.encode({"data": data, "base_resp": SUCCESS, **top})


def test_a_url_answer_in_either_field() -> None:
    extra = {"music_duration": 25364, "music_sample_rate": 44100, "music_size": 813651}
    for data in (
        {"audio": " https://cdn.example/a.mp3 ", "status": 2},
        {"audio_url": "https://cdn.example/a.mp3"},
    ):
        got = mapping.outcome(ok(data, trace_id="tr-1", extra_info=extra), audio_bytes=0)
        assert got == mapping.Outcome(
            url="https://cdn.example/a.mp3", duration=25.364, native_id="tr-1"
        )


def test_a_hex_answer_has_no_url_and_the_trace_header_stands_in() -> None:
    raw = ok({"audio": "", "status": 2}, extra_info={"audio_length": 4000})
    got = mapping.outcome(raw, audio_bytes=1234, trace_header="hdr-7")
    assert got == mapping.Outcome(url=None, duration=4.0, native_id="hdr-7")


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (ok({"audio": "", "status": 2}), "no audio"),
        (ok({"audio": "ftp://x/a.mp3"}), "no audio"),
        (ok({"audio": "https://cdn.example/a.mp3", "status": 1}), "(in_progress)"),
        (ok({"audio": "https://cdn.example/a.mp3", "status": 7}), "unknown"),
        (ok(None), "no audio"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"data": ', "not a JSON object"),
    ],
)
def test_a_200_that_is_not_a_song_is_an_error_of_unknown_outcome(raw: bytes, words: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        mapping.outcome(raw, audio_bytes=0)
    err = caught.value
    assert type(err) is UpstreamError and err.native_status == 200 and err.sent
    assert words in err.message


def test_an_error_inside_a_200_wins_over_any_audio() -> None:
    raw = msgspec.json.encode(
        {
            "data": {"audio": "https://cdn.example/a.mp3"},
            "base_resp": {"status_code": 1002, "status_msg": "rate limit"},
        }
    )
    with pytest.raises(UpstreamRateLimited) as caught:
        mapping.outcome(raw, audio_bytes=100, retry_after=7.0)
    assert caught.value.retry_after == 7.0 and "rate limit" in caught.value.message


@pytest.mark.parametrize("ms", [0, -5, 10**12, "25000", True, None])
def test_an_unusable_duration_is_unknown(ms: Any) -> None:
    raw = ok({"audio": "https://cdn.example/a.mp3"}, extra_info={"music_duration": ms})
    assert mapping.outcome(raw, audio_bytes=0).duration is None
