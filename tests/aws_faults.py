"""AWS faults for the chaos suite: an HTTP proxy in front of the moto server that throttles IAM.

`ThrottlingProxy` forwards every request to moto unchanged, except a seeded random share of IAM calls
(told by the SigV4 credential scope, `.../iam/aws4_request`), which it answers itself with the error IAM
sends when its rate is exceeded: HTTP 400, an `ErrorResponse` with `Sender` / `Throttling` / `Rate
exceeded`. The client cannot tell it from IAM's own, so botocore's parsing and the enforcer's retries
(enforcement/iam.py) handle it as they would in production. It counts the IAM calls and the throttled ones.
"""

from __future__ import annotations

import http.client
import random
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

THROTTLED_BODY = (
    '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
    "<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
    "<RequestId>{request_id}</RequestId></ErrorResponse>"
)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def is_iam(authorization: str) -> bool:
    """SigV4's credential scope names the service: `Credential=AKID/20261201/us-east-1/iam/aws4_request`."""
    return "/iam/aws4_request" in authorization


class ThrottlingProxy:
    """`url` is the endpoint to give the client (AWS_ENDPOINT_URL); `share` of IAM calls are throttled,
    chosen by a random generator seeded with `seed` (the same run throttles the same call numbers)."""

    def __init__(self, upstream: str, *, share: float = 0.5, seed: int = 0) -> None:
        target = urlsplit(upstream)
        self._host, self._port = target.hostname or "127.0.0.1", target.port or 80
        self.share = share
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.iam_calls = 0
        self.throttled = 0
        self.in_flight = 0  # IAM calls being answered now
        self.most_in_flight = 0  # the most at once: whether the client calls IAM concurrently
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not is_iam(self.headers.get("Authorization", "")):
                    self._answer(*proxy._forward(self.command, self.path, dict(self.headers), body))
                    return
                proxy._flight(+1)
                try:
                    if proxy._throttle():
                        self._answer(400, {"Content-Type": "text/xml"},
                                     THROTTLED_BODY.format(request_id=uuid.uuid4()).encode())
                        return
                    self._answer(*proxy._forward(self.command, self.path, dict(self.headers), body))
                finally:
                    proxy._flight(-1)

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _flight(self, change: int) -> None:
        with self._lock:
            self.in_flight += change
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def _throttle(self) -> bool:
        with self._lock:
            self.iam_calls += 1
            if self._rng.random() < self.share:
                self.throttled += 1
                return True
            return False

    def _forward(self, method: str, path: str, headers: dict[str, str],
                 body: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=60)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(method, path, body=body or None, headers=sent)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def start(self) -> ThrottlingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ThrottlingProxy:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    @property
    def figures(self) -> str:
        return f"{self.throttled} of {self.iam_calls} IAM calls throttled"
