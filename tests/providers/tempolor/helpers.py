"""Helpers for the TemPolor tests: the simulator's control endpoints and requests
(polling: ``tests/support/native.py``)."""

from __future__ import annotations

from typing import Any

import httpx

from providers.base import Callback, SubmitRequest
from providers.tempolor.catalog import MODELS, TemPolorOptions
from providers.tempolor.simulator import SimulatorConfig
from tests.support.native import SimControl

TOKEN = "user:12345-sim-secret-token-0042"
SPECS = {m.id: m for m in MODELS}

#: Fast timings for tests (seconds); every test starts from these.
FAST = SimulatorConfig(
    api_token=TOKEN,
    queue_seconds=0.05,
    generate_seconds=0.15,
    download_404_seconds=0.0,
    url_ttl_seconds=600.0,
)


class Sim(SimControl):
    """The served simulator: its base URL, its API's, and its ``/__sim__`` endpoints."""

    def __init__(self, base: str, http: httpx.Client) -> None:
        super().__init__(base, http)
        self.api = base + "/v1"


def request(
    model: str = "tempolor/v4.8",
    *,
    prompt: str = "an upbeat synth-pop song about summer nights",
    callback: Callback | None = None,
    **fields: Any,
) -> SubmitRequest:
    options = fields.pop("options", None)
    if isinstance(options, dict):
        options = TemPolorOptions(**options)
    return SubmitRequest(
        model=SPECS[model], prompt=prompt, options=options, callback=callback, **fields
    )
