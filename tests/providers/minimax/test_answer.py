"""``answer.Splitter``: a JSON answer fed in any chunking splits into the same skeleton
(``data.audio`` emptied when hex) and the same decoded audio; anything else is kept as
sent; broken answers are ``MalformedAnswer``."""

from __future__ import annotations

import os

import msgspec
import pytest

from providers.minimax.answer import MalformedAnswer, Splitter

AUDIO = os.urandom(5000)


def answer(audio: str, *, base_first: bool = False, extra: str = "") -> bytes:
    base = '"base_resp":{"status_code":0,"status_msg":"success"}'
    data = f'"data":{{"status":2,"audio":"{audio}"{extra}}}'
    tail = '"trace_id":"t-1","extra_info":{"music_duration":25364,"audio":"abcd"}'
    parts = [base, data, tail] if base_first else [data, tail, base]
    return ("{" + ",".join(parts) + "}").encode()


def split(raw: bytes, size: int) -> tuple[bytes, bytes, Splitter]:
    splitter = Splitter()
    audio = b"".join(splitter.feed(raw[i : i + size]) for i in range(0, len(raw), size))
    return splitter.close(), audio, splitter


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096, 1 << 20])
@pytest.mark.parametrize("base_first", [False, True])
def test_hex_audio_is_decoded_whatever_the_chunking(size: int, base_first: bool) -> None:
    for digits in (AUDIO.hex(), AUDIO.hex().upper()):
        raw = answer(digits, base_first=base_first)
        skeleton, audio, splitter = split(raw, size)
        assert audio == AUDIO and splitter.hex and splitter.audio_bytes == len(AUDIO)
        doc = msgspec.json.decode(skeleton)
        assert doc["data"] == {"status": 2, "audio": ""}
        assert doc["extra_info"]["audio"] == "abcd"  # another "audio" key: kept, not decoded
        assert doc["base_resp"]["status_code"] == 0 and doc["trace_id"] == "t-1"


@pytest.mark.parametrize("size", [1, 5, 4096])
def test_a_url_and_escapes_stay_in_the_skeleton(size: int) -> None:
    url = r"https:\/\/cdn.example\/a.mp3?x=1\u0026y=\"q\"\\"
    raw = answer(url, extra=',"audio_url":"https://cdn.example/b.mp3"')
    skeleton, audio, splitter = split(raw, size)
    assert audio == b"" and not splitter.hex and skeleton == raw
    doc = msgspec.json.decode(skeleton)
    assert doc["data"]["audio"] == 'https://cdn.example/a.mp3?x=1&y="q"\\'


def test_an_empty_audio_and_keys_like_audio_elsewhere() -> None:
    raw = b'{"audio":"00ff","data":{"x":{"audio":"0a0b"},"audio":"","status":1},"b":[["cc"]]}'
    skeleton, audio, splitter = split(raw, 3)
    assert (skeleton, audio, splitter.hex) == (raw, b"", False)


def test_whitespace_and_a_key_with_escapes() -> None:
    raw = b'{ "da\\"ta" : 1 , "data" : { "audio" : "0102" } }'
    skeleton, audio, _ = split(raw, 2)
    assert audio == b"\x01\x02"
    assert msgspec.json.decode(skeleton) == {'da"ta': 1, "data": {"audio": ""}}


@pytest.mark.parametrize(
    "raw",
    [
        answer(AUDIO.hex())[:-1],  # cut short
        answer(AUDIO.hex())[:500],  # cut inside the hex
        answer(AUDIO.hex()[:-1]),  # an odd digit count
        answer("00zz11"),  # not hex
        answer("0011\\u0030"),  # an escape inside hex
        b"",
        b"   ",
        b"}",
    ],
)
def test_broken_answers_are_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedAnswer):
        split(raw, 64)


def test_the_skeleton_is_bounded() -> None:
    splitter = Splitter(limit=100)
    splitter.feed(b'{"data":{"audio":"' + b"00" * 10_000)  # hex: not counted
    with pytest.raises(MalformedAnswer, match=r"outside data\.audio"):
        splitter.feed(b'","note":"' + b"x" * 200 + b'"}}')


def test_a_long_hex_answer_is_a_few_calls_per_chunk() -> None:
    big = os.urandom(1 << 20)
    raw = answer(big.hex())
    skeleton, audio, _ = split(raw, 1 << 16)
    assert audio == big and len(skeleton) < 200
