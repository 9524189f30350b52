"""A redis-server of a chaos case's own, so that it can be filled, emptied or restarted without touching the
shared one. Like the stack's ElastiCache: `maxmemory-policy noeviction`, no persistence (a restart comes
back empty, as a node replaced without a snapshot does)."""

from __future__ import annotations

import subprocess
import time

import redis

from devtools.local_stack import free_port


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = self._start()
        self.client = redis.Redis.from_url(self.url)
        self._wait_ready()

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def limit(self, max_bytes: int) -> None:
        """maxmemory (0: no limit), as an operator raising the node's memory would."""
        self.client.config_set("maxmemory", max_bytes)

    def restart(self, down_seconds: float = 0.0) -> None:
        """Killed and started again on the same port, empty."""
        self.process.kill()
        self.process.wait(timeout=10)
        time.sleep(down_seconds)
        self.process = self._start()
        self.client.connection_pool.disconnect()
        self._wait_ready()

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=10)

