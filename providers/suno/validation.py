"""Request checks for Suno (pure): what ``Provider.check`` rejects before any I/O.

The mode follows the request (sunoapi.org's "Generate Suno AI Music" page, *generate*):

* **simple** (``customMode: false``): only ``prompt``, a description Suno writes lyrics
  from (at most 500 characters); "other parameters should be left empty", so the
  ``suno`` block's fields, which take effect in custom mode only, are refused here.
* **custom** (``customMode: true``), chosen by any of ``lyrics``, ``style``, ``title``:
  ``style`` and ``title`` are required (*generate*; AI Stats' rule
  ``style_and_title_required_when_custom_mode_enabled`` too); with vocals ``lyrics`` are
  required (Suno sings them verbatim: they are sent as ``prompt``; AI Stats'
  ``prompt_required_for_lyric_mode_when_custom_mode_enabled``), and a description
  ``prompt`` has no place beside them. An instrumental takes no lyrics; its ``prompt``,
  if any, is sent as the description (*generate*'s own custom instrumental example).

Lengths per model version are in ``catalog.py``. Errors name the parameter as the
client wrote it (``suno.<field>`` for the native block)."""

from __future__ import annotations

from providers.base import RequestRejected, SubmitRequest
from providers.suno import catalog
from providers.suno.catalog import SunoOptions

NATIVE_FIELDS = tuple(SunoOptions.__struct_fields__)


def is_custom(req: SubmitRequest) -> bool:
    """Custom mode: the request gives lyrics, a style or a title."""
    return any(v is not None for v in (req.lyrics, req.style, req.title))


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _limit(name: str, value: str | None, limit: int, model: str, mode: str) -> None:
    if value is not None and len(value) > limit:
        raise RequestRejected(
            "validation_error",
            f"{name} is limited to {limit} characters for {model} in {mode} mode"
            f" (got {len(value)})",
            name,
        )


def check(req: SubmitRequest) -> None:
    """Reject what sunoapi.org would refuse or cannot honour, naming the parameter."""
    spec = req.model
    native = spec.native_model
    if req.format == "wav":
        raise RequestRejected(
            "unsupported_parameter",
            f"{spec.id} gives mp3 only (ogg and aac are converted from it when the gateway"
            " mirrors the audio: GATEWAY_ARTEFACT_MIRROR=true)",
            "format",
        )
    options = req.options or SunoOptions()
    if not is_custom(req):
        if _blank(req.prompt):
            raise RequestRejected(
                "missing_parameter",
                "Suno needs a prompt (simple mode), or a style and a title (custom mode)",
                "prompt",
            )
        _limit("prompt", req.prompt, catalog.SIMPLE_PROMPT_MAX, spec.id, "simple")
        for name in NATIVE_FIELDS:
            if getattr(options, name) is not None:
                raise RequestRejected(
                    "unsupported_parameter",
                    f"suno.{name} takes effect in custom mode only: give a style and a"
                    " title (and lyrics, unless instrumental)",
                    f"suno.{name}",
                )
        return
    for name in ("style", "title"):
        if _blank(getattr(req, name)):
            raise RequestRejected(
                "missing_parameter",
                f"Suno's custom mode (chosen by lyrics, style or title) needs both a style"
                f" and a title; {name} is missing",
                name,
            )
    if req.instrumental:
        if req.lyrics is not None:
            raise RequestRejected(
                "invalid_parameter", "an instrumental track takes no lyrics", "lyrics"
            )
        prompt_name, prompt = "prompt", req.prompt
    else:
        if _blank(req.lyrics):
            raise RequestRejected(
                "missing_parameter",
                "Suno's custom mode with vocals sings the lyrics verbatim: give lyrics, set"
                " instrumental, or drop style and title to let Suno write lyrics from the"
                " prompt",
                "lyrics",
            )
        if req.prompt is not None:
            raise RequestRejected(
                "invalid_parameter",
                "in Suno's custom mode the lyrics are the prompt: describe the music in"
                " style, or drop style, title and lyrics for a described song",
                "prompt",
            )
        prompt_name, prompt = "lyrics", req.lyrics
    limit = catalog.CUSTOM_PROMPT_MAX.get(native, catalog.DEFAULT_PROMPT_MAX)
    _limit(prompt_name, prompt, limit, spec.id, "custom")
    _limit("style", req.style, catalog.STYLE_MAX.get(native, catalog.DEFAULT_STYLE_MAX),
           spec.id, "custom")  # fmt: skip
    _limit("title", req.title, catalog.TITLE_MAX.get(native, catalog.DEFAULT_TITLE_MAX),
           spec.id, "custom")  # fmt: skip
    if options.personaModel is not None and options.personaId is None:
        raise RequestRejected(
            "missing_parameter",
            "suno.personaModel says what kind suno.personaId is: give the personaId",
            "suno.personaId",
        )
