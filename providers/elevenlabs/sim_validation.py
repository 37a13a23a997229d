"""How the ElevenLabs simulator validates ``POST /v1/music`` like the real API (pure).

``validate(query_format, raw_body)`` answers either a ``Order`` (what to generate) or the
FastAPI-style 422 issues ``[{"type", "loc", "msg", "input"?}]`` ElevenLabs answers with.
Rules: ElevenLabs' ``POST /v1/music`` reference and the official SDK's docstrings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

OUTPUT_FORMATS = frozenset(
    {
        *(
            f"mp3_{x}"
            for x in (
                "22050_32",
                "24000_48",
                "44100_32",
                "44100_64",
                "44100_96",
                "44100_128",
                "44100_192",
                "48000_128",
                "48000_192",
                "48000_240",
                "48000_320",
            )
        ),
        *(f"pcm_{r}" for r in (8000, 16000, 22050, 24000, 32000, 44100, 48000)),
        "ulaw_8000",
        "alaw_8000",
        *(f"opus_48000_{b}" for b in (32, 64, 96, 128, 192)),
    }
)
MODELS = ("music_v1", "music_v2")
LENGTH_MS = (3000, 600000)
SECTION_MS = (3000, 120000)
MAX_PROMPT = 2000

Issue = dict[str, Any]


@dataclass(frozen=True)
class Order:
    """A valid request: what the simulator generates."""

    output_format: str
    length_ms: int | None  # None: the simulator's default length
    model: str
    body: dict[str, Any]

    @property
    def pcm_rate(self) -> int | None:
        family, _, rate = self.output_format.partition("_")
        return int(rate) if family == "pcm" else None


def issue(loc: list[Any], msg: str, kind: str = "value_error", value: Any = None) -> Issue:
    out: Issue = {"type": kind, "loc": loc, "msg": msg}
    if value is not None:
        out["input"] = value
    return out


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _range(loc: list[Any], value: Any, low: int, high: int) -> list[Issue]:
    if not _int(value):
        return [issue(loc, "Input should be a valid integer", "int_type", value)]
    if value < low:
        return [
            issue(
                loc, f"Input should be greater than or equal to {low}", "greater_than_equal", value
            )
        ]
    if value > high:
        return [
            issue(loc, f"Input should be less than or equal to {high}", "less_than_equal", value)
        ]
    return []


def _plan(plan: Any, model: str) -> tuple[int, list[Issue]]:
    """The plan's length in ms and its issues."""
    loc: list[Any] = ["body", "composition_plan"]
    if not isinstance(plan, dict):
        return 0, [issue(loc, "Input should be a valid dictionary", "dict_type", plan)]
    key = "sections" if model == "music_v1" else "chunks"
    other = "chunks" if key == "sections" else "sections"
    if other in plan or not isinstance(plan.get(key), list) or not plan[key]:
        return 0, [
            issue(
                loc,
                f"Value error, composition plan does not match model {model}: "
                f"{model} takes a plan with {key}",
            )
        ]
    total, issues = 0, []
    for i, item in enumerate(plan[key]):
        where = [*loc, key, i]
        if not isinstance(item, dict):
            issues.append(issue(where, "Input should be a valid dictionary", "dict_type"))
            continue
        if "duration_ms" in item:
            found = _range([*where, "duration_ms"], item["duration_ms"], *SECTION_MS)
            issues += found
            total += 0 if found else item["duration_ms"]
        elif key == "chunks" and isinstance(item.get("range"), dict):
            span = item["range"]
            start, end = span.get("start_ms"), span.get("end_ms")
            if _int(start) and _int(end) and end > start:
                total += end - start
            else:
                issues.append(
                    issue([*where, "range"], "Value error, end_ms must be after start_ms")
                )
        else:
            issues.append(issue([*where, "duration_ms"], "Field required", "missing"))
    if not issues and not LENGTH_MS[0] <= total <= LENGTH_MS[1]:
        issues.append(
            issue(loc, f"Value error, total duration must be {LENGTH_MS[0]} to {LENGTH_MS[1]} ms")
        )
    return total, issues


def validate(output_format: str | None, raw: bytes) -> Order | list[Issue]:
    """The order, or the 422 issues of this request."""
    fmt = output_format or "mp3_44100_128"
    if fmt not in OUTPUT_FORMATS:
        return [
            issue(["query", "output_format"], "Input should be a known output format", "enum", fmt)
        ]
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return [issue(["body"], "JSON decode error", "json_invalid")]
    if not isinstance(body, dict):
        return [issue(["body"], "Input should be a valid dictionary", "dict_type")]
    model = body.get("model_id", "music_v1")
    if model not in MODELS:
        return [
            issue(["body", "model_id"], "Input should be 'music_v1' or 'music_v2'", "enum", model)
        ]
    prompt, plan = body.get("prompt"), body.get("composition_plan")
    if (prompt is None) == (plan is None):
        return [
            issue(
                ["body"], "Value error, exactly one of prompt or composition_plan must be provided"
            )
        ]
    issues: list[Issue] = []
    length: int | None = None
    if prompt is not None:
        if not isinstance(prompt, str):
            issues.append(
                issue(["body", "prompt"], "Input should be a valid string", "string_type")
            )
        elif len(prompt) > MAX_PROMPT:
            issues.append(
                issue(
                    ["body", "prompt"],
                    f"String should have at most {MAX_PROMPT} characters",
                    "string_too_long",
                )
            )
        if body.get("music_length_ms") is not None:
            length = body["music_length_ms"]
            issues += _range(["body", "music_length_ms"], length, *LENGTH_MS)
        if body.get("seed") is not None:
            issues.append(
                issue(["body", "seed"], "Value error, seed can only be used with composition_plan")
            )
    else:
        for name in ("music_length_ms", "force_instrumental"):
            if body.get(name) is not None:
                issues.append(
                    issue(["body", name], f"Value error, {name} can only be used with prompt")
                )
        length, found = _plan(plan, model)
        issues += found
    if body.get("finetune_strength") is not None and body.get("finetune_id") is None:
        issues.append(issue(["body", "finetune_strength"], "Value error, requires finetune_id"))
    if issues:
        return issues
    return Order(output_format=fmt, length_ms=length, model=model, body=body)
