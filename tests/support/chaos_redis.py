"""The Redis a chaos test runs on, and the one way it is disturbed: a server process
killed (SIGKILL) and started again on its own append-only file.

``SingleRedis``: one redis-server of the suite's binary, on a loopback port, with
``appendonly yes`` and ``appendfsync always`` (as the gateway's embedded Redis), in a
folder of its own. A topology answers the environment that points a gateway at it
(``env()``) and restarts one of its servers (``restart_one()``: the master of a cluster).

Usage::

    with SingleRedis(tmp_path / "redis") as redis:
        env = {**redis.env(), ...}          # REDIS_URL=...
        down = redis.restart_one()           # seconds it refused connections
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Protocol

from gateway.store.embedded import EmbeddedRedis
from tests.support.servers import free_port

__all__ = ["ChaosRedis", "SingleRedis"]


class ChaosRedis(Protocol):
    def env(self) -> dict[str, str]: ...

    def restart_one(self) -> float: ...


class SingleRedis:
    """One redis-server with an fsynced append-only file (module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.server = EmbeddedRedis(folder, persist=True, port=free_port())

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.server.url}

    def restart_one(self) -> float:
        """Kill the server (SIGKILL: no shutdown, no last write) and start it again on
        the same port and files; answers how long it was down."""
        proc = self.server.process
        assert proc is not None and proc.poll() is None, "the server is not running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        down = time.monotonic()
        self.server.process = None
        self.server.start()  # replays the append-only file before it answers PING
        return time.monotonic() - down

    def __enter__(self) -> SingleRedis:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
