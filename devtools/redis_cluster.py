"""A Redis Cluster of three masters on free local ports, for the tests and the benchmark (REDIS_CLUSTER=true).

Each master is a `redis-server --cluster-enabled yes` of its own in a temporary directory, without
persistence; `redis-cli --cluster create` assigns the 16,384 slots; the cluster is ready once every node's
`cluster info` says `cluster_state:ok` and agrees on the slots. The shared Redis (6379) is never touched.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

MASTERS = 3
_BUS_OFFSET = 10_000  # a cluster node also listens on port + 10000 (the cluster bus)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _cluster_ports(count: int, taken: set[int]) -> list[int]:
    """Ports whose bus port (port + 10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + _BUS_OFFSET < 65536 and port not in taken and port not in ports and _free(port + _BUS_OFFSET):
            ports.append(port)
    return ports


class LocalRedisCluster:
    """`with LocalRedisCluster() as cluster:` — `cluster.url` names one node (REDIS_URL with REDIS_CLUSTER=true)."""

    def __init__(self, masters: int = MASTERS, *, startup_timeout: float = 30.0) -> None:
        self.masters = masters
        self._timeout = startup_timeout
        self.ports: list[int] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        self._dir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def __enter__(self) -> LocalRedisCluster:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            raise RuntimeError("redis-server and redis-cli are needed on PATH for a local Redis Cluster")
        self._dir = Path(tempfile.mkdtemp(prefix="bu-redis-cluster-"))
        try:
            for attempt in range(3):  # a port taken between choosing it and binding it: choose again
                self.ports = _cluster_ports(self.masters, set())
                if self._start_nodes():
                    break
                self._kill()
                if attempt == 2:
                    raise RuntimeError(f"could not start {self.masters} Redis Cluster nodes (see {self._dir})")
            self._create()
            self._wait_ok()
        except BaseException:
            self.stop()
            raise

    def _start_nodes(self) -> bool:
        assert self._dir is not None
        for port in self.ports:
            node_dir = self._dir / str(port)
            node_dir.mkdir(exist_ok=True)
            log = (node_dir / "redis.log").open("wb")
            self._processes.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(node_dir / "nodes.conf"), "--cluster-node-timeout", "5000",
                 "--save", "", "--appendonly", "no", "--dir", str(node_dir), "--protected-mode", "no"],
                stdout=log, stderr=subprocess.STDOUT))
            log.close()
        deadline = time.monotonic() + self._timeout
        for port in self.ports:
            client = redis.Redis(port=port, socket_connect_timeout=1)
            try:
                while True:
                    if any(p.poll() is not None for p in self._processes):
                        return False
                    try:
                        client.ping()
                        break
                    except redis.ConnectionError:
                        if time.monotonic() > deadline:
                            return False
                        time.sleep(0.05)
            finally:
                client.close()
        return True

    def _create(self) -> None:
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=self._timeout)

    def _wait_ok(self) -> None:
        """Until every node says the cluster is ok and knows every master (the gossip has converged)."""
        deadline = time.monotonic() + self._timeout
        for port in self.ports:
            client = redis.Redis(port=port)
            try:
                while True:
                    reply: dict[str, Any] = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
                    fields = {str(k): str(v) for k, v in reply.items()}
                    if fields.get("cluster_state") == "ok" and int(fields.get("cluster_known_nodes", 0)) == len(
                            self.ports) and int(fields.get("cluster_slots_ok", 0)) == 16384:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"Redis Cluster on {self.ports} not ok: {fields}")
                    time.sleep(0.1)
            finally:
                client.close()

    def flushall(self) -> None:
        """Empty every master (FLUSHALL through a cluster client reaches them all too)."""
        for port in self.ports:
            client = redis.Redis(port=port)
            try:
                client.flushall()
            finally:
                client.close()

    def _kill(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes = []

    def stop(self) -> None:
        self._kill()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


if __name__ == "__main__":  # python -m devtools.redis_cluster: a cluster to try things on, until Ctrl-C
    with LocalRedisCluster() as running:
        print(f"REDIS_CLUSTER=true REDIS_URL={running.url}  (ports {running.ports}; Ctrl-C stops it)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
