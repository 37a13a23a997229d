"""ElevenLabs' ``check`` (pure): every rule a 400 naming the parameter, before any
upstream call; and what it lets through."""

from __future__ import annotations

import pytest

from providers.base import RequestRejected, SubmitRequest
from providers.elevenlabs import validation
from providers.elevenlabs.catalog import CompositionPlan, ElevenLabsOptions, PlanChunk, TimeRange

from .conftest import MODEL, V1_PLAN, V2_PLAN, chunk, planned, request

# ---------------------------------------------------------------------------- check

LONG_REF = PlanChunk(song_id="s", range=TimeRange(start_ms=0, end_ms=5000))


@pytest.mark.parametrize(
    ("req", "param"),
    [
        (request(duration=2), "duration"),
        (request(duration=601), "duration"),
        (request(prompt=""), "prompt"),
        (request(prompt="x" * 2001), "prompt"),
        (request(prompt=None), "prompt"),
        (request(options=ElevenLabsOptions(seed=3)), "elevenlabs.seed"),
        (
            request(options=ElevenLabsOptions(respect_sections_durations=True)),
            "elevenlabs.respect_sections_durations",
        ),
        (
            request(options=ElevenLabsOptions(finetune_strength=0.4)),
            "elevenlabs.finetune_strength",
        ),
        (
            SubmitRequest(
                model=MODEL["elevenlabs/music_v2"],
                prompt="x",
                options=ElevenLabsOptions(composition_plan=V2_PLAN),
            ),
            "elevenlabs.composition_plan",
        ),
        (
            SubmitRequest(
                model=MODEL["elevenlabs/music_v2"],
                duration=20,
                options=ElevenLabsOptions(composition_plan=V2_PLAN),
            ),
            "duration",
        ),
        (
            SubmitRequest(
                model=MODEL["elevenlabs/music_v2"],
                instrumental=True,
                options=ElevenLabsOptions(composition_plan=V2_PLAN),
            ),
            "instrumental",
        ),
        (planned("elevenlabs/music_v2", V1_PLAN), "elevenlabs.composition_plan"),
        (planned("elevenlabs/music", V1_PLAN), "elevenlabs.composition_plan"),
        (planned("elevenlabs/music_v1", V2_PLAN), "elevenlabs.composition_plan"),
        (
            planned("elevenlabs/music_v1", CompositionPlan(sections=[], chunks=[chunk()])),
            "elevenlabs.composition_plan",
        ),
        (planned("elevenlabs/music_v1", CompositionPlan()), "elevenlabs.composition_plan"),
        (
            planned("elevenlabs/music_v1", CompositionPlan(positive_global_styles=["pop"])),
            "elevenlabs.composition_plan.sections",
        ),
        (
            planned("elevenlabs/music_v2", CompositionPlan(chunks=[PlanChunk(text="x")])),
            "elevenlabs.composition_plan.chunks[0].duration_ms",
        ),
        (
            planned(
                "elevenlabs/music_v2",
                CompositionPlan(chunks=[chunk(), PlanChunk(song_id="s", text="x")]),
            ),
            "elevenlabs.composition_plan.chunks[1].text",
        ),
        (
            planned("elevenlabs/music_v2", CompositionPlan(chunks=[PlanChunk(song_id="s")])),
            "elevenlabs.composition_plan.chunks[0].range",
        ),
        (
            planned(
                "elevenlabs/music_v2",
                CompositionPlan(
                    chunks=[PlanChunk(song_id="s", range=TimeRange(start_ms=9, end_ms=9))]
                ),
            ),
            "elevenlabs.composition_plan.chunks[0].range",
        ),
        (
            planned(
                "elevenlabs/music_v2", CompositionPlan(chunks=[chunk(condition_strength="high")])
            ),
            "elevenlabs.composition_plan.chunks[0].condition_strength",
        ),
        (
            planned("elevenlabs/music_v2", CompositionPlan(chunks=[chunk(120000)] * 6)),
            "elevenlabs.composition_plan",
        ),
        (
            planned("elevenlabs/music_v2", V2_PLAN, respect_sections_durations=False),
            "elevenlabs.respect_sections_durations",
        ),
        (
            request(format="wav", options=ElevenLabsOptions(output_format="mp3_44100_192")),
            "elevenlabs.output_format",
        ),
        (
            request(options=ElevenLabsOptions(output_format="pcm_44100")),
            "elevenlabs.output_format",
        ),
        (
            request(format="wav", options=ElevenLabsOptions(sign_with_c2pa=True)),
            "elevenlabs.sign_with_c2pa",
        ),
    ],
)
def test_check_rejects_naming_the_param(req: SubmitRequest, param: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        validation.check(req)
    assert caught.value.param == param, caught.value.message
    assert caught.value.code in ("invalid_parameter", "missing_parameter")
    assert caught.value.message


@pytest.mark.parametrize(
    "req",
    [
        request(duration=3),
        request(duration=600, instrumental=False, format="wav"),
        request("eleven-labs/music", prompt="x" * 2000),
        request(options=ElevenLabsOptions(finetune_id="f", finetune_strength=1.5)),
        request(format="wav", options=ElevenLabsOptions(output_format="pcm_16000")),
        planned("elevenlabs/music_v1", V1_PLAN, seed=1, respect_sections_durations=False),
        planned("elevenlabs/music_v2", V2_PLAN, respect_sections_durations=True),
        planned("elevenlabs/music_v2", CompositionPlan(chunks=[chunk(), LONG_REF])),
        SubmitRequest(
            model=MODEL["elevenlabs/music_v2"],
            instrumental=False,
            options=ElevenLabsOptions(composition_plan=V2_PLAN),
        ),
    ],
)
def test_check_accepts(req: SubmitRequest) -> None:
    validation.check(req)
