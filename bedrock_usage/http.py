"""/metrics and /health on one port, for every long-running process (consumer supervisor, enforcer,
notifier). Each says how to render its metrics (one registry, or the consumer's multiprocess
aggregate) and whether it is healthy."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest


def registry_metrics(registry: CollectorRegistry = REGISTRY) -> Callable[[], bytes]:
    return lambda: generate_latest(registry)


def serve(port: int, healthy: Callable[[], tuple[bool, str]], metrics: Callable[[], bytes] | None = None,
          host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Start serving in a daemon thread; `healthy()` answers /health (200, or 503 with its reason)."""
    render = metrics or registry_metrics()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                body, status, kind = render(), 200, CONTENT_TYPE_LATEST
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
