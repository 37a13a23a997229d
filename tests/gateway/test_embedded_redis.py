"""Without REDIS_URL the gateway runs its own real redis-server, persisting under .data/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from gateway.store.embedded import EmbeddedRedis
from tests.conftest import TEST_KEY, app_client
from tests.support.echo import EchoProvider


def _settings(data_dir: Path) -> Settings:
    return Settings.from_env(
        {
            "GATEWAY_DATA_DIR": str(data_dir),
            "GATEWAY_API_KEYS": TEST_KEY,
            "GATEWAY_REFRESH_INTERVAL": "0",
            "GATEWAY_LOG_LEVEL": "warning",
        }
    )


async def test_job_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    app = create_app(_settings(data), providers=[EchoProvider()])
    async with app_client(app) as client:
        job = (
            await client.post("/v1/music/generate", json={"model": "echo/v1", "prompt": "x"})
        ).json()
        for _ in range(2):
            done = (await client.get(f"/v1/music/generate/{job['id']}")).json()
        assert done["status"] == "completed"
    # The server was stopped with the app: nothing listens on the socket any more.
    sock = data / "redis.sock"
    assert not EmbeddedRedis(data)._ready()
    assert (data / "appendonlydir").is_dir() or (data / "appendonly.aof").exists()

    restarted = create_app(_settings(data), providers=[EchoProvider()])
    async with app_client(restarted) as client:
        again = await client.get(f"/v1/music/generate/{job['id']}")
        assert again.status_code == 200
        assert again.json() == done
    assert not sock.exists() or not EmbeddedRedis(data)._ready()


def test_second_process_reuses_running_server(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path)
    url = first.start()
    try:
        second = EmbeddedRedis(tmp_path)
        assert second.start() == url
        assert second.process is None  # reused, not a second server on the same files
    finally:
        first.stop()
    assert first.process is None


def test_cli_keys_create_list_revoke(tmp_path: Path, redis_url: str) -> None:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "GATEWAY_REDIS_PREFIX": f"cli{os.getpid()}:",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", "keys", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    created = run("create", "--name", "ci-bot", "--rpm", "30")
    assert created.returncode == 0, created.stderr
    fields = dict(line.split(":", 1) for line in created.stdout.strip().splitlines())
    key_id, raw = fields["id"].strip(), fields["key"].strip()
    secret = fields["webhook signing secret"].strip()
    assert raw.startswith("mgw_") and key_id.startswith("key_")
    Webhook(secret)  # a valid Standard Webhooks secret
    assert "not shown again" in created.stderr

    listed = run("list")
    assert f"{key_id}\tactive" in listed.stdout
    assert "rpm=30\tmax_inflight=default" in listed.stdout
    assert raw not in listed.stdout and secret not in listed.stdout

    limited = run("limits", key_id, "--max-inflight", "3")
    assert limited.returncode == 0 and "rpm=None\tmax_inflight=3" in limited.stdout
    rotated = run("webhook-secret", key_id)
    assert rotated.returncode == 0
    new_secret = rotated.stdout.split(":", 1)[1].strip()
    assert new_secret.startswith("whsec_") and new_secret != secret
    assert run("webhook-secret", "key_doesnotexist").returncode == 1

    assert run("revoke", key_id).returncode == 0
    assert f"{key_id}\trevoked" in run("list").stdout
    missing = run("revoke", "key_doesnotexist")
    assert missing.returncode == 1


async def test_cli_key_works_against_the_app(make_settings: Any) -> None:
    settings = make_settings()
    app = create_app(settings, providers=[EchoProvider()])
    async with app_client(app, key=None) as client:
        raw, _ = await app.state.store.keys.create_key("from-cli")
        r = await client.get("/v1/models", headers={"Authorization": f"Bearer {raw}"})
        assert r.status_code == 200
