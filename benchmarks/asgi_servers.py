"""Compare ASGI servers for the gateway: uvicorn vs granian, same app, same worker count.

Serves ``benchmarks.asgi_servers:bench_app`` (the gateway with the in-process echo
provider, one completed job) under each server and drives it with wrk over loopback:
GET /health (framework floor) and GET of a completed job (auth + Redis read + encode).

    uv run python benchmarks/asgi_servers.py [--duration 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "bench-key-000001"


def _bench_app():
    from gateway.api.app import create_app
    from gateway.infra.settings import Settings
    from tests.support.echo import EchoProvider

    env = dict(os.environ)
    env.setdefault("GATEWAY_API_KEYS", KEY)
    env["GATEWAY_LOG_LEVEL"] = "warning"
    return create_app(Settings.from_env(env), providers=[EchoProvider()])


if os.environ.get("BENCH_ASGI_CHILD"):
    bench_app = _bench_app()


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "update"], check=False, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def wrk(url: str, duration: int, conns: int, threads: int = 2) -> tuple[float, float, float]:
    out = subprocess.run(
        [
            ensure_wrk(),
            f"-t{threads}",
            f"-c{conns}",
            f"-d{duration}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {KEY}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return rps, pct("50"), pct("99")


def start(server: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    target = "benchmarks.asgi_servers:bench_app"
    if server == "uvicorn":
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            target,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--loop",
            "uvloop" if _has("uvloop") else "asyncio",
        ]
    else:
        cmd = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--port",
            str(port),
            "--log-level",
            "warning",
            target,
        ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{server} did not start")


def _has(mod: str) -> bool:
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    from tests.support.servers import free_port

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    env = {
        **os.environ,
        "BENCH_ASGI_CHILD": "1",
        "REDIS_URL": redis_url,
        "GATEWAY_API_KEYS": KEY,
        "GATEWAY_REDIS_PREFIX": "bench:",
        "PYTHONPATH": str(ROOT),
    }
    for server in ("uvicorn", "granian"):
        port = free_port()
        proc = start(server, port, env)
        try:
            base = f"http://127.0.0.1:{port}"
            h = {"Authorization": f"Bearer {KEY}"}
            job = httpx.post(
                base + "/v1/music/generate", headers=h, json={"model": "echo/v1", "prompt": "bench"}
            ).json()
            while job["status"] != "completed":
                time.sleep(2.1)
                job = httpx.get(f"{base}/v1/music/generate/{job['id']}", headers=h).json()
            for name, path in (("health", "/health"), ("job", f"/v1/music/generate/{job['id']}")):
                rps, p50, p99 = wrk(base + path, args.duration, args.connections)
                print(
                    f"{server:8s} {name:7s} {rps:9.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
                )
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
