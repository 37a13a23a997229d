"""The Redis a benchmark runs on, behind one function: one throwaway ``redis-server``
(``single``) or a Redis Cluster of three masters (``cluster``), both from the
``redis-server`` binary the gateway embeds, without persistence.

Usage::

    with redis_topology("single", Path("/tmp/x")) as topo:
        topo.gateway_env()     # {"REDIS_URL": ..., "REDIS_CLUSTER": "true" on a cluster}
        topo.memory()          # used_memory without client buffers, summed over masters
        topo.cpu()             # seconds of CPU the servers used, summed over masters
        topo.flush()           # every key gone, on every master
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from gateway.cli.demo import free_port
from gateway.store.embedded import EmbeddedRedis

KINDS = ("single", "cluster")


@dataclass
class Topology:
    kind: str
    url: str  # a seed node's redis:// URL on a cluster
    ports: list[int]  # every master
    _nodes: list[redis.Redis] = field(default_factory=list)

    @property
    def cluster(self) -> bool:
        return self.kind == "cluster"

    def gateway_env(self) -> dict[str, str]:
        env = {"REDIS_URL": self.url}
        if self.cluster:
            env["REDIS_CLUSTER"] = "true"
        return env

    def nodes(self) -> list[redis.Redis]:
        """A plain client per master (INFO, FLUSHALL, ZCARD of keys that live there)."""
        if not self._nodes:
            self._nodes = [redis.Redis(host="127.0.0.1", port=p) for p in self.ports]
        return self._nodes

    def memory(self) -> int:
        """Bytes Redis holds for data, client buffers left out (those follow connections,
        not jobs), summed over the masters."""
        total = 0
        for node in self.nodes():
            info = node.info("memory")
            total += int(info["used_memory"]) - int(info.get("mem_clients_normal", 0))
        return total

    def cpu(self) -> float:
        """CPU seconds (user + system) the servers used since they started, summed."""
        total = 0.0
        for node in self.nodes():
            info = node.info("cpu")
            total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return total

    def flush(self) -> None:
        for node in self.nodes():
            node.flushall()

    def zcard(self, key: str) -> int:
        """ZCARD of ``key`` on whichever master holds it (0 on the others)."""
        total = 0
        for node in self.nodes():
            with contextlib.suppress(redis.exceptions.ResponseError):  # MOVED elsewhere
                total += int(node.zcard(key))
        return total

    def close(self) -> None:
        for node in self._nodes:
            node.close()


@contextlib.contextmanager
def redis_topology(kind: str, root: Path) -> Iterator[Topology]:
    """Start ``kind`` (``single`` or ``cluster``) under ``root``; stop it after."""
    if kind == "single":
        port = free_port()
        server = EmbeddedRedis(root / "redis-single", persist=False, port=port)
        url = server.start()
        topo = Topology("single", url, [port])
        try:
            yield topo
        finally:
            topo.close()
            server.stop()
        return
    if kind != "cluster":
        raise ValueError(f"redis topology must be one of {KINDS}")
    try:  # the suite's 3-master cluster (tests/support/redis_cluster.py)
        from tests.support.redis_cluster import RedisClusterServers
    except ImportError as exc:  # pragma: no cover - before Redis Cluster support landed
        raise RuntimeError("no Redis Cluster support in this tree: use --redis single") from exc
    with RedisClusterServers(root / "redis-cluster") as servers:
        topo = Topology("cluster", servers.url, list(servers.ports))
        try:
            yield topo
        finally:
            topo.close()
