"""How a provider package declares its simulator for the first-run demo and the tests.

Usage (in a provider package's ``__init__``)::

    SIMULATOR = SimulatorSpec(
        create_app=_simulator,                                  # the native-wire ASGI app
        env_for=lambda url: {"MUSICGPT_API_KEY": "sim-key", "MUSICGPT_BASE_URL": url},
    )
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SimulatorSpec:
    """A provider's stand-in: its native-wire-format simulator (an ASGI app, made on
    demand) and the environment that points the provider at a simulator served at a URL."""

    create_app: Callable[[], Any]
    env_for: Callable[[str], dict[str, str]]
