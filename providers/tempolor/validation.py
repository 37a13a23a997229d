"""Request checks for TemPolor (pure): what ``Provider.check`` rejects before any I/O.

Limits come from useapi's TemPolor pages as summarized in useapi.net's TemPolor docs
(https://useapi.net/docs/api-tempolor-v1): ``prompt`` <= 2000, ``lyrics`` <= 3000 (song
models only), ``tonality`` one of 24 keys, ``bpm`` 50-190, ``chords`` <= 200
(instrumental models only), ``artistVoiceItemId`` / ``clonedVoiceItemId`` /
``midiItemId`` (song models only). A song model asked for ``instrumental: true`` is
rejected naming the instrumental models, never silently turned into a song. Errors name
the parameter as the client wrote it: ``tempolor.<field>`` for the native block."""

from __future__ import annotations

from providers.base import RequestRejected, SubmitRequest
from providers.tempolor.catalog import MODELS, TemPolorOptions

#: The 24 ``tonality`` values useapi lists for ``POST /tempolor/music/instrumental``.
TONALITIES: frozenset[str] = frozenset(
    f"{root}:{mode}"
    for root in ("A", "Ab", "B", "Bb", "C#", "C", "D", "E", "Eb", "F#", "F", "G")
    for mode in ("major", "minor")
)
BPM_RANGE = (50, 190)
MAX_PROMPT, MAX_LYRICS, MAX_CHORDS = 2000, 3000, 200
SONG_ONLY_OPTIONS = ("artistVoiceItemId", "clonedVoiceItemId", "midiItemId")
INSTRUMENTAL_ONLY_OPTIONS = ("tonality", "bpm", "chords")

_SONG_IDS = ", ".join(m.id for m in MODELS if m.kind == "song")
_INSTRUMENTAL_IDS = ", ".join(m.id for m in MODELS if m.kind == "instrumental")


def check(req: SubmitRequest) -> None:
    """Reject what TemPolor cannot honour, naming the parameter (pure)."""
    spec = req.model
    for name in ("title", "style", "duration"):
        if getattr(req, name) is not None:
            raise RequestRejected(
                "unsupported_parameter", f"{spec.id} does not support '{name}'", name
            )
    if spec.kind == "song" and req.instrumental:
        raise RequestRejected(
            "unsupported_parameter",
            f"{spec.id} is a song model (with vocals); for instrumental music "
            f"use one of {_INSTRUMENTAL_IDS} instead",
            "instrumental",
        )
    if spec.kind == "instrumental":
        if req.instrumental is False:
            raise RequestRejected(
                "unsupported_parameter",
                f"{spec.id} makes instrumental music only; for vocals use one of {_SONG_IDS}",
                "instrumental",
            )
        if req.lyrics is not None:
            raise RequestRejected(
                "unsupported_parameter", f"{spec.id} is instrumental and takes no lyrics", "lyrics"
            )
    if not req.prompt or not req.prompt.strip():
        raise RequestRejected("missing_parameter", "TemPolor needs a non-empty prompt", "prompt")
    if len(req.prompt) > MAX_PROMPT:
        raise RequestRejected(
            "validation_error", f"prompt is limited to {MAX_PROMPT} characters", "prompt"
        )
    if req.lyrics is not None and len(req.lyrics) > MAX_LYRICS:
        raise RequestRejected(
            "validation_error", f"lyrics are limited to {MAX_LYRICS} characters", "lyrics"
        )
    if req.options is not None:
        _check_options(req.options, spec.id, spec.kind)


def _check_options(o: TemPolorOptions, model_id: str, kind: str) -> None:
    wrong = SONG_ONLY_OPTIONS if kind == "instrumental" else INSTRUMENTAL_ONLY_OPTIONS
    for name in wrong:
        if getattr(o, name) is not None:
            fits = _SONG_IDS if kind == "instrumental" else _INSTRUMENTAL_IDS
            raise RequestRejected(
                "unsupported_parameter",
                f"tempolor.{name} does not apply to {model_id} ({kind}); it needs one of {fits}",
                f"tempolor.{name}",
            )
    if o.tonality is not None and o.tonality not in TONALITIES:
        raise RequestRejected(
            "validation_error",
            f"tempolor.tonality must be one of {', '.join(sorted(TONALITIES))}",
            "tempolor.tonality",
        )
    if o.bpm is not None and not BPM_RANGE[0] <= o.bpm <= BPM_RANGE[1]:
        raise RequestRejected(
            "validation_error",
            f"tempolor.bpm must be between {BPM_RANGE[0]} and {BPM_RANGE[1]}",
            "tempolor.bpm",
        )
    if o.chords is not None and len(o.chords) > MAX_CHORDS:
        raise RequestRejected(
            "validation_error",
            f"tempolor.chords is limited to {MAX_CHORDS} characters",
            "tempolor.chords",
        )
    if o.maxJobs is not None and o.maxJobs < 1:
        raise RequestRejected(
            "validation_error", "tempolor.maxJobs must be at least 1", "tempolor.maxJobs"
        )
