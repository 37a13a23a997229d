"""A door in front of a provider simulator: it records every request that carries a
marker, which gateway process sent it, and what the simulator answered.

Each gateway process is pointed at the simulator through its own path prefix
(``{door}/via/{replica}``); the door strips the prefix before the simulator sees the
request, so the simulator works unchanged and every call is known by its sender. A
request body containing a marker (``chaos-`` and 8 hex digits, e.g. in the prompt) is
recorded as a ``Call``: the replica, the path, the marker, whether it is still in flight,
the status answered and the first bytes of the answer.

Usage::

    door = Door(SIMULATORS["elevenlabs"].create_app())
    with serve(door) as url:
        env = SIMULATORS["elevenlabs"].env_for(f"{url}/via/a")   # replica "a"
        ...
        door.in_flight("a")             # calls from replica "a" not answered yet
        door.calls_for("chaos-0a1b2c3d")
        door.doubled()                  # markers sent more than once (see ``refused``)
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MARKER", "Call", "Door", "marker", "refused"]

MARKER = re.compile(rb"chaos-[0-9a-f]{8}")
HEAD = 512  # bytes of each answer kept

#: Answers that say for certain that nothing was created, after which the gateway may
#: send the same request again: a 429, sunoapi.org's rate limits (``code`` 405 or 430
#: inside an HTTP 200) and MiniMax's rate and plan limits (``base_resp.status_code`` 1002
#: or 2056 inside an HTTP 200).
_REFUSED_IN_BODY = re.compile(rb'"(?:code|status_code)"\s*:\s*(?:405|430|1002|2056)\b')


def marker(n: int) -> str:
    """The ``n``-th marker (unique per run when ``n`` is)."""
    return f"chaos-{n:08x}"


def refused(status: int | None, head: bytes) -> bool:
    """Whether an answer certainly created nothing upstream (see ``_REFUSED_IN_BODY``)."""
    return status == 429 or (status == 200 and _REFUSED_IN_BODY.search(head) is not None)


@dataclass
class Call:
    replica: str | None
    method: str
    path: str
    marker: str
    started: float = field(default_factory=time.monotonic)
    status: int | None = None
    head: bytes = b""
    done: bool = False

    @property
    def refused(self) -> bool:
        return refused(self.status, self.head)


class Door:
    """The ASGI wrapper (module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: list[Call] = []
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ queries

    def snapshot(self) -> list[Call]:
        with self.lock:
            return list(self.calls)

    def calls_for(self, mark: str) -> list[Call]:
        return [c for c in self.snapshot() if c.marker == mark]

    def in_flight(self, replica: str) -> list[Call]:
        return [c for c in self.snapshot() if c.replica == replica and not c.done]

    def sends(self) -> dict[str, int]:
        """Marker -> calls that may have created something upstream (not ``refused``)."""
        counts: dict[str, int] = {}
        for call in self.snapshot():
            if call.method == "POST" and not call.refused:
                counts[call.marker] = counts.get(call.marker, 0) + 1
        return counts

    def doubled(self) -> dict[str, int]:
        """Markers sent upstream more than once although the first may have created a job."""
        return {m: n for m, n in self.sends().items() if n > 1}

    # --------------------------------------------------------------------- ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, replica = scope["path"], None
        if path.startswith("/via/"):
            replica, _, rest = path.removeprefix("/via/").partition("/")
            path = "/" + rest
            scope = {**scope, "path": path, "raw_path": path.encode()}
        if scope["method"] != "POST" or path.startswith("/__sim__"):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            body += message.get("body", b"")
            more = message.get("more_body", False)
        found = MARKER.search(body)
        if found is None:
            await self.app(scope, _replay(body, receive), send)
            return
        call = Call(replica, scope["method"], path, found.group().decode())
        with self.lock:
            self.calls.append(call)

        async def recording(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                call.status = message["status"]
            elif message["type"] == "http.response.body" and len(call.head) < HEAD:
                call.head += message.get("body", b"")[: HEAD - len(call.head)]
            await send(message)

        try:
            await self.app(scope, _replay(body, receive), recording)
        finally:
            call.done = True


def _replay(body: bytes, receive: Any) -> Any:
    """``receive`` that hands the body read once to the app, then the real messages."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> dict[str, Any]:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
