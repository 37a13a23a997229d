"""Helpers for the Suno tests: the simulator's control endpoints and requests (polling:
``tests/support/native.py``)."""

from __future__ import annotations

from typing import Any

from providers.base import Callback, SubmitRequest
from providers.suno.catalog import MODELS, SunoOptions
from providers.suno.simulator import SimulatorConfig
from tests.support.native import SimControl

KEY = "sk-suno-sim-secret-7f3a9c0e41"
SPECS = {m.id: m for m in MODELS}

#: Fast timings for tests (seconds); every test starts from these.
FAST = SimulatorConfig(
    api_key=KEY, text_seconds=0.05, first_seconds=0.1, complete_seconds=0.2, callbacks=True
)


class Sim(SimControl):
    """The served simulator: its base URL and its ``/__sim__`` control endpoints."""


def request(
    model: str = "suno/v4.5",
    *,
    prompt: str | None = "an upbeat synth-pop song about summer nights",
    callback: Callback | None = None,
    **fields: Any,
) -> SubmitRequest:
    options = fields.pop("options", None)
    if isinstance(options, dict):
        options = SunoOptions(**options)
    return SubmitRequest(
        model=SPECS[model], prompt=prompt, options=options, callback=callback, **fields
    )
