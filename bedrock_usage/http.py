"""/metrics and /health on one port, for the processes that serve a single Prometheus registry
(the enforcer, the notifier). The consumer's supervisor serves its multiprocess registry itself."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest


def serve(port: int, healthy: Callable[[], tuple[bool, str]], registry: CollectorRegistry = REGISTRY,
          host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Start serving in a daemon thread; `healthy()` answers /health (200 or 503 with its reason)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                body, status, kind = generate_latest(registry), 200, CONTENT_TYPE_LATEST
            elif self.path.startswith("/health"):
                ok, reason = healthy()
                body, status, kind = (reason + "\n").encode(), (200 if ok else 503), "text/plain"
            else:
                body, status, kind = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
