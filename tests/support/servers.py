"""Serve an ASGI app over real HTTP on loopback for a test (uvicorn in a thread).

Usage::

    with serve(app) as base_url:          # "http://127.0.0.1:54321"
        httpx.get(base_url + "/health")
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

from gateway.cli.demo import ThreadedServer, free_port

__all__ = ["free_port", "interrupt", "serve"]


@contextlib.contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1 in a background thread; yield its base URL; stop it."""
    server = ThreadedServer(app, port)
    try:
        yield server.start()
    finally:
        server.stop()


def interrupt(proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    """Ctrl-C a server started with ``start_new_session=True``; kill its group if it hangs."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
