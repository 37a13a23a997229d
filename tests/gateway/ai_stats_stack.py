"""Every registered provider's simulator on loopback, and a gateway served in front of
them: what a client written for AI Stats talks to in these tests.

Usage::

    with simulators() as sims:                      # {provider: (base URL, env)}
        async with gateway(make_settings, sims, **env) as client: ...

MusicGPT, TemPolor, Suno and ElevenLabs run with short latencies (jobs finish in well under a
second); any other registered provider runs its first-run demo simulator.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from providers.registry import SIMULATORS
from tests.support.servers import free_port, serve

GW_KEY = "sk-ai-stats-client-0001"


def _fast(name: str) -> Any:
    if name == "musicgpt":
        from providers.musicgpt.simulator import SimulatorConfig, create_simulator

        return create_simulator(SimulatorConfig(queue_seconds=0.1, progress_seconds=0.2))
    if name == "tempolor":
        from providers.tempolor.simulator import SimulatorConfig as TConfig
        from providers.tempolor.simulator import create_simulator as tempolor

        return tempolor(TConfig(queue_seconds=0.1, generate_seconds=0.2))
    if name == "elevenlabs":
        from providers.elevenlabs.simulator import SimulatorConfig as EConfig
        from providers.elevenlabs.simulator import create_simulator as elevenlabs

        return elevenlabs(EConfig(latency=0.05, default_length_ms=1000))
    if name == "suno":
        from providers.suno.simulator import SimulatorConfig as SConfig
        from providers.suno.simulator import create_simulator as suno

        return suno(SConfig(text_seconds=0.1, first_seconds=0.2, complete_seconds=0.3))
    return SIMULATORS[name].create_app()


@contextlib.contextmanager
def simulators() -> Iterator[dict[str, tuple[str, dict[str, str]]]]:
    with contextlib.ExitStack() as stack:
        sims = {}
        for name, spec in SIMULATORS.items():
            url = stack.enter_context(serve(_fast(name)))
            sims[name] = (url, spec.env_for(url))
        yield sims


def credentials(sims: dict[str, tuple[str, dict[str, str]]]) -> list[str]:
    """Every provider credential the gateway is configured with (never to be echoed)."""
    secret_words = ("KEY", "TOKEN", "SECRET")
    return [
        value
        for _, env in sims.values()
        for name, value in env.items()
        if any(w in name for w in secret_words)
    ]


@contextlib.asynccontextmanager
async def gateway(
    make_settings: Callable[..., Settings],
    sims: dict[str, tuple[str, dict[str, str]]],
    **env: str,
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway served on loopback (its own public URL: callbacks reach it)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    merged: dict[str, str] = {}
    for _, sim_env in sims.values():
        merged.update(sim_env)
    merged.update(
        {
            "GATEWAY_API_KEYS": GW_KEY,
            "GATEWAY_PUBLIC_URL": base,
            "GATEWAY_REFRESH_INTERVAL": "0",
            "GATEWAY_SYNC_WAIT": "20",
            "GATEWAY_WEBHOOK_ALLOW_PRIVATE": "true",
            **env,
        }
    )
    app = create_app(make_settings(**merged))
    with serve(app, port=port):
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {GW_KEY}"}, timeout=30
        ) as client:
            yield client
