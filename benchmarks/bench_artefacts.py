"""Synchronous generations and stored artefacts, measured in one run.

1. Memory: ten concurrent ElevenLabs generations of a 10-minute WAV (PCM from the
   simulator, about 53 MB each, wrapped and streamed into the local artefact store). The
   gateway's RSS (granian, one worker) is sampled every 0.25 s; the figure is its peak
   over the idle RSS before the burst. Target: <= 50 MiB.
2. Download throughput: one of those stored WAV files fetched through the gateway's
   signed artefact route, and the same file through a plain static file server (Litestar's
   static files router under granian), interleaved, ``--rounds`` times each. MB/s of
   each and the ratio.

Everything runs on loopback: a throwaway redis-server, the ElevenLabs simulator, the
static server and the gateway, each under granian in its own process.

Usage::

    python3 -m uv run python benchmarks/bench_artefacts.py [--rounds 5] [--jobs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_apps import ELEVENLABS_KEY  # noqa: E402
from benchmarks.bench_stack import RssSampler, Served, free_port  # noqa: E402
from gateway.store.embedded import EmbeddedRedis  # noqa: E402

KEY = "sk-bench-artefacts-0001"
MIB = 1024 * 1024
TARGET_MIB = 50


async def generate(gateway: str, jobs: int) -> list[dict]:
    body = {"model": "elevenlabs/music_v2", "prompt": "a long calm drone", "duration": 600}
    body["format"] = "wav"
    headers = {"Authorization": f"Bearer {KEY}", "Prefer": "wait=900"}
    async with httpx.AsyncClient(timeout=1000) as client:
        answers = await asyncio.gather(
            *(
                client.post(f"{gateway}/v1/music/generate", json=body, headers=headers)
                for _ in range(jobs)
            )
        )
    return [a.json() for a in answers]


def download(url: str) -> tuple[int, float]:
    began = time.perf_counter()
    size = 0
    with httpx.stream("GET", url, timeout=120) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes(1 << 20):
            size += len(chunk)
    return size, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-artefacts-") as tmp_dir:
        tmp = Path(tmp_dir)
        redis = EmbeddedRedis(tmp / "redis", persist=False, port=free_port())
        redis_url = redis.start()
        served: list[Served] = []
        try:
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            sim = Served("elevenlabs", "benchmarks.bench_apps:elevenlabs", 1, env, tmp)
            served.append(sim)
            data = tmp / "data"
            gateway_env = {
                **env,
                "REDIS_URL": redis_url,
                "GATEWAY_DATA_DIR": str(data),
                "GATEWAY_API_KEYS": KEY,
                "GATEWAY_SIMULATORS": "off",
                "GATEWAY_RATE_LIMIT_RPM": "0",
                "GATEWAY_MAX_INFLIGHT_JOBS": "0",
                "GATEWAY_CONCURRENCY": f"elevenlabs={args.jobs}",
                "GATEWAY_LOG_FORMAT": "json",
                "ELEVENLABS_API_KEY": ELEVENLABS_KEY,
                "ELEVENLABS_BASE_URL": sim.url,
            }
            gateway = Served("gateway", "gateway.api.asgi:app", 1, gateway_env, tmp)
            served.append(gateway)
            static_env = {**env, "BENCH_STATIC_DIR": str(data / "artefacts")}
            static = Served("static", "benchmarks.bench_apps:static", 1, static_env, tmp)
            served.append(static)
            sim.wait_ready("/__sim__/stats")
            gateway.wait_ready("/health")
            static.wait_ready("/files/none")
            # Warm up: one short job, so imports and pools are in place before "idle".
            asyncio.run(generate_short(gateway.url))
            time.sleep(1.0)
            idle, _ = gateway.rss()
            sampler = RssSampler(gateway)
            began = time.monotonic()
            with sampler.sampling():
                jobs = asyncio.run(generate(gateway.url, args.jobs))
            took = time.monotonic() - began
            statuses = [j["status"] for j in jobs]
            growth = (sampler.peak_total - idle) / MIB
            verdict = "PASS" if growth <= TARGET_MIB and set(statuses) == {"completed"} else "MISS"
            print(f"music-gateway artefact benchmark: {os.cpu_count()} cores")
            done = statuses.count("completed")
            print(
                f"1. {args.jobs} concurrent 10-minute WAV generations: {done}"
                f"/{len(jobs)} completed in {took:.1f} s; gateway RSS idle {idle / MIB:.0f} MiB, "
                f"peak {sampler.peak_total / MIB:.0f} MiB, growth {growth:.1f} MiB "
                f"(target <= {TARGET_MIB} MiB) {verdict}"
            )
            url = jobs[0]["output"][0]["audio_url"]
            key = url.split("/v1/artefacts/", 1)[1].split("?", 1)[0]
            plain = f"{static.url}/files/{key}"
            gw_rates, static_rates = [], []
            size = 0
            for _ in range(args.rounds):
                size, seconds = download(url)
                gw_rates.append(size / seconds / 1e6)
                size_s, seconds = download(plain)
                assert size_s == size, (size_s, size)
                static_rates.append(size / seconds / 1e6)
            gw, st = max(gw_rates), max(static_rates)
            print(
                f"2. download of one {size / 1e6:.0f} MB artefact, best of {args.rounds}: "
                f"gateway signed route {gw:.0f} MB/s, static file server {st:.0f} MB/s, "
                f"ratio {gw / st:.2f}"
            )
        finally:
            for s in reversed(served):
                s.stop()
            redis.stop()
    return 0


async def generate_short(gateway: str) -> None:
    body = {"model": "elevenlabs/music_v2", "prompt": "warm up", "duration": 3}
    headers = {"Authorization": f"Bearer {KEY}", "Prefer": "wait=60"}
    async with httpx.AsyncClient(timeout=120) as client:
        r = await client.post(f"{gateway}/v1/music/generate", json=body, headers=headers)
        assert r.json()["status"] == "completed", r.text


if __name__ == "__main__":
    raise SystemExit(main())
