"""The asynchronous providers' simulators behind one interface: for fault-injection tests
and the soak.

An ``Upstream`` knows its simulator app, the gateway environment that points its provider
at a served simulator, each fault class as that simulator's knobs (a ``POST
/__sim__/config`` patch), and how to read the simulator's counters.

Usage::

    up = UPSTREAMS["tempolor"]
    with serve(up.app()) as url, httpx.Client() as http:
        env = up.env(url, read_timeout=0.5)               # for Settings.from_env
        up.configure(http, url, up.create_error(503))    # every create answers 503
        up.stats(http, url)["create_calls"]              # create requests received
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from providers.musicgpt.simulator import SimulatorConfig as MusicGPTConfig
from providers.musicgpt.simulator import create_simulator as musicgpt_simulator
from providers.suno.simulator import SimulatorConfig as SunoConfig
from providers.suno.simulator import create_simulator as suno_simulator
from providers.tempolor.simulator import SimulatorConfig as TemPolorConfig
from providers.tempolor.simulator import create_simulator as tempolor_simulator

__all__ = ["UPSTREAMS", "MusicGPT", "Suno", "TemPolor", "Upstream"]

Patch = dict[str, Any]


@dataclass(frozen=True)
class Upstream:
    """What both simulators have in common; subclasses spell the knobs."""

    name: str
    model: str  # a public model id served by this provider
    credential: str  # the value the simulator accepts

    def app(self) -> Any:
        raise NotImplementedError

    def env(
        self, url: str, *, read_timeout: float | None = None, connect_timeout: float = 1.0
    ) -> dict[str, str]:
        """Gateway environment pointing this provider at a simulator served on ``url``."""
        raise NotImplementedError

    # ---------------------------------------------------------------- knobs

    def fast(self, **timing: float) -> Patch:
        """Short timings, no faults, callbacks on: the state every test starts from."""
        raise NotImplementedError

    def create_error(
        self, status: int, *, retry_after: int | None = None, count: int | None = None
    ) -> Patch:
        """Creates answer ``status`` (nothing is created); ``count`` None = every create."""
        raise NotImplementedError

    def create_latency(self, seconds: float, count: int | None = None) -> Patch:
        """Creates wait ``seconds`` before the simulator looks at them."""
        raise NotImplementedError

    def create_malformed(self, count: int | None = None) -> Patch:
        """Creates answer 200 with a truncated JSON body (nothing is created)."""
        raise NotImplementedError

    def create_answer_late(self, seconds: float, count: int | None = 1) -> Patch:
        """Creates are accepted (callbacks scheduled), then answered ``seconds`` late."""
        raise NotImplementedError

    def status_error(self, status: int, count: int | None = None) -> Patch:
        raise NotImplementedError

    def status_malformed(self, count: int | None = None) -> Patch:
        """Status calls answer 200 with a truncated JSON body."""
        raise NotImplementedError

    def status_latency(self, seconds: float, count: int | None = None) -> Patch:
        """Status calls wait ``seconds`` before answering."""
        raise NotImplementedError

    def callbacks(self, on: bool) -> Patch:
        return {"callbacks": on}

    # ------------------------------------------------------------- counters

    @staticmethod
    def configure(http: httpx.Client, url: str, patch: Patch) -> dict[str, Any]:
        resp = http.post(f"{url}/__sim__/config", json=patch)
        assert resp.status_code == 200, resp.text
        return resp.json()

    @staticmethod
    def reset(http: httpx.Client, url: str) -> None:
        http.post(f"{url}/__sim__/reset").raise_for_status()

    @staticmethod
    def stats(http: httpx.Client, url: str) -> dict[str, Any]:
        """Counters; every simulator has ``create_calls`` (every create request received),
        ``faults_injected`` and ``callbacks_sent``."""
        resp = http.get(f"{url}/__sim__/stats")
        resp.raise_for_status()
        return resp.json()

    def jobs_made(self, stats: dict[str, Any]) -> int:
        """Upstream jobs the simulator created (one per accepted create)."""
        raise NotImplementedError


@dataclass(frozen=True)
class MusicGPT(Upstream):
    name: str = "musicgpt"
    model: str = "musicgpt/v7"
    credential: str = "mg-fault-key-3a7c1e9b"

    def app(self) -> Any:
        return musicgpt_simulator(MusicGPTConfig(api_key=self.credential))

    def env(
        self, url: str, *, read_timeout: float | None = None, connect_timeout: float = 1.0
    ) -> dict[str, str]:
        env = {
            "MUSICGPT_API_KEY": self.credential,
            "MUSICGPT_BASE_URL": url,
            "MUSICGPT_CONNECT_TIMEOUT": str(connect_timeout),
        }
        if read_timeout is not None:
            env["MUSICGPT_READ_TIMEOUT"] = str(read_timeout)
        return env

    def fast(self, **timing: float) -> Patch:
        return {
            "queue_seconds": timing.get("queue", 0.15),
            "progress_seconds": timing.get("run", 0.3),
            "faults": [],
            "callbacks": True,
            "max_concurrent": None,
        }

    def _faults(self, *rules: Patch) -> Patch:
        return {"faults": list(rules)}

    def create_error(
        self, status: int, *, retry_after: int | None = None, count: int | None = None
    ) -> Patch:
        rule: Patch = {"status": status, "endpoints": ["create"], "count": count}
        if retry_after is not None:
            rule["retry_after"] = retry_after
        return self._faults(rule)

    def create_latency(self, seconds: float, count: int | None = None) -> Patch:
        return self._faults({"latency": seconds, "endpoints": ["create"], "count": count})

    def create_malformed(self, count: int | None = None) -> Patch:
        return self._faults({"malformed": True, "endpoints": ["create"], "count": count})

    def create_answer_late(self, seconds: float, count: int | None = 1) -> Patch:
        rule = {"latency": seconds, "endpoints": ["create"], "count": count, "after_create": True}
        return self._faults(rule)

    def status_error(self, status: int, count: int | None = None) -> Patch:
        return self._faults({"status": status, "endpoints": ["status"], "count": count})

    def status_malformed(self, count: int | None = None) -> Patch:
        return self._faults({"malformed": True, "endpoints": ["status"], "count": count})

    def status_latency(self, seconds: float, count: int | None = None) -> Patch:
        return self._faults({"latency": seconds, "endpoints": ["status"], "count": count})

    def jobs_made(self, stats: dict[str, Any]) -> int:
        return int(stats["creates_accepted"]) + int(stats["creates_flagged"])


_TEMPOLOR_CLEAR: Patch = {  # every TemPolor fault knob off
    "fault_status": None,
    "fault_message": None,
    "malformed_json": False,
    "fault_count": None,
    "fault_endpoints": ["create", "status", "download"],
    "latency_seconds": 0.0,
    "latency_endpoints": ["create", "status", "download"],
    "retry_after": None,
    "answer_delay_seconds": 0.0,
    "answer_delay_count": None,
}


@dataclass(frozen=True)
class TemPolor(Upstream):
    name: str = "tempolor"
    model: str = "tempolor/v4.8"
    credential: str = "user:12345-fault-token-77d1"

    def app(self) -> Any:
        return tempolor_simulator(TemPolorConfig(api_token=self.credential))

    def env(
        self, url: str, *, read_timeout: float | None = None, connect_timeout: float = 1.0
    ) -> dict[str, str]:
        env = {
            "USEAPI_TOKEN": self.credential,
            "USEAPI_BASE_URL": url + "/v1",
            "USEAPI_CONNECT_TIMEOUT": str(connect_timeout),
        }
        if read_timeout is not None:
            env["USEAPI_READ_TIMEOUT"] = str(read_timeout)
        return env

    def fast(self, **timing: float) -> Patch:
        return {
            **_TEMPOLOR_CLEAR,
            "queue_seconds": timing.get("queue", 0.05),
            "generate_seconds": timing.get("run", 0.2),
            "download_404_seconds": 0.0,
            "callbacks": True,
            "max_parallel_jobs": None,
        }

    def create_error(
        self, status: int, *, retry_after: int | None = None, count: int | None = None
    ) -> Patch:
        return {
            **_TEMPOLOR_CLEAR,
            "fault_status": status,
            "fault_endpoints": ["create"],
            "fault_count": count,
            "retry_after": retry_after,
        }

    def create_latency(self, seconds: float, count: int | None = None) -> Patch:
        # TemPolor's latency knob has no count: ``count`` is ignored (the soak resets it).
        return {**_TEMPOLOR_CLEAR, "latency_seconds": seconds, "latency_endpoints": ["create"]}

    def create_malformed(self, count: int | None = None) -> Patch:
        return {
            **_TEMPOLOR_CLEAR,
            "malformed_json": True,
            "fault_endpoints": ["create"],
            "fault_count": count,
        }

    def create_answer_late(self, seconds: float, count: int | None = 1) -> Patch:
        return {**_TEMPOLOR_CLEAR, "answer_delay_seconds": seconds, "answer_delay_count": count}

    def status_error(self, status: int, count: int | None = None) -> Patch:
        return {
            **_TEMPOLOR_CLEAR,
            "fault_status": status,
            "fault_endpoints": ["status"],
            "fault_count": count,
        }

    def status_malformed(self, count: int | None = None) -> Patch:
        return {
            **_TEMPOLOR_CLEAR,
            "malformed_json": True,
            "fault_endpoints": ["status"],
            "fault_count": count,
        }

    def status_latency(self, seconds: float, count: int | None = None) -> Patch:
        # No count here either: the latency stays until the next patch.
        return {**_TEMPOLOR_CLEAR, "latency_seconds": seconds, "latency_endpoints": ["status"]}

    def jobs_made(self, stats: dict[str, Any]) -> int:
        return int(stats["creates_accepted"])


#: An HTTP status as sunoapi.org says it: a request-level code inside an HTTP 200 (its
#: rate limit is 430; 429 there means insufficient credits).
_SUNO_CODES = {429: 430, 402: 429}


@dataclass(frozen=True)
class Suno(Upstream):
    name: str = "suno"
    model: str = "suno/v4.5"
    credential: str = "sk-suno-fault-key-5be2"

    def app(self) -> Any:
        return suno_simulator(SunoConfig(api_key=self.credential))

    def env(
        self, url: str, *, read_timeout: float | None = None, connect_timeout: float = 1.0
    ) -> dict[str, str]:
        env = {
            "SUNO_API_KEY": self.credential,
            "SUNO_BASE_URL": url,
            "SUNO_CONNECT_TIMEOUT": str(connect_timeout),
        }
        if read_timeout is not None:
            env["SUNO_READ_TIMEOUT"] = str(read_timeout)
        return env

    def fast(self, **timing: float) -> Patch:
        queue, run = timing.get("queue", 0.1), timing.get("run", 0.3)
        return {
            "text_seconds": queue,
            "first_seconds": queue + run / 2,
            "complete_seconds": queue + run,
            "faults": [],
            "callbacks": True,
            "creates_per_window": None,
            "end_word": None,
        }

    def _faults(self, **rule: Any) -> Patch:
        return {"faults": [rule]}

    def create_error(
        self, status: int, *, retry_after: int | None = None, count: int | None = None
    ) -> Patch:
        code = _SUNO_CODES.get(status, status)
        return self._faults(code=code, endpoints=["create"], count=count, retry_after=retry_after)

    def create_latency(self, seconds: float, count: int | None = None) -> Patch:
        return self._faults(latency=seconds, endpoints=["create"], count=count)

    def create_malformed(self, count: int | None = None) -> Patch:
        return self._faults(malformed=True, endpoints=["create"], count=count)

    def create_answer_late(self, seconds: float, count: int | None = 1) -> Patch:
        return self._faults(latency=seconds, endpoints=["create"], count=count, after_create=True)

    def status_error(self, status: int, count: int | None = None) -> Patch:
        return self._faults(code=_SUNO_CODES.get(status, status), endpoints=["status"], count=count)

    def status_malformed(self, count: int | None = None) -> Patch:
        return self._faults(malformed=True, endpoints=["status"], count=count)

    def status_latency(self, seconds: float, count: int | None = None) -> Patch:
        return self._faults(latency=seconds, endpoints=["status"], count=count)

    def jobs_made(self, stats: dict[str, Any]) -> int:
        return int(stats["creates_accepted"])


UPSTREAMS: dict[str, Upstream] = {"musicgpt": MusicGPT(), "tempolor": TemPolor(), "suno": Suno()}
