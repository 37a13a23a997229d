"""The client side of a chaos test: creates and polls over several gateway processes, as
a careful client makes them while processes die and Redis restarts.

Every create carries an ``Idempotency-Key`` and a marker (``tests/support/door.py``) in
its prompt. A create whose connection dies (its process was killed), or that meets 503
``store_unavailable``, a 500 or a 409 with ``Retry-After`` (the key's first request is
still under way), is sent again with the same key, to any live process, until it gets
another answer: a 2xx (the job is *accepted*) or a final refusal (kept with its status
and code). How long a key answered 409 is its *409 window*.

Usage::

    replicas = Replicas({"a": "http://127.0.0.1:8001", "b": ..., "c": ...})
    load = Load(replicas, webhook_url=hook)
    stop = threading.Event()
    threads = load.start(stop, workers=5)     # creates and polls until stop is set
    replicas.kill("a")                        # no request goes to "a" any more
    load.submit(load.order("musicgpt"), first="a")   # one create, on "a" first
    jobs = load.settle(deadline)              # every accepted job, polled until final
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.door import marker

__all__ = ["FINAL", "MODELS", "SYNC", "Load", "Order", "Replicas"]

URL = "/v1/music/generate"
FINAL = ("completed", "failed")
#: A model per provider, and the body fields it needs besides its prompt.
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "musicgpt": ("musicgpt/v7", {}),
    "tempolor": ("tempolor/v4.8", {}),
    "suno": ("suno/v4.5", {}),
    "elevenlabs": ("elevenlabs/music_v1", {}),
    "minimax": ("minimax/music-2.6", {"instrumental": True}),
}
SYNC = ("elevenlabs", "minimax")
PAUSE = 0.2  # a client's pause before it tries again (and the 409 window's resolution)
CREATE_BOUND = 60.0  # seconds a client keeps trying one create


class Replicas:
    """Gateway processes by name; a killed one gets no more requests."""

    def __init__(self, bases: dict[str, str]) -> None:
        self.bases = dict(bases)
        self.dead: set[str] = set()
        self.rng = random.Random(17)
        self.lock = threading.Lock()

    def kill(self, name: str) -> None:
        with self.lock:
            self.dead.add(name)

    def pick(self) -> str:
        with self.lock:
            return self.rng.choice([n for n in self.bases if n not in self.dead])


@dataclass
class Order:
    """One create as the client tries it, and what became of it."""

    n: int
    provider: str
    key: str
    marker: str
    body: dict[str, Any]
    prefer: str | None
    job_id: str | None = None
    answer: int | None = None  # the last HTTP status answered (None: never answered)
    error: str | None = None  # the refusal's ``error`` code
    tries: int = 0
    answered: float | None = None  # when the final answer came (monotonic)
    first_409: float | None = None
    after_409: float | None = None  # the first answer that was not a 409, after some
    statuses: list[str] = field(default_factory=list)  # as the client saw them, in order

    @property
    def accepted(self) -> bool:
        return self.job_id is not None

    @property
    def window_409(self) -> float:
        if self.first_409 is None:
            return 0.0
        return (self.after_409 or time.monotonic()) - self.first_409

    def saw(self, job: dict[str, Any]) -> None:
        if not self.statuses or self.statuses[-1] != job["status"]:
            self.statuses.append(job["status"])


class Load:
    """Creates and polls (module docstring)."""

    def __init__(self, replicas: Replicas, *, webhook_url: str, token: str) -> None:
        self.replicas = replicas
        self.webhook_url = webhook_url
        self.auth = {"Authorization": f"Bearer {token}"}
        self.http = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=64))
        self.orders: list[Order] = []
        self.unexpected: list[str] = []  # answers no client should get, even now
        self.store_unavailable = 0  # 503s while Redis restarted (the outage, as felt)
        self.internal_errors = 0  # 500s (tried again; the test reads the gateways' logs)
        self.crashes: list[BaseException] = []  # a worker thread's end by an exception
        self.counter = itertools.count(1)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    def url(self, name: str) -> str:
        return self.replicas.bases[name] + URL

    # ------------------------------------------------------------------ creates

    def order(self, provider: str) -> Order:
        n = next(self.counter)
        model, extra = MODELS[provider]
        mark = marker(n)
        words = "failme " if n % 7 == 0 and provider in ("musicgpt", "suno") else ""
        prompt = f"{mark} {words}a steady groove for a chaos drill"
        body = {
            "model": model,
            "prompt": prompt,
            "webhook_url": self.webhook_url,
            "metadata": {"n": str(n)},
            **extra,
        }
        prefer = ("wait=3" if n % 3 == 0 else "respond-async") if provider in SYNC else None
        order = Order(n, provider, f"chaos-key-{n}", mark, body, prefer)
        with self.lock:
            self.orders.append(order)
        return order

    def submit(self, order: Order, *, first: str | None = None) -> Order:
        """Try ``order`` until it is accepted or refused (module docstring)."""
        headers = {**self.auth, "Idempotency-Key": order.key}
        if order.prefer:
            headers["Prefer"] = order.prefer
        end = time.monotonic() + CREATE_BOUND
        name = first
        while time.monotonic() < end:
            name = name or self.replicas.pick()
            order.tries += 1
            try:
                resp = self.http.post(self.url(name), json=order.body, headers=headers)
            except httpx.TransportError:
                name = None  # its process died: another one
                time.sleep(PAUSE)
                continue
            name = None
            code = _error(resp)
            if (
                (resp.status_code == 409 and "retry-after" in resp.headers)
                or (resp.status_code == 503 and code == "store_unavailable")
                or resp.status_code == 500  # safe to try again: the key replays the job
            ):
                if resp.status_code == 409 and order.first_409 is None:
                    order.first_409 = time.monotonic()
                self.store_unavailable += resp.status_code == 503
                self.internal_errors += resp.status_code == 500
                time.sleep(PAUSE)
                continue
            if order.first_409 is not None:
                order.after_409 = time.monotonic()
            order.answer, order.answered = resp.status_code, time.monotonic()
            if resp.is_success:
                job = resp.json()
                order.job_id = job["id"]
                order.saw(job)
            else:
                order.error = code
            return order
        order.error = "client_gave_up"
        return order

    def accepted_since(self, moment: float) -> int:
        """Creates accepted with an answer that came after ``moment`` (monotonic)."""
        with self.lock:
            orders = list(self.orders)
        return sum(o.accepted and (o.answered or 0) > moment for o in orders)

    # -------------------------------------------------------------------- polls

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The job as any live process answers it; None when it is unknown (404). A 503
        (Redis restarting) or a dead process is tried again elsewhere; any other answer
        is kept in ``unexpected``."""
        end = time.monotonic() + CREATE_BOUND
        while time.monotonic() < end:
            try:
                where = self.url(self.replicas.pick())
                resp = self.http.get(f"{where}/{job_id}", headers=self.auth)
            except httpx.TransportError:
                time.sleep(PAUSE)
                continue
            if resp.status_code == 200:
                return resp.json()
            if resp.status_code == 404:
                return None
            if resp.status_code not in (500, 503):
                self.unexpected.append(f"GET {job_id}: {resp.status_code} {resp.text[:300]}")
            self.store_unavailable += resp.status_code == 503
            self.internal_errors += resp.status_code == 500
            time.sleep(PAUSE)
        raise AssertionError(f"{job_id}: no answer from any process for {CREATE_BOUND} s")

    def poll(self, order: Order, times: int) -> None:
        for _ in range(times):
            job = self.get(order.job_id) if order.job_id else None
            if job is None:
                return
            order.saw(job)
            if job["status"] in FINAL:
                return
            time.sleep(0.3)

    def settle(self, deadline: float) -> dict[str, dict[str, Any] | None]:
        """Every accepted job polled until final or ``deadline`` (monotonic): the last
        answer of each (None: the job is unknown)."""
        last: dict[str, dict[str, Any] | None] = {}
        pending = [o for o in self.orders if o.accepted]
        while pending:
            left = []
            for order in pending:
                assert order.job_id is not None
                job = last[order.job_id] = self.get(order.job_id)
                if job is None:
                    continue
                order.saw(job)
                if job["status"] not in FINAL:
                    left.append(order)
            pending = left
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        return last

    # ------------------------------------------------------------------ workers

    def start(self, stop: threading.Event, workers: int) -> list[threading.Thread]:
        """``workers`` threads, each creating (providers in turn) and polling what it
        created, until ``stop`` is set."""
        providers = list(MODELS)

        def work(offset: int) -> None:
            try:
                for i in itertools.count(offset):
                    if stop.is_set():
                        return
                    order = self.submit(self.order(providers[i % len(providers)]))
                    self.poll(order, times=3)
            except BaseException as exc:  # the test reports it
                self.crashes.append(exc)

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
        for thread in threads:
            thread.start()
        return threads


def _error(resp: httpx.Response) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None
