"""Keeping the hourly summaries (`usage_hourly`) current while the console runs: a background thread
recomputes the hours the consumer marked every CONSOLE_ROLLUP_SECONDS (one console at a time: a MySQL lock
in `refresh`), and, on a database that predates the summaries, marks the hours of its rows once first."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from zoneinfo import ZoneInfo

from pymysql.connections import Connection

from bedrock_usage import db, usage_hourly

log = logging.getLogger("console.summaries")


def _backfill_if_new(conn: Connection, zone: ZoneInfo) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT EXISTS(SELECT 1 FROM usage_hourly), EXISTS(SELECT 1 FROM usage_hourly_dirty),"
                    " EXISTS(SELECT 1 FROM bedrock_calls) OR EXISTS(SELECT 1 FROM invocation_logs)")
        summarised, marked, rows = cur.fetchone() or (1, 1, 0)
    conn.commit()
    if rows and not summarised and not marked:
        log.info("summaries: none yet over existing rows: marking every hour that has rows (a one-off)")
        log.info("summaries: %d hours marked", usage_hourly.backfill(conn, zone))


class SummaryRefresher:
    def __init__(self, connect: Callable[[], Connection], zone: ZoneInfo, every_seconds: float) -> None:
        self._connect, self._zone, self._every = connect, zone, every_seconds
        self._stop = threading.Event()
        self.last_error = ""

    def start(self) -> None:
        threading.Thread(target=self._loop, name="summaries", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def run_once(self, *, first: bool = False) -> int:
        conn = self._connect()
        try:
            if first:
                _backfill_if_new(conn, self._zone)
            return usage_hourly.refresh_all(conn, self._zone)
        finally:
            conn.close()

    def _loop(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                done = self.run_once(first=first)
                first, self.last_error = False, ""
                if done:
                    log.info("summaries: %d hours recomputed", done)
            except db.TRANSIENT_ERRORS as error:  # the database is away: the next round tries again
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("summaries: not refreshed: %s", self.last_error)
            self._stop.wait(self._every)
