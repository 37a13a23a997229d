"""Pure mapping of sunoapi.org's callbacks (*callbacks*: "Music Generation Callbacks",
https://docs.sunoapi.org/suno-api/generate-music-callbacks.md).

One POST per stage to ``callBackUrl``: ``text``, ``first``, ``complete``, or ``error``
(a mirror spells it ``failed``); a ``code`` other than 200 is a failure too (400
content, 451 download failed, 500, 501, 531 ...). Items are snake_case. The same task
may be called back several times and in any order: each callback is merged into the
job's state (``mapping.py``) and the snapshot re-rendered, so they converge.
"""

from __future__ import annotations

from typing import Any

import msgspec

from providers.base import Snapshot
from providers.suno.catalog import PROVIDER
from providers.suno.coerce import as_code, as_number, as_str
from providers.suno.mapping import (
    fail,
    load_state,
    logger,
    merge_tracks,
    merge_word,
    render,
    settle,
)
from providers.suno.schemas import CallbackItem, CallbackView

#: Callback ``data.callbackType`` -> the record-info word it stands for (*callbacks*).
CALLBACK_STAGES: dict[str, str] = {
    "text": "TEXT_SUCCESS",  # *callbacks*: "text generation completed"
    "first": "FIRST_SUCCESS",  # *callbacks*: "first track completed"
    "complete": "SUCCESS",  # *callbacks*: "all tracks completed"
    # "error"  (*callbacks*: "task failed"; a mirror spells it "failed"): failed
}
ERROR_STAGES = frozenset({"error", "failed"})

_callback = msgspec.json.Decoder(CallbackView)


def decode_callback(raw: bytes) -> CallbackView:
    """A callback body; ``ValueError`` when it is not one."""
    try:
        view = _callback.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"unreadable Suno callback: {exc}") from None
    if view.data is None and view.code is None:
        raise ValueError("not a Suno callback (no code, no data)")
    return view


def callback_task(view: CallbackView) -> str | None:
    return as_str(view.data.task_id) if view.data is not None else None


def apply_callback(last: Snapshot, view: CallbackView, now: float) -> Snapshot:
    """Merge one callback (any stage, any order, duplicates) into the job. ``ValueError``
    when it names another task than the job's."""
    state = load_state(last.state)
    task = callback_task(view)
    if state.task_id and task and task != state.task_id:
        raise ValueError("callback is for another Suno task")
    state.task_id = state.task_id or task
    data = view.data
    stage = (as_str(data.callbackType) or "").lower() if data is not None else ""
    code = as_code(view.code)
    items = [_callback_item(i) for i in (data.data or [])] if data is not None else []
    merge_tracks(state, items)
    if stage in ERROR_STAGES or (code is not None and code != 200):
        reason = as_str(view.msg) or "Suno reported the generation as failed"
        fail(state, stage or "error", reason, code)
    elif stage in CALLBACK_STAGES:
        merge_word(state, CALLBACK_STAGES[stage], None, None, now)
    elif stage:
        logger().info("unknown_callback_type", provider=PROVIDER, type=stage, task_id=task)
    settle(state, now)
    return render(state, last, now)


def _callback_item(item: CallbackItem) -> dict[str, Any]:
    return {
        "id": as_str(item.id),
        "audio": as_str(item.audio_url) or as_str(item.source_audio_url),
        "stream": as_str(item.stream_audio_url) or as_str(item.source_stream_audio_url),
        "image": as_str(item.image_url) or as_str(item.source_image_url),
        "title": as_str(item.title),
        "tags": as_str(item.tags),
        "duration": as_number(item.duration),
        "lyrics": as_str(item.prompt),
    }
