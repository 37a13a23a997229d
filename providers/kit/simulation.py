"""How a provider package declares its simulator for the first-run demo and the tests.

Usage (in a provider package's ``__init__``)::

    SIMULATOR = SimulatorSpec(
        create_app=_simulator,                                  # the native-wire ASGI app
        env_for=lambda url: {"MUSICGPT_API_KEY": "sim-key", "MUSICGPT_BASE_URL": url},
    )

and, in a simulator's ``POST /__sim__/config`` (a partial update of its knobs)::

    try:
        patch = apply_patch(sim.config, await request.body())
    except ValueError as exc:
        return native_error(400, str(exc))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec


@dataclass(frozen=True)
class SimulatorSpec:
    """A provider's stand-in: its native-wire-format simulator (an ASGI app, made on
    demand) and the environment that points the provider at a simulator served at a URL."""

    create_app: Callable[[], Any]
    env_for: Callable[[str], dict[str, str]]


def apply_patch(config: msgspec.Struct, raw: bytes) -> dict[str, Any]:
    """Merge a partial JSON update into a simulator's mutable ``config`` in place (it is
    shared with the running app); answer the patch. Not JSON, not an object, an unknown
    field or a wrong type: ``ValueError`` saying which, and ``config`` is unchanged."""
    try:
        patch = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ValueError("config patch must be JSON") from None
    if not isinstance(patch, dict):
        raise ValueError("config patch must be a JSON object")
    kind = type(config)
    try:
        merged = msgspec.convert({**msgspec.to_builtins(config), **patch}, kind)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from None
    for field in kind.__struct_fields__:
        setattr(config, field, getattr(merged, field))
    return patch
