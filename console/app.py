"""The console's ASGI app: its parts built once from the settings, the sign-in check every page and API
call goes through, and the error pages. The routes are in pages.py (HTML) and api.py (JSON, /api/)."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pymysql.connections import Connection

from bedrock_usage import db
from bedrock_usage.redis_state import redis_client
from console import api, pages, render
from console.access import Forbidden, TeamAdmins
from console.auth import AlbTokenVerifier, LocalLogin, NotSignedIn
from console.errors import BadInput, NotFound, NotReady
from console.health import HealthBoard
from console.settings import ConsoleAuth, ConsoleSettings
from console.summaries import SummaryRefresher
from console.usage_view import UsageSnapshots
from console.views import Views

log = logging.getLogger("console")

HERE = Path(__file__).parent
# The browser scripts, installed from npm with the lockfile (make setup; the image's build stage).
VENDOR = {
    "htmx.min.js": HERE / "web/node_modules/htmx.org/dist/htmx.min.js",
    "chart.umd.js": HERE / "web/node_modules/chart.js/dist/chart.umd.js",
}


class Pool:
    """A few MySQL connections kept open between requests (a TLS handshake to RDS costs more than a page)."""

    def __init__(self, settings: ConsoleSettings, size: int = 8) -> None:
        self._settings, self._idle = settings, queue.LifoQueue[Connection](maxsize=size)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        try:
            conn = self._idle.get_nowait()
            conn.ping(reconnect=True)
        except queue.Empty:
            conn = db.connect(self._settings.mysql)
        try:
            yield conn
        except BaseException:
            conn.close()  # in an unknown state: not returned to the pool
            raise
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()

    def connect(self) -> Connection:
        return db.connect(self._settings.mysql)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter("bedrock_usage_console_requests", "Console requests by route and status.",
                                ["route", "status"], registry=registry)
        self.seconds = Histogram("bedrock_usage_console_request_seconds", "Time to answer a console request.",
                                 ["route"], registry=registry,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0))
        self.refused = Counter("bedrock_usage_console_sign_in_refused", "Requests refused: no valid identity.",
                               registry=registry)

    def snapshot(self, snapshots: UsageSnapshots) -> None:
        Gauge("bedrock_usage_console_snapshot_read_seconds", "How long reading everyone's usage last took (in the"
              " background, every CONSOLE_SNAPSHOT_SECONDS).", registry=self.registry
              ).set_function(lambda: snapshots.read_seconds)


def check_assets() -> None:
    missing = [str(path) for path in VENDOR.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError("the console's browser scripts are not installed (run `make setup`, or"
                                f" `npm ci --prefix console/web`): missing {', '.join(missing)}")


def create_app(settings: ConsoleSettings, *, registry: CollectorRegistry | None = None,
               start_background: bool = True) -> FastAPI:
    check_assets()
    app = FastAPI(title="Bedrock Usage Control console", version="1",
                  description="What the console's pages show, as JSON. Amounts are exact decimal dollars.",
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)  # no CDN-loaded docs UI
    pool = Pool(settings)
    client = redis_client(settings)
    metrics = Metrics(registry or CollectorRegistry())
    health = HealthBoard(settings.console_service_urls)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.pool = pool
    snapshots = UsageSnapshots(pool.connect, client, settings, every_seconds=settings.console_snapshot_seconds)
    metrics.snapshot(snapshots)
    app.state.views = Views(settings, pool.connection, snapshots, health)
    app.state.team_admins = TeamAdmins(pool.connect)
    app.state.login = LocalLogin(settings.console_local_admin) if settings.console_auth is ConsoleAuth.LOCAL else None
    app.state.verifier = (AlbTokenVerifier(settings.console_alb_arn, settings.console_alb_keys_url,
                                           groups_claim=settings.console_groups_claim)
                          if settings.console_auth is ConsoleAuth.ALB else None)

    app.state.summaries = SummaryRefresher(pool.connect, settings.quota_timezone, settings.console_rollup_seconds)
    if settings.console_rollup_seconds and start_background:
        app.state.summaries.start()

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/vendor/{name}", include_in_schema=False)
    def vendor(name: str) -> Response:
        path = VENDOR.get(name)
        if path is None:
            return PlainTextResponse("not found\n", status_code=404)
        return Response(path.read_bytes(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/health", include_in_schema=False)
    def healthy() -> PlainTextResponse:
        try:
            with pool.connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
            client.ping()
        except Exception as error:  # any failure of a dependency is the answer, not a crash
            # Open to anyone who reaches the task: the kind of failure only; hosts and users go to the log.
            log.warning("console: unhealthy: %s: %s", type(error).__name__, error)
            return PlainTextResponse(f"unhealthy: {type(error).__name__}\n", status_code=503)
        return PlainTextResponse("ok\n")

    @app.get("/metrics", include_in_schema=False)
    def scrape() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        response: Response = await call_next(request)
        seconds = time.perf_counter() - started
        route = request.scope.get("route")
        name = getattr(route, "path", "other")
        metrics.requests.labels(name, str(response.status_code)).inc()
        metrics.seconds.labels(name).observe(seconds)
        # The time on the server, for the browser's developer tools and the benchmark (`make bench`).
        response.headers["Server-Timing"] = f"app;dur={seconds * 1000:.1f}"
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # The pages run no inline script and load nothing from elsewhere.
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline';"
                                    " img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
        return response

    @app.exception_handler(NotSignedIn)
    def not_signed_in(request: Request, error: NotSignedIn) -> Response:
        metrics.refused.inc()
        log.warning("console: request refused: %s", error)  # the reason, never the token
        return _error(request, 401, "Not signed in", str(error))

    @app.exception_handler(Forbidden)
    def forbidden(request: Request, error: Forbidden) -> Response:
        return _error(request, 403, "Not allowed", str(error))

    @app.exception_handler(NotFound)
    def not_found(request: Request, error: NotFound) -> Response:
        return _error(request, 404, "Not found", str(error.args[0] if error.args else error))

    @app.exception_handler(NotReady)
    def not_ready(request: Request, error: NotReady) -> Response:
        return _error(request, 503, "Not ready", str(error))

    @app.exception_handler(BadInput)
    def bad_request(request: Request, error: BadInput) -> Response:
        return _error(request, 400, "Not done", str(error))

    app.include_router(pages.router)
    app.include_router(api.router)
    return app


def _error(request: Request, status: int, title: str, detail: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": title, "detail": detail}, status_code=status)
    return HTMLResponse(render.page(request, "error.html", None, title=title, detail=detail, status=status),
                        status_code=status)

