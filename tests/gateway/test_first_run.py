"""The README's first run: `music-gateway serve` on embedded defaults, simulators and all.

Starts the real console script as a subprocess with no Redis URL, no client key and no
provider credentials, follows the printed curl example to a completed job with audio
bytes for both providers, then Ctrl-C: nothing may be left running.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from gateway.store.embedded import EmbeddedRedis
from providers.registry import REGISTRY
from tests.support.servers import free_port, interrupt
from tests.support.waiting import wait_until

SCRIPT = Path(sys.executable).parent / "music-gateway"
STRIP = {
    "REDIS_URL",
    "GATEWAY_API_KEYS",
    "MUSICGPT_API_KEY",
    "USEAPI_TOKEN",
    "ELEVENLABS_API_KEY",
    "SUNO_API_KEY",
    "GATEWAY_PUBLIC_URL",
}


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_first_run_reaches_playable_audio_and_stops_clean(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in STRIP}
    env["GATEWAY_DATA_DIR"] = str(tmp_path / ".data")
    proc = subprocess.Popen(
        [str(SCRIPT), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")))
    reader.daemon = True
    reader.start()
    started = time.monotonic()

    def banner() -> bool:
        assert proc.poll() is None, "".join(lines)
        return any("Ctrl-C stops everything" in ln for ln in list(lines))

    try:
        wait_until(banner, timeout=30, what="the first-run banner")
        out = "".join(lines)
        key = re.search(r"API key: (\S+)", out).group(1)
        curl = next(ln for ln in lines if "curl -s" in ln and "-d '" in ln)
        url = re.search(r"curl -s (\S+)", curl).group(1)
        body = json.loads(re.search(r"-d '(.+)'", curl).group(1))
        sim_ports = [int(p) for p in re.findall(r"at http://127\.0\.0\.1:(\d+)", out)]
        assert len(sim_ports) == len(REGISTRY)  # one simulator per provider without a key
        headers = {"Authorization": f"Bearer {key}"}

        # The printed example must work as printed (the server may still be warming up).
        def ready() -> bool:
            try:
                return httpx.get(url.replace("/v1/music/generate", "/ready"), timeout=1).is_success
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=30, what="the gateway ready")
        for model in (body["model"], "tempolor/v4.8", "suno/v4.5", "elevenlabs/music_v2"):
            created = httpx.post(url, json={**body, "model": model}, headers=headers)
            assert created.status_code == 200, created.text + "".join(lines)
            job = created.json()
            # A provider that keeps jobs answers at once; ElevenLabs' answer is the audio,
            # which the create waits for (GATEWAY_SYNC_WAIT).
            expected = (
                {"completed"} if model.startswith("elevenlabs/") else {"queued", "in_progress"}
            )
            assert job["status"] in expected, job

            def final(job_id: str = job["id"]) -> dict | None:
                polled = httpx.get(f"{url}/{job_id}", headers=headers).json()
                return polled if polled["status"] in {"completed", "failed"} else None

            left = 60 - (time.monotonic() - started)  # a newcomer's first minute, all told
            job = wait_until(final, timeout=max(left, 0), interval=0.5, what=f"{model} final")
            assert job["status"] == "completed", job
            for output in job["output"]:
                audio = httpx.get(output["audio_url"])
                assert audio.status_code == 200
                assert (
                    audio.content[:3] in {b"ID3", b"\xff\xfb\x90"} or audio.content[:4] == b"RIFF"
                )
        assert time.monotonic() - started < 60  # a newcomer's first minute
    finally:
        interrupt(proc)
    assert proc.returncode == 0, "".join(lines)
    assert not _listening(port)
    for p in sim_ports:
        assert not _listening(p)
    assert not EmbeddedRedis(tmp_path / ".data")._ready()


def test_simulators_only_for_providers_without_keys(tmp_path: Path) -> None:
    from gateway.cli.demo import start_demo

    env = {"MUSICGPT_API_KEY": "real-key-123456", "GATEWAY_API_KEYS": "sk-mine"}
    demo = start_demo(env, port=8000, data_dir=tmp_path)
    try:
        assert list(demo.simulators) == ["tempolor", "suno", "elevenlabs"]
        assert env["SUNO_BASE_URL"] == demo.simulators["suno"].url  # SUNO_API_KEY unset
        assert env["MUSICGPT_API_KEY"] == "real-key-123456" and "MUSICGPT_BASE_URL" not in env
        assert env["USEAPI_BASE_URL"] == demo.simulators["tempolor"].url + "/v1"
        assert env["GATEWAY_API_KEYS"] == "sk-mine" and demo.api_key is None
    finally:
        demo.stop()

    off = {"GATEWAY_SIMULATORS": "off"}
    assert start_demo(off, port=8000, data_dir=tmp_path).simulators == {}
    assert off == {"GATEWAY_SIMULATORS": "off"}
