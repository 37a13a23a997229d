"""MiniMax's ``check`` (pure): every rule a 400 naming the parameter as the client wrote
it, before any upstream call; and what it lets through."""

from __future__ import annotations

from typing import Any

import pytest

from providers.base import RequestRejected, SubmitRequest
from providers.minimax import validation
from providers.minimax.catalog import AudioSetting, MiniMaxOptions

from .conftest import LYRICS, request

Opts = MiniMaxOptions


@pytest.mark.parametrize(
    ("kw", "param", "code"),
    [
        ({"prompt": "x" * 2001}, "prompt", "invalid_parameter"),
        (
            {"prompt": None, "options": Opts(prompt="x" * 2001)},
            "minimax.prompt",
            "invalid_parameter",
        ),
        ({"lyrics": "x" * 3501}, "lyrics", "invalid_parameter"),
        ({"options": Opts(lyrics="x" * 3501)}, "minimax.lyrics", "invalid_parameter"),
        # instrumental: a prompt is required, lyrics cannot be honoured
        ({"prompt": None}, "prompt", "missing_parameter"),
        ({"prompt": "   "}, "prompt", "missing_parameter"),
        ({"prompt": None, "instrumental": True}, "prompt", "missing_parameter"),
        ({"instrumental": True, "lyrics": LYRICS}, "lyrics", "invalid_parameter"),
        (
            {"options": Opts(is_instrumental=True, lyrics=LYRICS)},
            "minimax.lyrics",
            "invalid_parameter",
        ),
        (
            {"instrumental": True, "options": Opts(lyrics_optimizer=True)},
            "minimax.lyrics_optimizer",
            "invalid_parameter",
        ),
        # with vocals: lyrics are required, or the optimizer (which needs the prompt)
        ({"instrumental": False}, "lyrics", "missing_parameter"),
        ({"instrumental": False, "lyrics": " \n "}, "lyrics", "missing_parameter"),
        (
            {"options": Opts(is_instrumental=False, lyrics="")},
            "minimax.lyrics",
            "missing_parameter",
        ),
        ({"prompt": None, "options": Opts(lyrics_optimizer=True)}, "prompt", "missing_parameter"),
        # the top level and the block must agree
        ({"options": Opts(prompt="other")}, "minimax.prompt", "invalid_parameter"),
        ({"lyrics": LYRICS, "options": Opts(lyrics="la")}, "minimax.lyrics", "invalid_parameter"),
        (
            {"instrumental": True, "options": Opts(is_instrumental=False)},
            "minimax.is_instrumental",
            "invalid_parameter",
        ),
        # what the gateway cannot do with MiniMax
        ({"options": Opts(stream=True)}, "minimax.stream", "invalid_parameter"),
        (
            {"options": Opts(audio_url="https://x.example/a.mp3")},
            "minimax.audio_url",
            "invalid_parameter",
        ),
        ({"options": Opts(audio_base64="AAAA")}, "minimax.audio_base64", "invalid_parameter"),
        ({"options": Opts(cover_feature_id="c1")}, "minimax.cover_feature_id", "invalid_parameter"),
        (
            {"options": Opts(audio_setting=AudioSetting(format="pcm"))},
            "minimax.audio_setting.format",
            "invalid_parameter",
        ),
        (
            {"format": "wav", "options": Opts(audio_setting=AudioSetting(format="mp3"))},
            "minimax.audio_setting.format",
            "invalid_parameter",
        ),
        (
            {"options": Opts(audio_setting=AudioSetting(format="wav"))},
            "minimax.audio_setting.format",
            "invalid_parameter",
        ),
    ],
)
def test_rejected_naming_the_param(kw: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        validation.check(request(**kw))
    assert (caught.value.param, caught.value.code) == (param, code)
    assert caught.value.message


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"prompt": "p" * 2000},
        {"instrumental": True},
        {"lyrics": LYRICS},
        {"lyrics": "x" * 3500, "prompt": None},
        {"prompt": None, "lyrics": LYRICS, "instrumental": False},
        {"options": Opts(lyrics_optimizer=True)},
        {"options": Opts(lyrics_optimizer=True), "lyrics": LYRICS},
        {"prompt": None, "options": Opts(prompt="block", is_instrumental=True)},
        {"options": Opts(prompt=request().prompt, stream=False, output_format="hex")},
        {"lyrics": LYRICS, "options": Opts(lyrics=LYRICS, is_instrumental=False)},
        {"instrumental": True, "options": Opts(is_instrumental=True, aigc_watermark=True)},
        {
            "format": "wav",
            "options": Opts(audio_setting=AudioSetting(format="wav", sample_rate=16000)),
        },
        {"options": Opts(audio_setting=AudioSetting(bitrate=32000))},
        {"model": "minimax/music-3.0", "lyrics": LYRICS},
    ],
)
def test_accepted(kw: dict[str, Any]) -> None:
    validation.check(request(**kw))


def test_a_request_without_options_is_checked_the_same() -> None:
    req = request()
    assert isinstance(req, SubmitRequest) and req.options is None
    validation.check(req)
