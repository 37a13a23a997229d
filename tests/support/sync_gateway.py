"""A gateway process whose only provider is the synchronous echo, for tests that kill it.

Usage (the environment configures it, as for ``music-gateway serve``)::

    SYNC_DELAY=60 REDIS_URL=... python -m tests.support.sync_gateway 8123

``SYNC_DELAY`` seconds is how long each generation takes upstream.
"""

from __future__ import annotations

import asyncio
import os
import sys

import uvicorn

from gateway.api.app import create_app
from gateway.infra.settings import Settings
from providers.base import Finished, SubmitRequest
from tests.support.echo import SyncEchoOptions, SyncEchoProvider


class SlowSyncEcho(SyncEchoProvider):
    async def start(self, req: SubmitRequest[SyncEchoOptions]) -> Finished:
        await asyncio.sleep(float(os.environ.get("SYNC_DELAY", "0")))
        return await super().start(req)


def main() -> None:
    port = int(sys.argv[1])
    app = create_app(Settings.from_env(dict(os.environ)), providers=[SlowSyncEcho()])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
