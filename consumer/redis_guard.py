"""The consumer's guard against a Redis that forgot (issue 12): find the marker, repair before counting.

Before its first count a consumer learns the marker epoch of record (MySQL `redis_marker`); every counting
script checks Redis holds it (bedrock_usage/redis_marker.py). When a script refuses, the batch is not
counted and not checkpointed: the guard repairs Redis, then the batch is redone (and counted once, the seen
sets deduping what a pipeline counted before the refusal). Repairing, with several consumers:

- the marker of record ready, and Redis holding it: someone has repaired already (or rewrote the marker):
  adopt it;
- else take the deployment's MySQL lock (GET_LOCK: released by MySQL if its holder dies), without waiting;
  whoever gets it looks again, then writes the `rebuilding` placeholder (MySQL and Redis: every other
  consumer's scripts refuse), replays MySQL into Redis (consumer/rebuild.py, decisions off: every crossing
  the rows reach was decided when they were first counted, and is in `decisions`), republishes the open
  periods' decisions the enforcer has not acted on (the decision stream went with the data), then writes
  the new epoch to Redis and MySQL;
- the others wait (polling, up to REDIS_REBUILD_WAIT_SECONDS per attempt; then the batch is retried as after
  an outage), never counting meanwhile.

A first start (no marker of record, nothing counted in MySQL) only writes the marker. No marker of record but
rows in MySQL (an upgrade to this version, or the row deleted) is rebuilt first: the merge is harmless if
Redis was intact, and needed if it was not.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pymysql.connections import Connection

from bedrock_usage import db, redis_marker
from bedrock_usage.config import MySQLParams
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Decision, Kind, Quota, Scope
from bedrock_usage.redis_marker import Marker, MarkerState, RedisForgot
from bedrock_usage.redis_state import RedisClient
from consumer.counters import Counters
from consumer.metrics import ConsumerMetrics

log = logging.getLogger(__name__)

# Decisions recorded for the open periods that the enforcer has no action for: republished after a rebuild.
_UNHANDLED = ("SELECT d.kind, d.scope, d.subject, d.quota, d.period, d.percent, d.usage_count, d.limit_count,"
              " d.event_id, d.event_time, d.principal, d.team FROM decisions d"
              " WHERE d.period IN (%s, %s) AND NOT EXISTS"
              " (SELECT 1 FROM enforcement_actions a WHERE a.decision_id = d.decision_id) ORDER BY d.id")


@dataclass(frozen=True)
class Repair:
    """What a repair did: `reason` first (a marker written on a new deployment), lost (Redis did not hold the
    marker of record), unmarked (no marker of record, rows in MySQL), resumed (a rebuild that did not
    finish), manual (`bedrockctl counters rebuild`), adopted (someone else repaired), or waited."""

    reason: str
    epoch: str
    rows: int = 0
    new: int = 0
    republished: int = 0
    seconds: float = 0.0


class RedisGuard:
    def __init__(
        self,
        *,
        client: RedisClient,
        keys: Keys,
        mysql: MySQLParams,
        counters: Counters,
        metrics: ConsumerMetrics,
        replay: Callable[[str], tuple[int, int]],
        timezone_: ZoneInfo,
        wait_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`replay(placeholder)`: refill Redis from MySQL, counting with that marker; returns (rows replayed, rows
        that were missing from Redis)."""
        self._redis, self._keys, self._mysql = client, keys, mysql
        self._counters, self._metrics, self._replay = counters, metrics, replay
        self._tz, self._wait, self._clock = timezone_, wait_seconds, clock
        self._poll, self._sleep = poll_seconds, sleep
        self._lock = redis_marker.lock_name(mysql.database, keys.prefix)

    @property
    def counters(self) -> Counters:
        return self._counters

    @property
    def known(self) -> bool:
        return bool(self._counters.marker)

    def ensure(self) -> Repair | None:
        """Before counting: make sure the marker to expect is known (at start; after a refusal)."""
        if self.known:
            return None
        return self.repair()

    def refused(self) -> Repair:
        """A script refused: forget the marker expected, and repair (or wait for whoever repairs)."""
        self._counters.marker = ""
        return self.repair()

    def repair(self, *, force: bool = False) -> Repair:
        """Adopt the marker of record if Redis holds it; else rebuild under the lock, or wait for the consumer
        that holds it. `force`: rebuild even if Redis holds the marker (an operator's rebuild). Raises
        RedisForgot when the wait runs out (the caller retries, as after an outage)."""
        started = time.monotonic()
        conn = db.connect(self._mysql)
        try:
            while True:
                marker, found = redis_marker.read(conn), redis_marker.in_redis(self._redis, self._keys)
                if not force and _intact(marker, found):
                    assert marker is not None
                    return self._adopt(marker.epoch, "adopted")
                if _get_lock(conn, self._lock):
                    try:
                        return self._repair_locked(conn, force)
                    finally:
                        _release_lock(conn, self._lock)
                self._metrics.redis_unmarked.set(1)
                if time.monotonic() - started >= self._wait:
                    raise RedisForgot(f"Redis is being rebuilt by another process (waited {self._wait:g} s);"
                                      " nothing is counted until it is done")
                self._sleep(self._poll)
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def _repair_locked(self, conn: Connection, force: bool) -> Repair:
        # Under the lock, look again: whoever held it before may have just finished.
        marker, found = redis_marker.read(conn), redis_marker.in_redis(self._redis, self._keys)
        if not force and _intact(marker, found):
            assert marker is not None
            return self._adopt(marker.epoch, "adopted")
        if not force and marker is not None and marker.state is MarkerState.REBUILDING and found == marker.epoch:
            # A rebuilder died between writing the new epoch to Redis (after its replay) and to MySQL.
            redis_marker.write(conn, marker.epoch, MarkerState.READY, redis_marker.writer())
            conn.commit()
            return self._adopt(marker.epoch, "resumed")
        if marker is None and not redis_marker.anything_counted(conn):
            epoch = redis_marker.stamp(conn, self._redis, self._keys)
            self._record(conn, "first", None, found, epoch, rows=0, finished=True)
            log.info("redis marker written (first start)", extra={"epoch": epoch})
            return self._adopt(epoch, "first")
        unfinished = marker is not None and found == redis_marker.placeholder(marker.epoch)
        reason = "manual" if force else "unmarked" if marker is None else "resumed" if unfinished else "lost"
        return self._rebuild(conn, reason, marker, found)

    def _rebuild(self, conn: Connection, reason: str, marker: Marker | None, found: str | None) -> Repair:
        started = time.monotonic()
        if reason == "lost":
            self._metrics.redis_data_lost.inc()
            log.error("Redis lost its data (its marker is not the one of record): rebuilding it from MySQL before"
                      " counting resumes", extra={"expected": marker.epoch if marker else None, "found": found})
        else:
            log.warning("rebuilding Redis from MySQL", extra={"reason": reason})
        self._metrics.redis_unmarked.set(1)
        self._metrics.redis_rebuilding.set(1)
        try:
            epoch = redis_marker.new_epoch()
            placeholder = redis_marker.placeholder(epoch)
            row_id = self._record(conn, reason, marker.epoch if marker else None, found, epoch, rows=0,
                                  finished=False)
            # MySQL first: a consumer that starts now reads `rebuilding`, expects nothing, and waits.
            redis_marker.write(conn, epoch, MarkerState.REBUILDING, redis_marker.writer())
            conn.commit()
            redis_marker.put(self._redis, self._keys, placeholder)
            rows, new = self._replay(placeholder)
            republished = self._republish(conn)
            if redis_marker.in_redis(self._redis, self._keys) != placeholder:
                # Lost again while rebuilding (the replay's scripts refuse then; this catches the very end).
                raise RedisForgot("Redis lost its data again during the rebuild; rebuilding again")
            # Redis first: a rebuilder dying after this leaves MySQL `rebuilding` with Redis at the new epoch,
            # which the next one recognises as finished (above), rather than as a loss.
            redis_marker.put(self._redis, self._keys, epoch)
            redis_marker.write(conn, epoch, MarkerState.READY, redis_marker.writer())
            with conn.cursor() as cur:
                cur.execute("UPDATE redis_rebuilds SET finished_at = UTC_TIMESTAMP(3), rows_replayed = %s"
                            " WHERE id = %s", (rows, row_id))
            conn.commit()
        finally:
            self._metrics.redis_rebuilding.set(0)
        seconds = time.monotonic() - started
        self._metrics.redis_rebuild_seconds.observe(seconds)
        log.warning("Redis rebuilt from MySQL; counting resumes", extra={
            "reason": reason, "epoch": epoch, "rows": rows, "republished": republished,
            "seconds": round(seconds, 3)})
        return self._adopt(epoch, reason, rows=rows, new=new, republished=republished, seconds=seconds)

    def _republish(self, conn: Connection) -> int:
        """The decision stream went with Redis's data: publish again the open periods' decisions the enforcer
        has not acted on (it deduplicates on decision_id, so one it did act on would change nothing)."""
        day = self._clock().astimezone(self._tz).date().isoformat()
        with conn.cursor() as cur:
            cur.execute(_UNHANDLED, (day, day[:7]))
            rows: Any = cur.fetchall()
        conn.commit()
        decisions = [Decision(Kind(str(r[0])), Scope(str(r[1])), str(r[2]), Quota(str(r[3])), str(r[4]), int(r[5]),
                              int(r[6]), int(r[7]), str(r[8]), r[9].replace(tzinfo=UTC).isoformat(), str(r[10]),
                              str(r[11])) for r in rows]
        self._counters.republish(decisions)
        return len(decisions)

    def _record(self, conn: Connection, reason: str, previous: str | None, found: str | None, epoch: str, *,
                rows: int, finished: bool) -> int:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO redis_rebuilds (reason, previous_epoch, found, epoch, started_at, finished_at,"
                " rows_replayed, written_by) VALUES (%s, %s, %s, %s, UTC_TIMESTAMP(3),"
                f" {'UTC_TIMESTAMP(3)' if finished else 'NULL'}, %s, %s)",
                (reason, previous, (found or "")[:64] or None, epoch, rows, redis_marker.writer()))
            row_id = int(cur.lastrowid)
        conn.commit()
        return row_id

    def _adopt(self, epoch: str, reason: str, *, rows: int = 0, new: int = 0, republished: int = 0,
               seconds: float = 0.0) -> Repair:
        self._counters.marker = epoch
        self._metrics.redis_unmarked.set(0)
        return Repair(reason, epoch, rows, new, republished, seconds)


def _intact(marker: Marker | None, found: str | None) -> bool:
    return marker is not None and marker.ready and found == marker.epoch


def _get_lock(conn: Connection, name: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
        row: Any = cur.fetchone()
    return bool(row and row[0] == 1)


def _release_lock(conn: Connection, name: str) -> None:
    with contextlib.suppress(Exception), conn.cursor() as cur:
        cur.execute("SELECT RELEASE_LOCK(%s)", (name,))
