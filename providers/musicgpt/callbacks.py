"""Pure mapping of MusicGPT's webhooks (MusicGPT's public API docs
(https://docs.musicgpt.com), "Webhooks").

One POST per artefact, no signature, possibly retried: ``music_ai`` (one per song),
``audio_streaming`` (HLS ``streaming_url``), ``album_cover_generation`` and
``lyrics_timestamped``; an older doc page shows a generic payload with ``status``,
``status_msg``, ``audio_url`` and ``conversion_cost`` instead. Each is merged into the
job's state (see ``mapping.py``) and the snapshot re-rendered, so duplicates and any
order converge on the same job.
"""

from __future__ import annotations

from typing import Any

import msgspec

from providers.base import AudioFormat, Snapshot
from providers.musicgpt.coerce import as_flag, as_number, as_str
from providers.musicgpt.mapping import (
    PROVIDER,
    accept_id,
    load_state,
    logger,
    note_status,
    nth_id,
    render,
    set_value,
    update_track,
)
from providers.musicgpt.schemas import Webhook

_webhook_decoder = msgspec.json.Decoder(Webhook)


def decode_webhook(raw: bytes) -> Webhook:
    try:
        return _webhook_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"unreadable MusicGPT callback: {exc}") from None


def apply_webhook(last: Snapshot, hook: Webhook, fmt: AudioFormat, now: float) -> Snapshot:
    """Merge one per-artefact (or older generic) callback into the job.

    Idempotent and order-independent. ``ValueError`` for a body that is not a MusicGPT
    callback for this task.
    """
    state = load_state(last.state)
    task_id = state.get("task_id")
    hook_task = as_str(hook.task_id)
    if task_id and hook_task and hook_task != task_id:
        raise ValueError("callback is for another MusicGPT task")
    if not task_id and hook_task:  # the create's answer was lost: adopt the task
        state["task_id"] = task_id = hook_task
    subtype = (as_str(hook.subtype) or "").lower()
    cid = as_str(hook.conversion_id)
    if subtype == "music_ai":
        if as_flag(hook.is_flagged):
            state["flagged"] = True
            set_value(state, "reason", as_str(hook.reason))
        elif cid is None:
            raise ValueError("music_ai callback without conversion_id")
        if cid is not None:
            accept_id(state, cid)
            mp3, wav = as_str(hook.conversion_path), as_str(hook.conversion_path_wav)
            update_track(
                state,
                cid,
                mp3=mp3,
                wav=wav,
                title=as_str(hook.title),
                lyrics=as_str(hook.lyrics),
                duration=as_number(hook.conversion_duration),
                done=True if (mp3 or wav) else None,
                timestamps=True if as_str(hook.lyrics_timestamped) else None,
            )
        set_value(state, "cover", as_str(hook.album_cover_path))
    elif subtype == "audio_streaming":
        if cid is None:
            raise ValueError("audio_streaming callback without conversion_id")
        accept_id(state, cid)
        update_track(state, cid, stream=as_str(hook.streaming_url))
    elif subtype == "album_cover_generation":
        for other in map(as_str, (hook.conversion_id_1, hook.conversion_id_2)):
            if other is not None:
                accept_id(state, other)
        paths = hook.image_paths if isinstance(hook.image_paths, list) else []
        set_value(
            state, "cover", as_str(hook.image_path) or next(filter(None, map(as_str, paths)), None)
        )
    elif subtype == "lyrics_timestamped":
        if cid is None:
            raise ValueError("lyrics_timestamped callback without conversion_id")
        accept_id(state, cid)
        update_track(state, cid, timestamps=True if as_str(hook.lyrics_timestamped) else None)
    elif subtype:
        logger().info(
            "unknown_callback_subtype", provider=PROVIDER, subtype=subtype, task_id=task_id
        )
    elif hook.status is not None or hook.audio_url is not None:
        _merge_generic_hook(state, hook, cid)
    else:
        raise ValueError("not a MusicGPT callback")
    return render(state, fmt, last, now)


def _merge_generic_hook(state: dict[str, Any], hook: Webhook, cid: str | None) -> None:
    """The older generic payload: ``status``, ``status_msg``, ``audio_url``, one song."""
    status = note_status(hook.status, state.get("task_id"))
    if status is not None:
        state["native_status"] = status
    set_value(state, "message", as_str(hook.status_msg))
    set_value(state, "cost", as_number(hook.conversion_cost))
    audio = as_str(hook.audio_url)
    tracks: dict[str, dict[str, Any]] = state.setdefault("tracks", {})
    others = any(t.get("mp3") or t.get("wav") for k, t in tracks.items() if k != cid)
    if audio and not others:  # no per-song data: this is a single-output job
        single = cid or state.get("single_id") or nth_id(state, 0) or state.get("task_id") or "0"
        state["shape"] = "single"
        state["single_id"] = single
        update_track(state, single, mp3=audio, title=as_str(hook.title))
    elif cid is not None and cid in tracks:
        update_track(state, cid, mp3=audio, title=as_str(hook.title))
