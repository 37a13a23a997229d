"""Storing a large stream never holds it in memory: 200 MB through ``put`` (a folder
store) and back out through ``open``, with Python's allocations traced (``tracemalloc``)
and the process's peak resident memory (Linux: ``VmHWM``, reset first) watched."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx

from gateway.infra.settings import Settings
from gateway.store.artefacts import ArtefactStore
from gateway.store.signing import UrlSigner

TOTAL = 200 * 1024 * 1024
CHUNK = 64 * 1024
MB = 1024 * 1024


async def lazily(total: int) -> AsyncIterator[bytes]:
    """``total`` bytes, made one fresh chunk at a time."""
    for i in range(total // CHUNK):
        yield bytes((i % 251,)) * CHUNK


def _status_kb(name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        return False
    return True


async def test_a_200_mb_stream_is_stored_in_bounded_memory(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(GATEWAY_ARTEFACT_STORE=f"file://{tmp_path}/big")
    async with httpx.AsyncClient() as http:
        store = ArtefactStore.from_settings(settings, signer=UrlSigner(b"k"), http=http)
        rss_watched = _reset_peak_rss()
        rss_before = _status_kb("VmRSS")
        tracemalloc.start()
        try:
            stored = await store.put("mus_big/0.wav", lazily(TOTAL), "audio/wav")
            _, put_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            opened = await store.open("mus_big/0.wav")
            digest, read = hashlib.sha256(), 0
            async for chunk in opened.chunks:
                digest.update(chunk)
                read += len(chunk)
            _, open_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        rss_peak = _status_kb("VmHWM")
    assert stored.size == read == TOTAL
    assert digest.hexdigest() == stored.sha256
    assert (tmp_path / "big" / "mus_big" / "0.wav").stat().st_size == TOTAL
    assert put_peak < 24 * MB, f"put: Python peak {put_peak / MB:.1f} MB"
    assert open_peak < 16 * MB, f"open: Python peak {open_peak / MB:.1f} MB"
    if rss_watched and rss_before is not None and rss_peak is not None:
        growth = (rss_peak - rss_before) * 1024
        assert growth < 64 * MB, f"peak RSS grew {growth / MB:.1f} MB for {TOTAL / MB:.0f} MB"
