"""Helpers for the end-to-end tests: the MiniMax simulator served for a module, a gateway
served on loopback in front of it (``create_app`` with the registry's providers, the
session's Redis), and the client's side of a job."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from litestar import Litestar

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from tests.support.servers import free_port, serve

from .conftest import KEY, PROMPT, Sim

GW_KEY = "sk-e2e-minimax-0001"
AUTH = {"Authorization": f"Bearer {GW_KEY}"}
URL = "/v1/music/generate"
MODEL = "minimax/music-2.6"


@dataclass
class Gateway:
    client: httpx.AsyncClient  # authenticated, base URL the served gateway
    app: Litestar

    @property
    def base(self) -> str:
        return str(self.client.base_url).rstrip("/")

    async def create(self, prefer: str | None = None, status: int = 200, **body: Any) -> Any:
        body.setdefault("model", MODEL)
        body.setdefault("prompt", PROMPT)
        headers = {"Prefer": prefer} if prefer else None
        r = await self.client.post(URL, json=body, headers=headers)
        assert r.status_code == status, r.text
        return r

    async def get(self, job_id: str) -> dict[str, Any]:
        r = await self.client.get(f"{URL}/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()

    async def poll(
        self, job_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 20
    ) -> list[dict[str, Any]]:
        """Every job object read until ``until`` holds (a deadline, not a fixed wait)."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            seen.append(await self.get(job_id))
            if until(seen[-1]):
                return seen
            assert time.monotonic() < deadline, f"timed out: {seen[-1]}"
            await asyncio.sleep(0.03)


@contextlib.asynccontextmanager
async def gateway(
    make_settings: Callable[..., Settings], sim: Sim, **env: str
) -> AsyncIterator[Gateway]:
    env = {
        "GATEWAY_API_KEYS": GW_KEY,
        "MINIMAX_API_KEY": KEY,
        "MINIMAX_BASE_URL": sim.url,
        "MINIMAX_CONNECT_TIMEOUT": "1",
        "MINIMAX_READ_TIMEOUT": "10",
        "GATEWAY_REFRESH_INTERVAL": "0",
        **env,
    }
    app = create_app(make_settings(**env))
    with serve(app, port=free_port()) as base:
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as client:
            yield Gateway(client, app)


def final(job: dict[str, Any]) -> bool:
    return job["status"] in ("completed", "failed")


async def download(url: str) -> httpx.Response:
    """A plain GET, no API key: the URL is the authorization."""
    async with httpx.AsyncClient(timeout=30) as c:
        return await c.get(url)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
