"""Wire payloads of the TemPolor simulator: the status object and create-body checks.

``status_body`` is shaped like the example in the useapi.net "Check music generation
status and results" page; ``validate_create`` answers useapi's 400 message for a bad
create body (limits from useapi.net's TemPolor docs
(https://useapi.net/docs/api-tempolor-v1); ``i3.5`` and ``i3.5 beta``, ``chords`` and
``chord`` are both accepted, as the reference asks)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from providers.tempolor.validation import TONALITIES


@dataclass
class SimJob:
    id: str
    item: str
    kind: str
    model: str
    body: dict[str, Any]
    base: str  # the simulator's own base URL, for absolute media URLs
    created: float  # monotonic
    created_ms: int
    queue: float
    generate: float
    not_found: float
    end_status: int
    end_final: bool
    title: str
    style: str

    def phase(self, now: float) -> tuple[int, int, bool]:
        """(native status, progress, status_final) at ``now``."""
        elapsed = now - self.created
        if elapsed < self.queue:
            return 0, 0, False
        if elapsed < self.queue + self.generate:
            return 0, 1 + int(98 * (elapsed - self.queue) / max(self.generate, 1e-9)), False
        return self.end_status, (100 if self.end_status == 30 else 0), self.end_final

    def done_at(self) -> float:
        return self.created + self.queue + self.generate


SONG_MODELS = ("v3", "v3.5", "v4.5+", "v4.8")
INSTRUMENTAL_MODELS = ("i3", "i3.5", "i3.5 beta", "i4")
STATUS_NAMES = {0: "GENERATING", 10: "FAILED", 30: "COMPLETED"}
_SONG_FIELDS = {
    "prompt",
    "lyrics",
    "model_song",
    "artistVoiceItemId",
    "clonedVoiceItemId",
    "midiItemId",
    "user_id",
    "replyUrl",
    "replyRef",
    "maxJobs",
}
_INSTRUMENTAL_FIELDS = {
    "prompt",
    "model_instrumental",
    "tonality",
    "bpm",
    "chords",
    "chord",
    "user_id",
    "replyUrl",
    "replyRef",
    "maxJobs",
}


def status_body(job: SimJob, now: float) -> dict[str, Any]:
    """The ``GET /tempolor/music/{job_id}`` object, shaped like seed 002's example."""
    status, progress, final = job.phase(now)
    body = job.body
    song = job.kind == "song"
    lyrics = body.get("lyrics") or ("[Verse]\nSimulated words\n[Chorus]\nSimulated" if song else "")
    return {
        "bizType": "ai_material_music",
        "childType": "lyric_to_material" if song else "text_to_material",
        "sourceType": "sm_user_gen",
        "itemId": job.item,
        "job_id": job.id,
        "genItemId": job.item,
        "userId": body.get("user_id") or "sim",
        "titleEn": job.title,
        "cover": f"{job.base}/media/cover/{job.item}.png",
        "mp3OssId": f"ai_material/ai_material/mp3/{job.item}.mp3",
        "wavOssId": f"ai_material/ai_material/wav/{job.item}.wav",
        "ossWatermarkMp3": "",
        "status": status,
        "status_name": STATUS_NAMES.get(status, "UNKNOWN"),
        "status_final": final,
        "progress": progress,
        "musicMaterial": {
            "style": job.style,
            "chord": body.get("chords") or body.get("chord") or "",
            "mood": "",
            "inst": "",
            "otherInfo": body.get("prompt", ""),
            "key": body.get("tonality") or "F:minor",
            "bpm": body.get("bpm") or 120,
            "dur": 1,
            "seed": zlib.crc32(job.item.encode()),
            "waveformUrl": f"{job.base}/media/waveform/{job.item}.json",
        },
        "createTime": job.created_ms,
        "updateTime": job.created_ms,
        "ltmMaterialExtendDto": {
            "lyricsPrompt": lyrics,
            "description": body.get("prompt", ""),
            "prompt": body.get("prompt", ""),
            "genMode": 0,
            "model": "sim-dit-stereo",
            "modelShowName": job.model,
        },
        "editType": "gen",
        "operatorType": "gen",
        "canExtend": True,
    }


def validate_create(kind: str, body: Any) -> str | None:
    """useapi's 400 message for a bad create body, or None."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object"
    allowed = _SONG_FIELDS if kind == "song" else _INSTRUMENTAL_FIELDS
    for key in body:
        if key not in allowed:
            return f"Unknown parameter {key}"
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "Parameter prompt is required"
    checks: list[tuple[str, int]] = [
        ("prompt", 2000),
        ("lyrics", 3000),
        ("chords", 200),
        ("chord", 200),
        ("replyUrl", 1024),
        ("replyRef", 1024),
    ]
    for name, limit in checks:
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            return f"Parameter {name} must be a string of at most {limit} characters"
    model_key, models = (
        ("model_song", SONG_MODELS)
        if kind == "song"
        else ("model_instrumental", INSTRUMENTAL_MODELS)
    )
    if body.get(model_key) is not None and body[model_key] not in models:
        return f"Parameter {model_key} must be one of {', '.join(models)}"
    if body.get("tonality") is not None and body["tonality"] not in TONALITIES:
        return "Parameter tonality has unsupported value"
    bpm = body.get("bpm")
    if bpm is not None and (
        not isinstance(bpm, int) or isinstance(bpm, bool) or not 50 <= bpm <= 190
    ):
        return "Parameter bpm must be within 50…190"
    max_jobs = body.get("maxJobs")
    if max_jobs is not None and (not isinstance(max_jobs, int) or max_jobs < 1):
        return "Parameter maxJobs must be a positive integer"
    return None
