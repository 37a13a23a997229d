"""Wire payloads of the Suno simulator: a task's progression, the record-info answer, the
callbacks, and the create-body checks.

Shapes follow sunoapi.org's docs: the record-info example (*details*: camelCase items
under ``data.response.sunoData``, ``data.param`` a JSON string), the callback examples
(*callbacks*: snake_case items under ``data.data``, ``callbackType`` text/first/complete/
error) and *generate*'s parameter rules and length limits (``validate_create`` answers
400 for a missing or invalid field, 413 for one too long).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from providers.suno.catalog import (
    CUSTOM_PROMPT_MAX,
    DEFAULT_PROMPT_MAX,
    DEFAULT_STYLE_MAX,
    DEFAULT_TITLE_MAX,
    SIMPLE_PROMPT_MAX,
    STYLE_MAX,
    TITLE_MAX,
)

MODELS = ("V4", "V4_5", "V4_5PLUS", "V4_5ALL", "V5", "V5_5")
FIELDS = {
    "customMode", "instrumental", "model", "callBackUrl", "prompt", "style", "title",
    "personaId", "personaModel", "negativeTags", "vocalGender", "styleWeight",
    "weirdnessConstraint", "audioWeight",
}  # fmt: skip
_TAGS = ("pop, upbeat", "lo-fi, chill", "rock, electrifying", "jazz, piano", "ambient")
_LYRICS = "[Verse]\nSimulated words under simulated lights\n[Chorus]\nLa la la"


@dataclass
class SimTask:
    id: str
    body: dict[str, Any]
    base: str  # the simulator's own base URL, for absolute media URLs
    created: float  # monotonic
    text: float
    first: float
    complete: float
    outcome: str  # SUCCESS, GENERATE_AUDIO_FAILED, SENSITIVE_WORD_ERROR, ... or end_word
    audio_at_end: bool
    songs: list[str]  # song ids
    fail_code: int = 501
    callback_exception: bool = False  # a callback could not be delivered
    sent: list[str] = field(default_factory=list)  # callback stages delivered

    def word(self, now: float) -> str:
        """The record-info ``status`` at ``now``."""
        elapsed, outcome = now - self.created, self.outcome
        if outcome == "CREATE_TASK_FAILED":
            word = outcome
        elif elapsed < self.text:
            word = "PENDING"
        elif outcome == "SENSITIVE_WORD_ERROR":
            word = outcome
        elif elapsed < self.first:
            word = "TEXT_SUCCESS"
        elif outcome == "GENERATE_AUDIO_FAILED":
            word = outcome
        elif elapsed < self.complete:
            word = "FIRST_SUCCESS"
        else:
            word = outcome
        if self.callback_exception and word not in FAILED:
            return "CALLBACK_EXCEPTION"
        return word

    def stage(self, now: float) -> int:
        """0 nothing, 1 text (lyrics, titles), 2 first (the first song's stream), 3 done
        (every song's audio): how far the songs' data has come at ``now``."""
        if self.word(now) in FAILED:
            return 0
        # (+1 ns: ``created + mark - created`` may round just below ``mark``, and a
        # callback computed for that exact mark must see its own stage)
        elapsed = now - self.created + 1e-9
        stage = sum(elapsed >= t for t in (self.text, self.first, self.complete))
        return stage if stage < 3 or self.audio_at_end else 2

    def items(self, now: float, snake: bool) -> list[dict[str, Any]]:
        """The songs as far as they are, camelCase (record-info) or snake_case."""
        stage = self.stage(now)
        if stage == 0:
            return []
        out = []
        custom = bool(self.body.get("customMode"))
        words = (self.body.get("prompt") or "Untitled").split()[:3]
        title = self.body.get("title") if custom else " ".join(w.capitalize() for w in words)
        tags = self.body.get("style") if custom else _TAGS[zlib.crc32(self.id.encode()) % 5]
        lyrics = (
            ""
            if self.body.get("instrumental")
            else (self.body.get("prompt") if custom else _LYRICS)
        )
        for i, song in enumerate(self.songs):
            media = f"{self.base}/media/{self.id}/{song}"
            streaming = stage >= 3 or (stage == 2 and i == 0)
            done = stage >= 3
            item = {
                "id": song,
                "audio_url": f"{media}.mp3" if done else "",
                "source_audio_url": f"{media}.mp3" if done else "",
                "stream_audio_url": f"{media}/stream" if streaming else "",
                "source_stream_audio_url": f"{media}/stream" if streaming else "",
                "image_url": f"{media}.png",
                "source_image_url": f"{media}.png",
                "prompt": lyrics,
                "model_name": "chirp-" + str(self.body.get("model", "")).lower(),
                "title": title,
                "tags": tags,
                "createTime": "2025-01-01 00:00:00",
                "duration": 1.0 if done else None,
            }
            out.append(item if snake else {_camel(k): v for k, v in item.items()})
        return out

    def record(self, now: float) -> dict[str, Any]:
        """The ``GET /api/v1/generate/record-info`` answer."""
        word = self.word(now)
        failed = word in FAILED
        reason = _REASONS.get(word) if failed else None
        return {
            "code": 200,
            "msg": "success",
            "data": {
                "taskId": self.id,
                "parentMusicId": "",
                "param": json.dumps(self.body),
                "response": {
                    "taskId": self.id,
                    "sunoData": self.items(now, snake=False),
                    **({"errorMessage": reason} if failed else {}),
                },
                "status": word,
                "type": "GENERATE",
                "errorCode": self.fail_code if failed else None,
                "errorMessage": reason,
            },
        }

    def callback(self, stage: str, now: float) -> dict[str, Any]:
        """One callback (*callbacks*): ``text``, ``first``, ``complete`` or ``error``."""
        if stage == "error":
            return {
                "code": self.fail_code,
                "msg": _REASONS.get(self.outcome, "Generation failed"),
                "data": {"callbackType": "error", "task_id": self.id, "data": None},
            }
        messages = {
            "text": "Text generation completed successfully.",
            "first": "First track generation completed successfully.",
            "complete": "All generated successfully.",
        }
        return {
            "code": 200,
            "msg": messages[stage],
            "data": {"callbackType": stage, "task_id": self.id, "data": self.items(now, True)},
        }

    def plan(self) -> list[tuple[float, str]]:
        """(seconds after creation, stage) of every callback this task sends."""
        if self.outcome == "CREATE_TASK_FAILED":
            return [(0.0, "error")]
        if self.outcome == "SENSITIVE_WORD_ERROR":
            return [(self.text, "error")]
        if self.outcome == "GENERATE_AUDIO_FAILED":
            return [(self.text, "text"), (self.first, "error")]
        marks = [(self.text, "text"), (self.first, "first")]
        return [*marks, (self.complete, "complete")] if self.audio_at_end else marks


FAILED = frozenset({"CREATE_TASK_FAILED", "GENERATE_AUDIO_FAILED", "SENSITIVE_WORD_ERROR"})
_REASONS = {
    "CREATE_TASK_FAILED": "Failed to create the generation task",
    "GENERATE_AUDIO_FAILED": "Audio generation failed, please retry",
    "SENSITIVE_WORD_ERROR": "The prompt contains sensitive words",
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def validate_create(body: Any) -> tuple[int, str] | None:
    """(code, msg) for a create body sunoapi.org would refuse, or None."""
    if not isinstance(body, dict):
        return 400, "Request body must be a JSON object"
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        return 400, f"Unknown parameter {unknown[0]}"
    for name in ("customMode", "instrumental"):
        if not isinstance(body.get(name), bool):
            return 400, f"{name} is required and must be a boolean"
    if body.get("model") not in MODELS:
        return 400, f"model must be one of {', '.join(MODELS)}"
    url = body.get("callBackUrl")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return 400, "Please enter callBackUrl"
    for name in ("prompt", "style", "title", "personaId", "negativeTags"):
        if body.get(name) is not None and not isinstance(body[name], str):
            return 400, f"{name} must be a string"
    model, custom = body["model"], body["customMode"]
    prompt, style, title = body.get("prompt"), body.get("style"), body.get("title")
    if not custom:
        if not prompt:
            return 400, "prompt is required in non-custom mode"
        if len(prompt) > SIMPLE_PROMPT_MAX:
            return 413, "Theme or prompt too long"
        return None
    if not style or not title:
        return 400, "style and title are required in custom mode"
    if not body["instrumental"] and not prompt:
        return 400, "prompt (the lyrics) is required in custom mode with vocals"
    limits = (
        (prompt, CUSTOM_PROMPT_MAX.get(model, DEFAULT_PROMPT_MAX)),
        (style, STYLE_MAX.get(model, DEFAULT_STYLE_MAX)),
        (title, TITLE_MAX.get(model, DEFAULT_TITLE_MAX)),
    )
    if any(value is not None and len(value) > limit for value, limit in limits):
        return 413, "Theme or prompt too long"
    if body.get("vocalGender") not in (None, "m", "f"):
        return 400, "vocalGender must be m or f"
    if body.get("personaModel") not in (None, "style_persona", "voice_persona"):
        return 400, "personaModel must be style_persona or voice_persona"
    for name in ("styleWeight", "weirdnessConstraint", "audioWeight"):
        value = body.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
        ):
            return 400, f"{name} must be a number between 0 and 1"
    return None
