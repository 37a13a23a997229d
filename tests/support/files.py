"""A tiny file server for tests: a raw ASGI app serving registered bytes over HTTP.

Usage::

    files = FileServer()
    with serve(files) as base:
        files.base = base
        url = files.add(b"...", "audio/mpeg")     # GET url -> 200 with those bytes
        hop = files.redirect(url)                 # GET hop -> 302 to url
"""

from __future__ import annotations

import secrets
from typing import Any


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.redirects: dict[str, str] = {}
        self.requests: list[str] = []
        self.base = ""

    def add(self, body: bytes, content_type: str = "application/octet-stream") -> str:
        name = secrets.token_hex(6)
        self.files[name] = (body, content_type)
        return f"{self.base}/f/{name}"

    def redirect(self, target: str) -> str:
        name = secrets.token_hex(6)
        self.redirects[name] = target
        return f"{self.base}/r/{name}"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"]
        self.requests.append(path)
        kind, _, name = path.strip("/").partition("/")
        if kind == "f" and name in self.files:
            body, content_type = self.files[name]
            headers = [(b"content-type", content_type.encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            step = 64 * 1024
            for at in range(0, len(body), step):
                await send(
                    {"type": "http.response.body", "body": body[at : at + step], "more_body": True}
                )
            await send({"type": "http.response.body", "body": b""})
            return
        if kind == "r" and name in self.redirects:
            headers = [(b"location", self.redirects[name].encode())]
            await send({"type": "http.response.start", "status": 302, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not found"})
