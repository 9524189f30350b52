"""MySQL adapter of the consumer: one transaction per batch for calls, dead letters and decisions.

Every insert is idempotent (`ON DUPLICATE KEY UPDATE` a no-op on the natural key), so a batch written
twice — after a crash before the checkpoint, a lease handoff or a replay — leaves the same rows.
`ON DUPLICATE KEY` rather than `INSERT IGNORE`: IGNORE would also turn real errors (a value too long)
into silent truncation. If the database rejects a batch for its content (not for being down), the
rows are retried one by one and the rejected ones become dead letters with the database's reason.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pymysql

from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.quota import Decision

log = logging.getLogger(__name__)

# Content errors: the same rows would fail again, so retrying the batch cannot help.
_CONTENT_ERRORS = (pymysql.err.DataError, pymysql.err.IntegrityError, pymysql.err.ProgrammingError)


@dataclass(frozen=True, slots=True)
class CallRow:
    event_date: date
    event_id: str
    event_time: datetime  # naive UTC
    principal_id: int
    team: str
    account_id: str
    operation: str
    model_id: str
    region: str
    inference_region: str | None
    source_ip: str | None
    user_agent: str | None
    request_id: str | None
    error_code: str | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source: str
    shard_id: str | None
    sequence_number: str | None
    sub_index: int
    reason: str
    detail: str
    raw: bytes
    received_at: datetime  # naive UTC

    @property
    def dedupe_key(self) -> str:
        ident = f"{self.source}\0{self.shard_id}\0{self.sequence_number}\0{self.sub_index}\0{self.reason}"
        if self.sequence_number is None:
            # Files have no sequence numbers: the content identifies the letter.
            ident += "\0" + hashlib.sha256(self.raw).hexdigest()
        return hashlib.sha256(ident.encode()).hexdigest()


@dataclass(frozen=True)
class WriteResult:
    calls_inserted: int
    dead_letters: int
    rejected_rows: int


_CALL_SQL = (
    "INSERT INTO bedrock_calls (event_date, event_id, event_time, principal_id, team, account_id, operation,"
    " model_ref, region, inference_region, source_ip, user_agent_ref, request_id, error_code)"
    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
    " ON DUPLICATE KEY UPDATE event_id = event_id"
)
_DEAD_SQL = (
    "INSERT INTO dead_letters (dedupe_key, source, shard_id, sequence_number, sub_index, reason, detail, raw,"
    " received_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) ON DUPLICATE KEY UPDATE dedupe_key = dedupe_key"
)
_DECISION_SQL = (
    "INSERT INTO decisions (decision_id, kind, scope, subject, quota, period, percent, usage_count,"
    " limit_count, event_id, event_time, principal, team, decided_at)"
    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON DUPLICATE KEY UPDATE decision_id = decision_id"
)


class _Dimension:
    """Value → small integer id (models, user agents), cached for the life of the process."""

    def __init__(self, table: str, column: str, hashed: bool) -> None:
        self._table, self._column, self._hashed = table, column, hashed
        self._ids: dict[str, int] = {}

    def _key(self, value: str) -> str | bytes:
        return hashlib.sha256(value.encode()).digest() if self._hashed else value

    def ids(self, cur: pymysql.cursors.Cursor, values: set[str]) -> dict[str, int]:
        missing = [v for v in values if v not in self._ids]
        if missing:
            if self._hashed:
                cur.executemany(
                    f"INSERT INTO {self._table} (sha256, {self._column}) VALUES (%s, %s)"
                    " ON DUPLICATE KEY UPDATE id = id",
                    [(self._key(v), v) for v in missing],
                )
                lookup_col = "sha256"
            else:
                cur.executemany(
                    f"INSERT INTO {self._table} ({self._column}) VALUES (%s) ON DUPLICATE KEY UPDATE id = id",
                    [(v,) for v in missing],
                )
                lookup_col = self._column
            by_key = {self._key(v): v for v in missing}
            placeholders = ",".join(["%s"] * len(missing))
            cur.execute(
                f"SELECT {lookup_col}, id FROM {self._table} WHERE {lookup_col} IN ({placeholders})",
                list(by_key),
            )
            for key, row_id in cur.fetchall():
                self._ids[by_key[key]] = int(row_id)
        return self._ids


class Store:
    def __init__(self, session: MySQLSession) -> None:
        self._session = session
        self._models = _Dimension("models", "model_id", hashed=False)
        self._agents = _Dimension("user_agents", "user_agent", hashed=True)

    def write(
        self, calls: Sequence[CallRow], dead_letters: Sequence[DeadLetter], decisions: Sequence[Decision],
        decided_at: datetime,
    ) -> WriteResult:
        conn = self._session.conn
        letters = list(dead_letters)
        inserted = 0
        rejected = 0
        try:
            with conn.cursor() as cur:
                rows = self._call_rows(cur, calls) if calls else []
                # Dimension rows commit on their own: the ids cached in-process must exist even if the
                # batch below is rolled back.
                conn.commit()
                try:
                    inserted = (cur.executemany(_CALL_SQL, rows) or 0) if rows else 0
                except _CONTENT_ERRORS as error:
                    conn.rollback()
                    log.warning("batch rejected by the database, retrying rows one by one",
                                extra={"error": str(error)})
                    inserted, bad = self._one_by_one(cur, calls, rows)
                    letters += bad
                    rejected = len(bad)
                if letters:
                    cur.executemany(_DEAD_SQL, [_dead_row(d) for d in letters])
                if decisions:
                    cur.executemany(_DECISION_SQL, [_decision_row(d, decided_at) for d in decisions])
            conn.commit()
        except BaseException:
            _quiet_rollback(conn)
            raise
        return WriteResult(inserted or 0, len(letters), rejected)

    def _call_rows(self, cur: pymysql.cursors.Cursor, calls: Sequence[CallRow]) -> list[tuple[object, ...]]:
        models = self._models.ids(cur, {c.model_id for c in calls})
        agents = self._agents.ids(cur, {c.user_agent for c in calls if c.user_agent})
        return [
            (c.event_date, c.event_id, c.event_time, c.principal_id, c.team, c.account_id, c.operation,
             models[c.model_id], c.region, c.inference_region, c.source_ip,
             agents[c.user_agent] if c.user_agent else None, c.request_id, c.error_code)
            for c in calls
        ]

    @staticmethod
    def _one_by_one(
        cur: pymysql.cursors.Cursor, calls: Sequence[CallRow], rows: list[tuple[object, ...]]
    ) -> tuple[int, list[DeadLetter]]:
        inserted, bad = 0, []
        for call, row in zip(calls, rows, strict=True):
            cur.execute("SAVEPOINT one_row")
            try:
                inserted += cur.execute(_CALL_SQL, row)
            except _CONTENT_ERRORS as error:
                cur.execute("ROLLBACK TO SAVEPOINT one_row")
                bad.append(DeadLetter(
                    source="mysql", shard_id=None, sequence_number=None, sub_index=0,
                    reason="rejected_by_database", detail=f"{call.event_id}: {error}"[:1024],
                    raw=repr(call).encode(), received_at=datetime.now(UTC).replace(tzinfo=None),
                ))
        return inserted, bad


def _dead_row(d: DeadLetter) -> tuple[object, ...]:
    return (d.dedupe_key, d.source[:255], d.shard_id, d.sequence_number, d.sub_index, d.reason[:64],
            d.detail[:1024], d.raw, d.received_at)


def _decision_row(d: Decision, decided_at: datetime) -> tuple[object, ...]:
    event_time = datetime.fromisoformat(d.event_time).replace(tzinfo=None)
    return (d.decision_id, d.kind.value, d.scope.value, d.subject, d.quota.value, d.period, d.percent, d.usage,
            d.limit, d.event_id, event_time, d.principal, d.team, decided_at)


def _quiet_rollback(conn: pymysql.connections.Connection) -> None:
    try:
        conn.rollback()
    except Exception:  # the connection may be gone; the session will be reset by the caller
        log.debug("rollback failed", exc_info=True)
