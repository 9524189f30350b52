"""A TCP gate in front of a real dependency (MariaDB, Redis): up, it forwards every connection; down, it
cuts the connections open through it and refuses new ones — a server that stopped, then came back. The
dependency itself is never touched (other tests and helpers share it)."""

from __future__ import annotations

import contextlib
import socket
import threading


class Gate:
    def __init__(self, upstream: tuple[str, int], *, up: bool = True) -> None:
        self._upstream = upstream
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._up = up
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.refused = 0  # connections refused while down
        threading.Thread(target=self._accept, name="gate", daemon=True).start()

    @property
    def is_up(self) -> bool:
        return self._up

    def up(self) -> None:
        self._up = True

    def down(self) -> None:
        """Cut every connection through the gate; refuse new ones until `up()`."""
        with self._lock:
            self._up = False
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()

    def close(self) -> None:
        self.down()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if not self._up:
                    self.refused += 1
                    client.close()
                    continue
                try:
                    upstream = socket.create_connection(self._upstream)
                except OSError:
                    client.close()
                    continue
                self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
