"""The Redis a chaos test runs on, and the one way it is disturbed: a server process
killed (SIGKILL) and started again on its own append-only file.

Every server is the suite's redis-server binary on loopback, with ``appendonly yes`` and
``appendfsync always`` (as the gateway's embedded Redis), in a folder of its own. A
topology answers the environment that points a gateway at it (``env()``) and restarts
one of its servers (``restart_one()``, answering how long it took until the topology
served again):

* ``SingleRedis``: one server;
* ``ClusterRedis``: a Redis Cluster of three masters (``tests/support/redis_cluster.py``)
  for everything, and a single server for the generation queue
  (``GATEWAY_QUEUE_REDIS_URL``: SAQ needs one); ``restart_one`` restarts a master.

Usage::

    with ClusterRedis(tmp_path / "redis") as redis:
        env = {**redis.env(), ...}          # REDIS_URL, REDIS_CLUSTER, GATEWAY_QUEUE_REDIS_URL
        down = redis.restart_one()           # seconds until it served again
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Protocol

from gateway.store.embedded import EmbeddedRedis
from tests.support.redis_cluster import RedisClusterServers
from tests.support.servers import free_port

__all__ = ["ChaosRedis", "ClusterRedis", "SingleRedis"]


class ChaosRedis(Protocol):
    def env(self) -> dict[str, str]: ...

    def restart_one(self) -> float: ...


class SingleRedis:
    """One redis-server with an fsynced append-only file (module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.server = EmbeddedRedis(folder, persist=True, port=free_port())

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.server.url}

    def restart_one(self) -> float:
        """Kill the server (SIGKILL: no shutdown, no last write) and start it again on
        the same port and files; answers how long it was down."""
        proc = self.server.process
        assert proc is not None and proc.poll() is None, "the server is not running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        down = time.monotonic()
        self.server.process = None
        self.server.start()  # replays the append-only file before it answers PING
        return time.monotonic() - down

    def __enter__(self) -> SingleRedis:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


class ClusterRedis:
    """Three masters with fsynced append-only files, and a single queue Redis."""

    RESTARTED = 1  # the master killed and started again (not the seed node of REDIS_URL)

    def __init__(self, folder: Path) -> None:
        self.cluster = RedisClusterServers(folder / "cluster", appendonly=True)
        self.queue = SingleRedis(folder / "queue")

    def env(self) -> dict[str, str]:
        return {
            "REDIS_URL": self.cluster.url,
            "REDIS_CLUSTER": "true",
            "GATEWAY_QUEUE_REDIS_URL": self.queue.server.url,
        }

    def restart_one(self) -> float:
        """Kill one master (SIGKILL) and start it again on its files; answers how long
        until every master saw the cluster whole again."""
        began = time.monotonic()
        self.cluster.restart(self.RESTARTED)
        return time.monotonic() - began

    def __enter__(self) -> ClusterRedis:
        self.queue.__enter__()
        try:
            self.cluster.start()
        except BaseException:
            self.queue.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.cluster.stop()
        self.queue.__exit__()
