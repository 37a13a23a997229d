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

import msgspec

from providers.base import RequestRejected, SubmitRequest
from providers.suno import catalog
from providers.suno.catalog import SunoOptions

#: AI Stats' spellings of the request inside the block (``merged`` folds them in).
REQUEST_FIELDS = ("customMode", "instrumental", "prompt", "style", "title", "model", "callBackUrl")
#: The block's own Suno fields, which take effect in custom mode only.
NATIVE_FIELDS = tuple(f for f in SunoOptions.__struct_fields__ if f not in REQUEST_FIELDS)


def is_custom(req: SubmitRequest) -> bool:
    """Custom mode: the request gives lyrics, a style or a title."""
    return any(v is not None for v in (req.lyrics, req.style, req.title))


def merged(req: SubmitRequest) -> SubmitRequest:
    """AI Stats' ``suno {prompt, style, title, instrumental, customMode}`` folded into the
    request: the block's values win; with ``customMode: true`` and vocals, the prompt is
    the lyrics (AI Stats sends the lyrics as ``prompt``)."""
    o = req.options
    if not isinstance(o, SunoOptions) or all(
        getattr(o, f) is None for f in ("customMode", "instrumental", "prompt", "style", "title")
    ):
        return req
    prompt = o.prompt if o.prompt is not None else req.prompt
    instrumental = o.instrumental if o.instrumental is not None else req.instrumental
    lyrics = req.lyrics
    if o.customMode and not instrumental and lyrics is None and prompt is not None:
        lyrics, prompt = prompt, None
    return msgspec.structs.replace(
        req,
        prompt=prompt,
        lyrics=lyrics,
        instrumental=instrumental,
        style=o.style if o.style is not None else req.style,
        title=o.title if o.title is not None else req.title,
    )


def _check_ai_stats(req: SubmitRequest, o: SunoOptions) -> None:
    """AI Stats' own rules for an explicit ``suno.customMode`` (its ``reason`` codes)."""
    if o.model is not None and o.model != req.model.native_model:
        raise RequestRejected(
            "invalid_parameter",
            f"model {req.model.id} runs {req.model.native_model}; choose the model with"
            " `model` (e.g. suno/v4.5+)",
            "suno.model",
        )
    if o.customMode is False:
        if is_custom(req):
            raise RequestRejected(
                "invalid_parameter",
                "suno.customMode is false, but lyrics, a style or a title ask for custom mode",
                "suno.customMode",
            )
        if _blank(req.prompt):
            raise RequestRejected(
                "missing_parameter",
                "with suno.customMode false, Suno needs a prompt",
                "prompt",
                reason="prompt_required_when_custom_mode_disabled",
            )
    if o.customMode:
        for name in ("style", "title"):
            if _blank(getattr(req, name)):
                raise RequestRejected(
                    "missing_parameter",
                    f"with suno.customMode true, Suno needs a style and a title; {name} is missing",
                    name,
                    reason="style_and_title_required_when_custom_mode_enabled",
                )
        if not req.instrumental and _blank(req.lyrics):
            raise RequestRejected(
                "missing_parameter",
                "with suno.customMode true and vocals, the prompt (the lyrics) is required",
                "prompt",
                reason="prompt_required_for_lyric_mode_when_custom_mode_enabled",
            )


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
    req = merged(req)
    if isinstance(req.options, SunoOptions):
        _check_ai_stats(req, req.options)
    spec = req.model
    native = spec.native_model
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
