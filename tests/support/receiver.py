"""A webhook receiver for tests: a raw ASGI app recording every request per path.

Usage::

    app = Receiver()
    with serve(app) as base:
        app.base = base
        url, recorder = app.add(500, 500)   # answers 500 twice, then 200
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any


class Recorder:
    """Requests to one path: (headers, body); answers ``script`` in order, then 200."""

    def __init__(self, script: tuple[int, ...] = ()) -> None:
        self.script = list(script)
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.times: list[float] = []  # when each call came (epoch seconds)
        self.lock = threading.Lock()

    def next_status(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.calls.append((headers, body))
            self.times.append(time.time())
            return self.script.pop(0) if self.script else 200

    def ids(self) -> list[str]:
        with self.lock:
            return [h["webhook-id"] for h, _ in self.calls]


class Receiver:
    """A raw ASGI app routing ``/r/{name}`` to its Recorder (404 for unknown names)."""

    def __init__(self) -> None:
        self.routes: dict[str, Recorder] = {}
        self.base = ""

    def add(self, *script: int) -> tuple[str, Recorder]:
        name = secrets.token_hex(6)
        self.routes[name] = rec = Recorder(script)
        return f"{self.base}/r/{name}", rec

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rec = self.routes.get(scope["path"].removeprefix("/r/"))
        status = rec.next_status(headers, body) if rec is not None else 404
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
