"""What the console's browser tests need around the real console: a stand-in for the region's ALB
public-key endpoint (`https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`, which serves the PEM of
each key by its ID) and tokens signed as the ALB signs `x-amzn-oidc-data`; the console as a child process;
Debian's chromium driven by Playwright (never Playwright's own browser download)."""

from __future__ import annotations

import os
import shutil
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import sync_playwright

from devtools.local_stack import Service, free_port

ALB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/bedrock-console/50dc6c495c0c9188"
OTHER_ALB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/other-app/0123456789abcdef"
KID = "6a1f0c1e-3b7d-4f55-9d3b-8c2f1e0a7b11"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Where the run's screenshots go (one per page); .local/ is not committed.
SCREENSHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS", Path(__file__).resolve().parents[2] / ".local/screenshots"))


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class AlbKeyEndpoint:
    """A stand-in for the ALB key endpoint, for that one API: GET /<kid> answers the PEM public key."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        keys = {KID: _pem(self.key)}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = keys.get(self.path.strip("/"))
                self.send_response(200 if body else 404)
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def token(self, email: str, *, groups: Sequence[str] = (), expires_in: float = 120, signer: str = ALB_ARN,
              key: ec.EllipticCurvePrivateKey | None = None) -> str:
        """`x-amzn-oidc-data` as the ALB writes it: ES256, the key ID, the signer, the user's claims."""
        exp = int(time.time() + expires_in)
        claims = {"sub": email, "email": email, "name": email.split("@", maxsplit=1)[0].title(), "groups": list(groups),
                  "exp": exp, "iss": "https://idp.example.com"}
        headers = {"kid": KID, "signer": signer, "iss": "https://idp.example.com", "client": "console", "exp": exp}
        return jwt.encode(claims, key or self.key, algorithm="ES256", headers=headers)

    def close(self) -> None:
        self.server.shutdown()


@dataclass
class RunningConsole:
    url: str
    service: Service
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def console(env: dict[str, str], log_path: Path) -> Iterator[RunningConsole]:
    port = free_port()
    service = Service({**env, "CONSOLE_HOST": "127.0.0.1", "CONSOLE_PORT": str(port)}, log_path,
                      command=("console", "run")).start()
    running = RunningConsole(f"http://127.0.0.1:{port}", service, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{running.url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert service.process is not None and service.process.poll() is None, running.log()[-3000:]
            assert time.monotonic() < deadline, "the console did not answer /health:\n" + running.log()[-3000:]
            time.sleep(0.2)
        yield running
    finally:
        service.stop(timeout=10)


@contextmanager
def chromium() -> Iterator[Any]:
    """Playwright's Chromium API on Debian's chromium (headless; no background traffic: no network here)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
