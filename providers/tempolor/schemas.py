"""useapi.net TemPolor wire format as msgspec Structs (useapi.net's TemPolor docs,
https://useapi.net/docs/api-tempolor-v1).

Two kinds of Struct live here:

* request bodies we *send* (``SongBody``, ``InstrumentalBody``): ``omit_defaults`` so an
  unset optional field is simply absent, as useapi's examples show;
* "view" Structs of what we *read* back (``CreateView``, ``StatusView``, ``DownloadView``,
  ``ErrorView``): only the fields the gateway uses, every one optional, and never
  ``forbid_unknown_fields`` -- useapi adds fields freely and that must not break us.

``status`` and the numbers are typed loosely (``Any``) on purpose: the
reference marks several shapes *unconfirmed*, so ``mapping.py`` normalizes them.

``NativeJob`` is not a wire type: it is the provider-private, per-native-job record kept in
``Snapshot.state`` between polls (progress, metadata, the current download URL and its
expiry).
"""

from __future__ import annotations

from typing import Any

import msgspec

# ----------------------------------------------------------------------------- requests


class SongBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``POST /tempolor/music/song``."""

    prompt: str
    lyrics: str | None = None
    model_song: str | None = None
    artistVoiceItemId: str | None = None
    clonedVoiceItemId: str | None = None
    midiItemId: str | None = None
    user_id: str | None = None
    replyUrl: str | None = None
    replyRef: str | None = None
    maxJobs: int | None = None


class InstrumentalBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``POST /tempolor/music/instrumental``."""

    prompt: str
    model_instrumental: str | None = None
    tonality: str | None = None
    bpm: int | None = None
    chords: str | None = None
    user_id: str | None = None
    replyUrl: str | None = None
    replyRef: str | None = None
    maxJobs: int | None = None


# -------------------------------------------------------------------------------- views


class ErrorView(msgspec.Struct):
    """useapi's error envelope: ``{"error": "<message>", "code": <http status>}``."""

    error: Any = None
    code: Any = None


class CreateView(msgspec.Struct):
    """Create answer: ``{"jobs": ["user:...-job:..."], ...}`` (plus the error envelope)."""

    jobs: list[str] | None = None
    error: Any = None
    code: Any = None


class MusicMaterialView(msgspec.Struct):
    style: str | None = None
    key: str | None = None
    bpm: Any = None
    dur: Any = None


class ExtendView(msgspec.Struct):
    lyricsPrompt: str | None = None
    prompt: str | None = None
    model: str | None = None
    modelShowName: str | None = None


class StatusView(msgspec.Struct):
    """``GET /tempolor/music/{job_id}``; also the callback body (plus ``replyRef``)."""

    job_id: str | None = None
    status: Any = None  # documented as a number (0, 10, 30); parsed defensively
    status_name: str | None = None
    status_final: Any = None
    progress: Any = None
    titleEn: str | None = None
    cover: str | None = None
    musicMaterial: MusicMaterialView | None = None
    ltmMaterialExtendDto: ExtendView | None = None
    replyRef: str | None = None
    error: Any = None
    code: Any = None


class DownloadView(msgspec.Struct):
    """``GET /tempolor/music/download/{job_id}``: ``{"url": ..., "remainSeconds": ...}``."""

    url: str | None = None
    remainSeconds: Any = None
    error: Any = None
    code: Any = None


# ------------------------------------------------------------------- provider-private


class NativeJob(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What we remember about one native job between polls (lives in ``Snapshot.state``)."""

    id: str
    status: int | str | None = None  # last native status seen; None = never seen
    final: bool = False  # ``status_final`` as last reported
    progress: int = 0
    title: str | None = None
    cover: str | None = None
    tags: str | None = None
    duration: float | None = None
    lyrics: str | None = None
    error: str | None = None
    url: str | None = None  # current download URL (playable until ``url_expires_at``)
    url_format: str | None = None
    url_expires_at: float | None = None  # epoch seconds
    url_refresh_at: float | None = None  # epoch seconds: fetch a new URL from here on


class TemPolorState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The provider state the gateway stores with a TemPolor job: one record per native
    job, and whether native jobs were adopted from callbacks (a lost create answer)."""

    jobs: list[NativeJob] = []
    adopted: bool = False
