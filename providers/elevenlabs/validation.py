"""Request checks for ElevenLabs Music (pure): what ``Provider.check`` rejects before any
upstream call, each a ``RequestRejected`` naming the parameter as the client wrote it
(``elevenlabs.<field>`` for the native block).

Rules (ElevenLabs' ``POST /v1/music`` reference and the official SDK's docstrings):

* a ``prompt`` (at most 2000 characters) or ``elevenlabs.composition_plan``, not both;
* ``duration`` (``music_length_ms``) 3-600 s, and only with a prompt;
* ``instrumental`` (``force_instrumental``) only with a prompt (``false`` is the default
  and is simply not sent with a plan);
* ``elevenlabs.seed`` and ``elevenlabs.respect_sections_durations`` only with a plan;
  ``respect_sections_durations: false`` on ``music_v2``, which always keeps the sections'
  durations, cannot be honoured;
* ``elevenlabs.finetune_strength`` only with ``elevenlabs.finetune_id``;
* the plan's shape must be the model's: ``music_v1`` sections, ``music_v2`` chunks (each a
  generation chunk or an audio reference, never a mix), 3 s to 10 min in all;
* ``elevenlabs.output_format`` must be of the requested ``format``'s family (``mp3_*``
  for mp3, ``pcm_*`` for wav); ``elevenlabs.sign_with_c2pa`` applies to MP3 only.
"""

from __future__ import annotations

from providers.base import RequestRejected, SubmitRequest
from providers.elevenlabs.catalog import CompositionPlan, PlanChunk, TimeRange
from providers.elevenlabs.mapping import merged, options, output_format, plan_ms, plan_shape

MAX_PROMPT = 2000
DURATION_S = (3, 600)
PLAN_MS = (3000, 600000)
CONDITIONING_MS = (50, 30000)  # an audio reference's range (ElevenLabs' music skill doc)
PLAN = "elevenlabs.composition_plan"


def _reject(param: str, message: str, code: str = "invalid_parameter") -> RequestRejected:
    return RequestRejected(code, message, param)


def check(req: SubmitRequest) -> None:
    """Reject what ElevenLabs would refuse, naming the parameter (pure)."""
    req = merged(req)
    opts = options(req)
    plan = opts.composition_plan
    low, high = DURATION_S
    if req.duration is not None and not low <= req.duration <= high:
        raise _reject("duration", f"ElevenLabs makes songs of {low} to {high} seconds")
    ms = opts.music_length_ms
    if ms is not None and not low * 1000 <= ms <= high * 1000:
        raise _reject(
            "elevenlabs.music_length_ms", f"ElevenLabs makes songs of {low} to {high} seconds"
        )
    if ms is not None and plan is not None:
        raise _reject(
            "elevenlabs.music_length_ms",
            "with a composition plan, its sections' durations make the length",
        )
    if opts.model_id is not None and opts.model_id != req.model.native_model:
        raise _reject(
            "elevenlabs.model_id",
            f"model {req.model.id} runs {req.model.native_model}; choose the model with"
            " `model` (e.g. elevenlabs/music_v1, elevenlabs/music_v2)",
        )
    if plan is None:
        if req.prompt is None or not req.prompt.strip():
            raise _reject(
                "prompt",
                f"ElevenLabs needs a prompt or an {PLAN}",
                "missing_parameter",
            )
        if len(req.prompt) > MAX_PROMPT:
            raise _reject("prompt", f"ElevenLabs accepts at most {MAX_PROMPT} characters")
        for name in ("seed", "respect_sections_durations"):
            if getattr(opts, name) is not None:
                raise _reject(f"elevenlabs.{name}", f"elevenlabs.{name} needs an {PLAN}")
    else:
        if req.prompt is not None:
            raise _reject(PLAN, f"prompt and {PLAN} exclude each other: send one of them")
        if req.duration is not None:
            raise _reject(
                "duration", "with a composition plan, its sections' durations make the length"
            )
        if req.instrumental:
            raise _reject(
                "instrumental",
                "instrumental applies to a prompt; with a plan, leave the lines out instead",
            )
        _check_plan(plan, req.model.native_model)
        if req.model.native_model == "music_v2" and opts.respect_sections_durations is False:
            raise _reject(
                "elevenlabs.respect_sections_durations",
                "music_v2 always keeps the sections' durations",
            )
    if opts.finetune_strength is not None and opts.finetune_id is None:
        raise _reject("elevenlabs.finetune_strength", "needs elevenlabs.finetune_id")
    fmt = output_format(req)
    family = "pcm" if req.format == "wav" else "mp3"
    if not fmt.startswith(f"{family}_"):
        raise _reject(
            "elevenlabs.output_format",
            f"format {req.format} needs a {family}_* output_format, not {fmt}",
        )
    if opts.sign_with_c2pa and family != "mp3":
        raise _reject("elevenlabs.sign_with_c2pa", "C2PA signing applies to MP3 only")


def _check_plan(plan: CompositionPlan, model: str) -> None:
    shape = plan_shape(plan)
    if shape == "mixed":
        raise _reject(PLAN, "a plan has music_v1 sections or music_v2 chunks, not both")
    if shape == "empty":
        raise _reject(PLAN, "a plan needs sections (music_v1) or chunks (music_v2)")
    if shape != model:
        want = "sections (and global styles)" if model == "music_v1" else "chunks"
        raise _reject(PLAN, f"a {shape}-shaped plan on {model}: {model} takes {want}")
    if shape == "music_v1":
        if not plan.sections:
            raise _reject(f"{PLAN}.sections", "a music_v1 plan needs its sections")
        for i, section in enumerate(plan.sections):
            source = section.source_from
            if source is not None:
                _check_range(source.range, f"{PLAN}.sections[{i}].source_from.range")
    else:
        for i, chunk in enumerate(plan.chunks or ()):
            _check_chunk(chunk, f"{PLAN}.chunks[{i}]")
    low, high = PLAN_MS
    total = plan_ms(plan)
    if not low <= total <= high:
        raise _reject(PLAN, f"a plan lasts {low // 1000} s to {high // 60000} min, not {total} ms")


def _check_chunk(chunk: PlanChunk, where: str) -> None:
    generation = ("text", "duration_ms", "positive_styles")
    optional = ("negative_styles", "context_adherence", "conditioning_ref", "condition_strength")
    if chunk.song_id is not None or chunk.range is not None:  # an audio reference
        for name in (*generation, *optional):
            if getattr(chunk, name) is not None:
                raise _reject(
                    f"{where}.{name}", "an audio reference chunk has song_id and range only"
                )
        if chunk.song_id is None or chunk.range is None:
            missing = "song_id" if chunk.song_id is None else "range"
            raise _reject(f"{where}.{missing}", "an audio reference needs song_id and range")
        _check_range(chunk.range, f"{where}.range")
        return
    for name in generation:
        if getattr(chunk, name) is None:
            raise _reject(f"{where}.{name}", f"a generation chunk needs {', '.join(generation)}")
    ref = chunk.conditioning_ref
    if ref is not None:
        _check_range(ref.range, f"{where}.conditioning_ref.range", CONDITIONING_MS)
    elif chunk.condition_strength is not None:
        raise _reject(f"{where}.condition_strength", "needs a conditioning_ref")


def _check_range(span: TimeRange, where: str, bounds: tuple[int, int] | None = None) -> None:
    length = span.end_ms - span.start_ms
    if length <= 0:
        raise _reject(where, "end_ms must be after start_ms")
    if bounds is not None and not bounds[0] <= length <= bounds[1]:
        raise _reject(where, f"a conditioning range lasts {bounds[0]} to {bounds[1]} ms")
