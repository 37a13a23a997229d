"""A real Redis Cluster of three masters on loopback, for tests: three ``redis-server``
processes in cluster mode (the binary the suite already uses), the 16384 slots assigned
by us (``CLUSTER ADDSLOTS``, no ``redis-cli --cluster``), joined with ``CLUSTER MEET``.

Usage::

    with RedisClusterServers(tmp_path) as cluster:
        cluster.url       # "redis://127.0.0.1:PORT/0", a seed node (REDIS_CLUSTER=true)
        cluster.ports     # the three masters' ports
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path

from gateway.store.embedded import redis_server_binary

SLOTS = 16384
BUS_OFFSET = 10000  # a node's cluster bus listens on its port + 10000 (Redis 6)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port(taken: set[int]) -> int:
    """A loopback port that is free, and whose cluster bus port (+10000) is free too."""
    for _ in range(1000):
        port = random.randint(20000, 55000)
        if port not in taken and _free(port) and _free(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _command(port: int, *args: str | int, timeout: float = 5.0) -> bytes:
    """One command in RESP over a plain socket; the raw reply (errors raise)."""
    parts = [str(a).encode() for a in args]
    payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        reply = b""
        while not reply.endswith(b"\r\n") or (reply.startswith(b"$") and reply.count(b"\r\n") < 2):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    if reply.startswith(b"-"):
        raise RuntimeError(f"redis {port} {args[:2]}: {reply.decode(errors='replace').strip()}")
    return reply


class RedisClusterServers:
    """Start three cluster-mode masters in ``root``; stop them (and their files) after."""

    def __init__(self, root: Path, *, masters: int = 3) -> None:
        self.root = root
        self.ports: list[int] = []
        for _ in range(masters):
            self.ports.append(cluster_port(set(self.ports)))
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self, timeout: float = 30.0) -> RedisClusterServers:
        binary = redis_server_binary()
        for port in self.ports:
            home = self.root / str(port)
            home.mkdir(parents=True, exist_ok=True)
            args = [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(home),
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(home / "nodes.conf"),
                "--cluster-node-timeout", "5000",
                "--appendonly", "no",
                "--save", "",
                "--daemonize", "no",
                "--protected-mode", "yes",
                "--loglevel", "warning",
                "--logfile", str(home / "redis.log"),
            ]  # fmt: skip
            self.processes.append(
                subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        try:
            deadline = time.monotonic() + timeout
            for port in self.ports:
                self._wait(deadline, lambda p=port: _command(p, "PING").startswith(b"+PONG"))
            self._assign_slots()
            for port in self.ports[1:]:
                _command(self.ports[0], "CLUSTER", "MEET", "127.0.0.1", port)
            for port in self.ports:
                self._wait(deadline, lambda p=port: b"cluster_state:ok" in self._info(p))
                self._wait(deadline, lambda p=port: self._knows_all(p))
        except BaseException:
            self.stop()
            raise
        return self

    def _assign_slots(self) -> None:
        """Contiguous ranges, one per master (ADDSLOTSRANGE is Redis 7: ADDSLOTS lists)."""
        count = len(self.ports)
        for i, port in enumerate(self.ports):
            first, last = SLOTS * i // count, SLOTS * (i + 1) // count
            _command(port, "CLUSTER", "ADDSLOTS", *range(first, last))

    def _info(self, port: int) -> bytes:
        return _command(port, "CLUSTER", "INFO")

    def _knows_all(self, port: int) -> bool:
        """Every master sees every other master connected, with its slots."""
        nodes = _command(port, "CLUSTER", "NODES").decode()
        masters = [line for line in nodes.splitlines() if " master" in line or ",master" in line]
        connected = [line for line in masters if " connected" in line]
        return len(connected) == len(self.ports)

    def _wait(self, deadline: float, ready: object) -> None:
        while True:
            for proc in self.processes:
                if proc.poll() is not None:
                    raise RuntimeError(f"a cluster redis-server exited ({proc.returncode})")
            try:
                if ready():  # type: ignore[operator]
                    return
            except OSError:
                pass
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not come up in time")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        processes, self.processes = self.processes, []
        for proc in processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in processes:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)

    def __enter__(self) -> RedisClusterServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
