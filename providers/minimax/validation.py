"""Request checks for MiniMax Music (pure): what ``Provider.check`` rejects before any
upstream call, each a ``RequestRejected`` naming the parameter as the client wrote it
(``minimax.<field>`` for the native block).

Rules (MiniMax's ``GenerateMusicReq`` for ``music-2.6``/``music-3.0``, and AI Stats'
``minimax`` block):

* ``prompt`` at most 2000 characters, ``lyrics`` at most 3500;
* instrumental (``is_instrumental: true``): a prompt is required (1-2000 characters); it
  has no lyrics, so lyrics or ``lyrics_optimizer`` cannot be honoured with it;
* with vocals: lyrics are required (1-3500), unless ``lyrics_optimizer: true`` writes them
  from the prompt (which it then needs);
* a value given both at the top level and in the block (``prompt``/``minimax.prompt``,
  ``lyrics``/``minimax.lyrics``, ``instrumental``/``minimax.is_instrumental``) must agree;
* ``minimax.stream: true`` is refused (the gateway stores the audio; AI Stats refuses it
  too); the cover fields (``audio_url``, ``audio_base64``, ``cover_feature_id``) belong to
  MiniMax's cover models, which this gateway does not serve;
* ``minimax.audio_setting.format`` must be the requested ``format`` (``mp3`` for
  ``mp3``/``ogg``/``aac``, ``wav`` for ``wav``); ``pcm`` (raw samples) is refused: ask
  for ``wav``.
"""

from __future__ import annotations

from providers.base import RequestRejected, SubmitRequest
from providers.minimax.catalog import MAX_LYRICS, MAX_PROMPT
from providers.minimax.mapping import fields, options

_PAIRS = (
    ("prompt", "prompt", "minimax.prompt"),
    ("lyrics", "lyrics", "minimax.lyrics"),
    ("instrumental", "is_instrumental", "minimax.is_instrumental"),
)
_COVER = ("audio_url", "audio_base64", "cover_feature_id")


def _reject(param: str, message: str, code: str = "invalid_parameter") -> RequestRejected:
    return RequestRejected(code, message, param)


def check(req: SubmitRequest) -> None:
    """Reject what MiniMax would refuse (or could not honour), naming the parameter."""
    opts = options(req)
    if opts.stream:
        raise _reject(
            "minimax.stream", "the gateway stores the audio and serves it: stream must be false"
        )
    for name in _COVER:
        if getattr(opts, name) is not None:
            raise _reject(
                f"minimax.{name}",
                f"minimax.{name} is for MiniMax's cover models, which this gateway does not"
                f" serve ({req.model.id} generates from a prompt and lyrics)",
            )
    for top, native, param in _PAIRS:
        ours, theirs = getattr(req, top), getattr(opts, native)
        if ours is not None and theirs is not None and ours != theirs:
            raise _reject(param, f"{top} and {param} disagree: give it once")
    f = fields(req)
    if f.prompt is not None and len(f.prompt) > MAX_PROMPT:
        raise _reject(f.prompt_param, f"MiniMax accepts at most {MAX_PROMPT} characters")
    if f.lyrics is not None and len(f.lyrics) > MAX_LYRICS:
        raise _reject(f.lyrics_param, f"MiniMax accepts at most {MAX_LYRICS} characters")
    prompted = bool(f.prompt and f.prompt.strip())
    lyrics = bool(f.lyrics and f.lyrics.strip())
    if f.instrumental:
        if not prompted:
            raise _reject(
                f.prompt_param,
                f"MiniMax needs a prompt (1 to {MAX_PROMPT} characters) for instrumental music",
                "missing_parameter",
            )
        if lyrics:
            raise _reject(
                f.lyrics_param,
                f"instrumental music has no lyrics: leave them out, or set"
                f" {f.instrumental_param} false for a song with vocals",
            )
        if f.optimizer:
            raise _reject(
                "minimax.lyrics_optimizer",
                "lyrics_optimizer writes lyrics, and instrumental music has none",
            )
    elif not lyrics:
        if not f.optimizer:
            raise _reject(
                f.lyrics_param,
                f"MiniMax needs lyrics (1 to {MAX_LYRICS} characters) for a song with vocals;"
                " or set minimax.lyrics_optimizer true to have them written from the prompt,"
                " or instrumental true",
                "missing_parameter",
            )
        if not prompted:
            raise _reject(
                f.prompt_param,
                "minimax.lyrics_optimizer writes the lyrics from the prompt: give one",
                "missing_parameter",
            )
    _check_format(req)


def _check_format(req: SubmitRequest) -> None:
    setting = options(req).audio_setting
    fmt = setting.format if setting is not None else None
    if fmt is None or fmt == req.format:
        return
    param = "minimax.audio_setting.format"
    if fmt == "pcm":
        raise _reject(param, "pcm is raw samples the gateway cannot serve: ask for format wav")
    raise _reject(param, f"the requested format is made from {req.format}, not {fmt}")
