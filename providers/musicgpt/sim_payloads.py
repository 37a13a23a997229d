"""Native payloads the MusicGPT simulator answers and sends (pure builders).

Shapes follow MusicGPT's public API docs (https://docs.musicgpt.com) (merged MUSIC_AI
byId shape, per-artefact webhooks) and the docs' "Status Check" page
(https://docs.musicgpt.com) (older single-output byId shape, older generic webhook),
including the fields the gateway does not read."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

Phase = Literal["queued", "in_progress", "partial", "completed", "failed", "flagged"]

SONG_SECONDS = 1.0  # simulator_media.WAV_BYTES is 1.0 s; MP3_BYTES ~0.99 s
COST = 1.25
COVERS = ("cover.png", "cover_thumb.png")


@dataclasses.dataclass
class SimJob:
    """One simulated MusicAI task (two songs)."""

    task_id: str
    conversion_ids: tuple[str, str]
    created: float  # time.monotonic() at create
    created_at: str  # ISO timestamp for createdAt
    base_url: str  # where the media URLs point (the simulator's own address)
    queue_seconds: float
    progress_seconds: float
    prompt: str = ""
    style: str | None = None
    title: str | None = None
    lyrics: str | None = None
    instrumental: bool = False
    model: str = "v6"
    webhook_url: str | None = None
    cover: bool = False
    timestamps: bool = False
    flagged: bool = False
    fail: bool = False
    reason: str = ""
    created_wall: float = 0.0  # time.time() at create: the timeline in epoch seconds

    def phase(self, now: float, partial: bool = False) -> Phase:
        if self.flagged:
            return "flagged"
        elapsed = now - self.created
        if elapsed < self.queue_seconds:
            return "queued"
        if elapsed < self.queue_seconds + self.progress_seconds:
            half = self.queue_seconds + self.progress_seconds / 2
            return "partial" if partial and not self.fail and elapsed >= half else "in_progress"
        return "failed" if self.fail else "completed"

    def timeline(self, phase: Phase) -> dict[str, Any]:
        """When the task was created, started and ends (epoch seconds), and its phase now:
        what ``GET /__sim__/tasks/{task_id}`` answers (a benchmark's completion moment)."""
        started = self.created_wall + (0.0 if self.flagged else self.queue_seconds)
        final = started + (0.0 if self.flagged else self.progress_seconds)
        return {
            "task_id": self.task_id,
            "conversion_ids": list(self.conversion_ids),
            "created_at": self.created_wall,
            "started_at": started,
            "final_at": final,
            "phase": phase,
        }

    def media(self, cid: str, ext: str) -> str:
        return f"{self.base_url}/media/{self.task_id}/{cid}.{ext}"

    @property
    def cover_url(self) -> str:
        return f"{self.base_url}/media/{self.task_id}/cover.png"

    def song_title(self, n: int) -> str:
        return f"{self.title} ({n})" if self.title else f"Simulated song {n}"

    def song_lyrics(self) -> str:
        if self.instrumental:
            return ""
        return self.lyrics or "[Verse]\nSimulated lyrics for a simulated song"

    def timestamped(self) -> str:
        """Timestamped lyrics as MusicGPT sends them: a JSON *string*."""
        words = self.song_lyrics().split()[:4]
        return json.dumps(
            [{"text": w, "start": i * 0.2, "end": i * 0.2 + 0.2} for i, w in enumerate(words)]
        )


def _num(value: float, as_string: bool) -> Any:
    return str(value) if as_string else value


def merged_conversion(
    job: SimJob, phase: Phase, word: str, updated_at: str, string_numbers: bool
) -> dict[str, Any]:
    """The newer MUSIC_AI byId shape: one object, ``_1``/``_2`` fields per song."""
    d: dict[str, Any] = {
        "task_id": job.task_id,
        "feature": "MUSIC_AI",
        "status": word,
        "message": _message(job, phase),
        "webhook_url": job.webhook_url,
        "createdAt": job.created_at,
        "updatedAt": updated_at,
        "is_streaming_request": True,
        "is_streaming_available": phase not in ("queued", "flagged"),
        "model": job.model,
    }
    for n, cid in enumerate(job.conversion_ids, start=1):
        ready = phase == "completed" or (phase == "partial" and n == 1)
        started = phase not in ("queued", "flagged", "failed")
        d[f"conversion_id_{n}"] = cid
        d[f"title_{n}"] = job.song_title(n) if started else None
        d[f"lyrics_{n}"] = job.song_lyrics() if started else None
        d[f"sounds_{n}"] = ""
        d[f"conversion_path_{n}"] = job.media(cid, "mp3") if ready else ""
        d[f"conversion_path_wav_{n}"] = job.media(cid, "wav") if ready else None
        d[f"lyrics_timestamped_{n}"] = job.timestamped() if ready and job.timestamps else None
        d[f"conversion_duration_{n}"] = _num(SONG_SECONDS, string_numbers) if ready else None
    if phase == "completed":
        d["generation_completed_at"] = updated_at
        if job.cover:
            d["album_cover_path"] = job.cover_url
            d["album_cover_thumbnail"] = job.cover_url.replace("cover.png", "cover_thumb.png")
    return d


def legacy_conversion(
    job: SimJob, phase: Phase, word: str, updated_at: str, string_numbers: bool
) -> dict[str, Any]:
    """The older single-output byId shape of seed 000."""
    cid = job.conversion_ids[0]
    return {
        "task_id": job.task_id,
        "conversion_id": cid,
        "status": word,
        "status_msg": _message(job, phase),
        "audio_url": job.media(cid, "mp3") if phase == "completed" else "",
        "conversion_cost": _num(COST, string_numbers),
        "title": job.song_title(1),
        "lyrics": job.song_lyrics(),
        "music_style": job.style,
        "createdAt": job.created_at,
        "updatedAt": updated_at,
    }


def _message(job: SimJob, phase: Phase) -> str:
    return {
        "queued": "Message published to queue",
        "in_progress": "Audio generation in progress",
        "partial": "One of the two songs is ready",
        "completed": "Audio conversion completed",
        "failed": "Audio generation failed",
        "flagged": job.reason,
    }[phase]


# ------------------------------------------------------------------------ webhooks


def _hook(job: SimJob, subtype: str, **fields: Any) -> dict[str, Any]:
    return {
        "success": True,
        "conversion_type": "Music AI",
        "subtype": subtype,
        "task_id": job.task_id,
        **fields,
    }


def streaming_hooks(job: SimJob) -> list[dict[str, Any]]:
    return [
        _hook(job, "audio_streaming", conversion_id=cid, streaming_url=job.media(cid, "m3u8"))
        for cid in job.conversion_ids
    ]


def final_hooks(job: SimJob, shape: str, string_numbers: bool) -> list[dict[str, Any]]:
    """What MusicGPT posts when the task ends (per artefact, or the older generic one)."""
    if job.flagged:
        return [
            _hook(job, "music_ai", conversion_id=cid, is_flagged=True, reason=job.reason)
            for cid in job.conversion_ids
        ]
    if job.fail or shape == "legacy":
        cid = job.conversion_ids[0]
        return [
            {
                "task_id": job.task_id,
                "conversion_id": cid,
                "status": "ERROR" if job.fail else "COMPLETED",
                "status_msg": _message(job, "failed" if job.fail else "completed"),
                "conversion_type": "MUSIC_AI",
                "audio_url": "" if job.fail else job.media(cid, "mp3"),
                "title": job.song_title(1),
                "conversion_cost": _num(COST, string_numbers),
                "createdAt": job.created_at,
                "updatedAt": job.created_at,
            }
        ]
    hooks = [
        _hook(
            job,
            "music_ai",
            conversion_id=cid,
            conversion_path=job.media(cid, "mp3"),
            conversion_path_wav=job.media(cid, "wav"),
            conversion_duration=_num(SONG_SECONDS, string_numbers),
            lyrics=job.song_lyrics(),
            lyrics_timestamped=job.timestamped() if job.timestamps else "",
            title=job.song_title(n),
            album_cover_path=job.cover_url if job.cover else None,
            is_flagged=False,
            reason="",
        )
        for n, cid in enumerate(job.conversion_ids, start=1)
    ]
    if job.cover:
        hooks.append(
            _hook(
                job,
                "album_cover_generation",
                image_path=job.cover_url,
                thumbnail_path=job.cover_url.replace("cover.png", "cover_thumb.png"),
                image_paths=[job.cover_url],
                conversion_id_1=job.conversion_ids[0],
                conversion_id_2=job.conversion_ids[1],
            )
        )
    if job.timestamps:
        hooks += [
            _hook(
                job, "lyrics_timestamped", conversion_id=cid, lyrics_timestamped=job.timestamped()
            )
            for cid in job.conversion_ids
        ]
    return hooks


def hls_playlist(cid: str) -> bytes:
    """A one-segment HLS playlist pointing at the song's MP3 (the ``streaming_url``)."""
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:{SONG_SECONDS:.1f},\n{cid}.mp3\n#EXT-X-ENDLIST\n"
    ).encode()
