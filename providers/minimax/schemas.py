"""MiniMax Music's native wire format as msgspec Structs.

Source: MiniMax's API reference for ``POST /v1/music_generation``
(https://platform.minimax.io/docs/api-reference/music-generation: ``GenerateMusicReq``,
``GenerateMusicResp`` and its example), MiniMax's official CLI (``MusicResponse``) and MCP
server (which read the URL of ``output_format: "url"`` from ``data.audio_url`` and
``data.audio`` respectively: both are read).

* ``MusicBody`` is what we send; ``omit_defaults`` keeps unset fields off the wire.
* ``MusicAnswer`` reads an answer whose ``data.audio`` hex (if any) was taken out while it
  streamed in (``providers.minimax.answer``). Every field is ``Any`` and read defensively
  in ``mapping.py``: nothing an upstream sends makes the decoding itself fail.
"""

from __future__ import annotations

from typing import Any

import msgspec

from providers.minimax.catalog import AudioSetting


class MusicBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``POST /v1/music_generation`` JSON body."""

    model: str
    prompt: str | None = None
    lyrics: str | None = None
    is_instrumental: bool | None = None
    lyrics_optimizer: bool | None = None
    stream: bool | None = None
    output_format: str | None = None
    audio_setting: AudioSetting | None = None
    aigc_watermark: bool | None = None


class MusicAnswer(msgspec.Struct, kw_only=True):
    """Any ``/v1/music_generation`` answer (success or ``base_resp`` error)."""

    data: Any = None  # {"audio": url or "" (hex taken out), "audio_url"?, "status": 1|2}
    trace_id: Any = None
    extra_info: Any = None  # {"music_duration": ms, "music_sample_rate", "music_size", ...}
    base_resp: Any = None  # {"status_code": 0, "status_msg": "success"}
