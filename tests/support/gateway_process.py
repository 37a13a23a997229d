"""A whole gateway in its own process: the full app, its providers the registry's, each
configured from the environment (as ``music-gateway serve`` would, on uvicorn).

Usage::

    env = {**os.environ, "REDIS_URL": redis_url, "ELEVENLABS_BASE_URL": sim_url}
    proc = start_gateway(env, port, tmp / "gateway.log")
    ...                                      # http://127.0.0.1:{port}, /ready answered 200
    stop_gateway(proc)

    procs = [spawn_gateway(env, p, log) for p in ports]   # several, starting side by side
    for proc, p in zip(procs, ports): wait_ready(proc, p, log)

or, as a module (what ``start_gateway`` runs)::

    REDIS_URL=... python -m tests.support.gateway_process 8123
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import uvicorn

from gateway.api.app import create_app
from gateway.infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def start_gateway(
    env: dict[str, str], port: int, log: Path, timeout: float = 30.0
) -> subprocess.Popen[bytes]:
    """Start the process on ``port`` (stderr to ``log``) and wait until ``/ready`` is 200."""
    proc = spawn_gateway(env, port, log)
    wait_ready(proc, port, log, timeout)
    return proc


def spawn_gateway(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start the process on ``port`` (stderr to ``log``, kept for a failure's eyes)."""
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.gateway_process", str(port)],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def wait_ready(
    proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 30.0
) -> subprocess.Popen[bytes]:
    """Wait until the process answers ``/ready`` with 200; stop it and raise (its log's
    tail) if it exits or is not ready within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_gateway(proc)
            raise RuntimeError(f"gateway did not start: {log.read_text()[-2000:]}")
        time.sleep(0.05)  # polling interval of the readiness wait, not a synchronisation


def stop_gateway(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate (SIGTERM) the process; kill it if it does not stop in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def main() -> None:
    port = int(sys.argv[1])
    app = create_app(Settings.from_env(dict(os.environ)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
