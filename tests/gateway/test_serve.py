"""`music-gateway serve` as a newcomer runs it: embedded Redis, real HTTP, clean stop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from gateway.store.embedded import EmbeddedRedis
from providers.registry import REGISTRY
from tests.support.servers import free_port, interrupt
from tests.support.waiting import wait_until


def test_serve_with_embedded_redis_and_clean_stop(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "GATEWAY_API_KEYS"}} | {
        "GATEWAY_DATA_DIR": str(data),
        "GATEWAY_API_KEYS": "sk-serve-test-1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                if httpx.get(base + "/ready", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            return False

        wait_until(ready, timeout=30, what="the gateway ready")
        r = httpx.get(base + "/v1/models", headers={"Authorization": "Bearer sk-serve-test-1"})
        models = [m for r in REGISTRY.values() for m in r.models]
        assert r.status_code == 200 and len(r.json()["data"]) == len(models) == 21
        assert EmbeddedRedis(data)._ready()
    finally:
        interrupt(proc)
    # Nothing left running: the embedded Redis went down with the gateway.
    assert not EmbeddedRedis(data)._ready()
