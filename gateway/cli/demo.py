"""First run on embedded defaults: provider simulators on loopback when no keys are set.

``music-gateway serve`` calls ``start_demo`` before serving. For every registered
provider whose credential is unset it starts that provider's simulator on a free
loopback port and points the provider at it (through the environment the workers
inherit); with real credentials set nothing starts. The caller stops everything with
``Demo.stop()``.

Usage::

    demo = start_demo(os.environ, port=8000, data_dir=Path(".data"))
    print(demo.banner("http://127.0.0.1:8000"))
    ...
    demo.stop()
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from providers.registry import REGISTRY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadedServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=timeout)


@dataclass
class Demo:
    simulators: dict[str, ThreadedServer] = field(default_factory=dict)
    api_key: str | None = None
    example_model: str = ""  # a model of a simulated provider, for the banner

    def stop(self) -> None:
        for server in self.simulators.values():
            server.stop()

    def banner(self, base_url: str) -> str:
        if not self.simulators:
            return f"music-gateway on {base_url}"
        key = self.api_key or "<your key>"
        sims = ", ".join(f"{n} at {s.url}" for n, s in self.simulators.items())
        return (
            f"\nmusic-gateway on {base_url}  (demo: no provider keys set, simulators: {sims})\n"
            f"API key: {key}\n\n"
            "Try it:\n"
            f"  curl -s {base_url}/v1/music/generate -H 'Authorization: Bearer {key}' "
            "-H 'Content-Type: application/json' "
            f'-d \'{{"model": "{self.example_model}", "prompt": "a calm lofi beat"}}\'\n'
            f"  curl -s {base_url}/v1/music/generate/<id> -H 'Authorization: Bearer {key}'\n"
            f"Docs: {base_url}/docs    Ctrl-C stops everything.\n"
        )


def _demo_key(data_dir: Path) -> str:
    """The demo key, kept under the data dir so it survives restarts."""
    path = data_dir / "demo-api-key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = "mgw_demo_" + secrets.token_urlsafe(24)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def start_demo(env: MutableMapping[str, str], *, port: int, data_dir: Path) -> Demo:
    """Start simulators for providers without credentials; update ``env`` to use them.

    ``GATEWAY_SIMULATORS=off`` (set in the container image) starts none: a provider
    without credentials then stays unconfigured (503 ``provider_not_configured``).
    """
    demo = Demo()
    mode = (env.get("GATEWAY_SIMULATORS") or "auto").strip().lower()
    if mode not in {"auto", "off"}:
        raise ValueError("GATEWAY_SIMULATORS must be auto or off")
    if mode == "off":
        return demo
    for name, registration in REGISTRY.items():
        if registration.required and all(env.get(n) for n in registration.required):
            continue  # real credentials: the real provider, no simulator
        server = ThreadedServer(registration.simulator.create_app())
        demo.simulators[name] = server
        env.update(registration.simulator.env_for(server.start()))
        demo.example_model = demo.example_model or registration.models[0].id
    if demo.simulators:
        # Simulators call back on loopback; a client key is made if none is configured.
        env.setdefault("GATEWAY_PUBLIC_URL", f"http://127.0.0.1:{port}")
        if not env.get("GATEWAY_API_KEYS"):
            demo.api_key = _demo_key(data_dir)
            env["GATEWAY_API_KEYS"] = demo.api_key
        # A simulator has no quota to protect: no budget for it unless one is configured.
        if not env.get("GATEWAY_UPSTREAM_BUDGETS"):
            env["GATEWAY_UPSTREAM_BUDGETS"] = ",".join(f"{n}=0" for n in demo.simulators)
    return demo
