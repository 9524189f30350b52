"""MySQL adapter of the consumer: one transaction per batch for calls, invocation logs, dead letters and
decisions.

Every insert is idempotent (`ON DUPLICATE KEY UPDATE` a no-op on the natural key), so a batch written
twice — after a crash before the checkpoint, a lease handoff or a replay — leaves the same rows.
`ON DUPLICATE KEY` rather than `INSERT IGNORE`: IGNORE would also turn real errors (a value too long)
into silent truncation. If the database rejects a batch for its content (not for being down), the
rows are retried one by one and the rejected ones become dead letters with the database's reason.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pymysql
from pymysql.constants import SERVER_STATUS
from pymysql.converters import escape_string

from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.pricing.rates import Tokens
from bedrock_usage.quota import Decision, usd

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
class LogRow:
    """One metered invocation log (sql/010_cost.sql `invocation_logs`)."""

    event_date: date
    event_time: datetime  # naive UTC
    request_id: str
    principal_id: int
    team: str
    account_id: str
    operation: str
    model_id: str  # as logged
    price_model: str | None  # the base model priced (the fallback's for an unpriced one)
    region: str
    inference_region: str | None
    price_scope: str
    tier: str
    error_code: str | None
    tokens: Tokens
    cost_nanos: int
    price_status: str
    cache_split: str


@dataclass(frozen=True, slots=True)
class Unpriced:
    """A model charged at the fallback price in a batch (sql/010 `unpriced_models`)."""

    model: str
    fallback_model: str | None
    calls: int
    first_seen: datetime  # naive UTC
    last_seen: datetime


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
    logs_inserted: int = 0


# The tables whose rows carry the team charged (moved together when a person's team becomes known).
_CHARGED_TABLES = ("bedrock_calls", "invocation_logs")
_CALL_SQL_HEAD = (
    "INSERT INTO bedrock_calls (event_date, event_id, event_time, principal_id, team, account_id, operation,"
    " model_ref, region, inference_region, source_ip, user_agent_ref, request_id, error_code) VALUES "
)
_CALL_SQL_TAIL = " ON DUPLICATE KEY UPDATE event_id = event_id"
_ROWS_PER_STATEMENT = 5000
_LOG_SQL_HEAD = (
    "INSERT INTO invocation_logs (event_date, event_time, request_id, principal_id, team, account_id, operation,"
    " model_ref, price_model_ref, region, inference_region, price_scope, tier, error_code, input_tokens,"
    " output_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cost_usd, price_status,"
    " cache_split) VALUES "
)
_LOG_SQL_TAIL = " ON DUPLICATE KEY UPDATE request_id = request_id"
# A call and its log meet on the request ID, whichever came first: the call's row takes the log's tokens
# and cost. Two statements, each driven by the side this batch brought (both indexed on request_id); the
# date window keeps the calls' side to the partitions that can hold the call.
_JOIN_SET = (
    "UPDATE bedrock_calls c JOIN invocation_logs l ON l.request_id = c.request_id"
    " SET c.input_tokens = l.input_tokens, c.output_tokens = l.output_tokens,"
    " c.cache_read_tokens = l.cache_read_tokens, c.cache_write_5m_tokens = l.cache_write_5m_tokens,"
    " c.cache_write_1h_tokens = l.cache_write_1h_tokens, c.cost_usd = l.cost_usd"
    " WHERE c.input_tokens IS NULL AND c.event_date BETWEEN %s AND %s AND "
)
_UNPRICED_SQL = (
    "INSERT INTO unpriced_models (model, fallback_model, first_seen, last_seen, calls) VALUES (%s,%s,%s,%s,%s)"
    " ON DUPLICATE KEY UPDATE fallback_model = VALUES(fallback_model),"
    " first_seen = LEAST(first_seen, VALUES(first_seen)), last_seen = GREATEST(last_seen, VALUES(last_seen)),"
    " calls = calls + VALUES(calls)"
)


class _Values:
    """One call row as SQL text, column by column (the types are known: no per-value dispatch)."""

    def __init__(self, conn: pymysql.connections.Connection) -> None:
        # What pymysql itself does per string.
        if getattr(conn, "server_status", 0) & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES:
            self._escape: Callable[[str], str] = lambda text: text.replace("'", "''")
        else:
            self._escape = escape_string

    def _text(self, value: str | None) -> str:
        return "NULL" if value is None else "'" + self._escape(value) + "'"

    def row(self, c: CallRow, ref: tuple[int, int | None]) -> str:
        text = self._text
        agent = "NULL" if ref[1] is None else str(ref[1])
        return (
            f"('{c.event_date.isoformat()}',{text(c.event_id)},'{c.event_time.isoformat(' ', 'milliseconds')}',"
            f"{c.principal_id},{text(c.team)},{text(c.account_id)},{text(c.operation)},{ref[0]},{text(c.region)},"
            f"{text(c.inference_region)},{text(c.source_ip)},{agent},{text(c.request_id)},{text(c.error_code)})"
        )

    def log(self, r: LogRow, model_ref: int, price_ref: int | None) -> str:
        text, t = self._text, r.tokens
        return (
            f"('{r.event_date.isoformat()}','{r.event_time.isoformat(' ', 'milliseconds')}',{text(r.request_id)},"
            f"{r.principal_id},{text(r.team)},{text(r.account_id)},{text(r.operation)},{model_ref},"
            f"{'NULL' if price_ref is None else price_ref},{text(r.region)},{text(r.inference_region)},"
            f"{text(r.price_scope)},{text(r.tier)},{text(r.error_code)},{t.input},{t.output},{t.cache_read},"
            f"{t.cache_write_5m},{t.cache_write_1h},{usd(r.cost_nanos):f},{text(r.price_status)},{text(r.cache_split)})"
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
        # Sorted: two shard processes upserting the same new values lock them in the same order.
        missing = sorted(v for v in values if v not in self._ids)
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
    """Writes in two steps so the processor can overlap MySQL with Redis: `stage` inserts the calls and
    dead letters in an open transaction (run while Redis counts), `commit` adds the decisions Redis
    returned and commits. Nothing is visible, or acknowledged, before `commit`."""

    def __init__(self, session: MySQLSession, default_team: str) -> None:
        self._session = session
        self._default_team = default_team
        self._models = _Dimension("models", "model_id", hashed=False)
        self._agents = _Dimension("user_agents", "user_agent", hashed=True)

    def stage(
        self, calls: Sequence[CallRow], dead_letters: Sequence[DeadLetter], logs: Sequence[LogRow] = ()
    ) -> WriteResult:
        conn = self._session.conn
        letters = list(dead_letters)
        inserted = rejected = logged = 0
        try:
            with conn.cursor() as cur:
                refs = self._refs(cur, calls) if calls else []
                log_refs = self._log_refs(cur, logs) if logs else []
                # Dimension rows commit on their own: the ids cached in-process must exist even if the
                # batch below is rolled back.
                conn.commit()
                try:
                    inserted = self._insert_calls(cur, calls, refs)
                    logged = self._insert_logs(cur, logs, log_refs)
                except _CONTENT_ERRORS as error:
                    conn.rollback()
                    log.warning("batch rejected by the database, retrying rows one by one",
                                extra={"error": str(error)})
                    inserted, bad = self._one_by_one(cur, calls, refs)
                    logged, bad_logs = self._logs_one_by_one(cur, logs, log_refs)
                    letters += bad + bad_logs
                    rejected = len(bad) + len(bad_logs)
                self._join(cur, calls, logs)
                if letters:
                    cur.executemany(_DEAD_SQL, [_dead_row(d) for d in letters])
        except BaseException:
            _quiet_rollback(conn)
            raise
        return WriteResult(inserted, len(letters), rejected, logged)

    def _log_refs(self, cur: pymysql.cursors.Cursor, logs: Sequence[LogRow]) -> list[tuple[int, int | None]]:
        models = self._models.ids(cur, {r.model_id for r in logs} | {r.price_model for r in logs if r.price_model})
        return [(models[r.model_id], models[r.price_model] if r.price_model else None) for r in logs]

    def _insert_logs(
        self, cur: pymysql.cursors.Cursor, logs: Sequence[LogRow], refs: Sequence[tuple[int, int | None]]
    ) -> int:
        inserted = 0
        values = _Values(cur.connection)
        for start in range(0, len(logs), _ROWS_PER_STATEMENT):
            chunk = zip(logs[start:start + _ROWS_PER_STATEMENT], refs[start:start + _ROWS_PER_STATEMENT], strict=True)
            inserted += cur.execute(_LOG_SQL_HEAD + ",".join(values.log(r, *ref) for r, ref in chunk) + _LOG_SQL_TAIL)
        return inserted

    @staticmethod
    def _logs_one_by_one(
        cur: pymysql.cursors.Cursor, logs: Sequence[LogRow], refs: Sequence[tuple[int, int | None]]
    ) -> tuple[int, list[DeadLetter]]:
        inserted, bad = 0, []
        values = _Values(cur.connection)
        for row, ref in zip(logs, refs, strict=True):
            cur.execute("SAVEPOINT one_row")
            try:
                inserted += cur.execute(_LOG_SQL_HEAD + values.log(row, *ref) + _LOG_SQL_TAIL)
            except _CONTENT_ERRORS as error:
                cur.execute("ROLLBACK TO SAVEPOINT one_row")
                bad.append(DeadLetter(
                    source="mysql", shard_id=None, sequence_number=None, sub_index=0,
                    reason="rejected_by_database", detail=f"log {row.request_id}: {error}"[:1024],
                    raw=repr(row).encode(), received_at=datetime.now(UTC).replace(tzinfo=None),
                ))
        return inserted, bad

    @staticmethod
    def _join(cur: pymysql.cursors.Cursor, calls: Sequence[CallRow], logs: Sequence[LogRow]) -> None:
        """Give the calls of this batch their logs' tokens and cost, and the logs of this batch their calls."""
        call_ids = sorted({c.request_id for c in calls if c.request_id})
        log_ids = sorted({r.request_id for r in logs})
        for ids, side, dates in ((call_ids, "c", [c.event_date for c in calls]),
                                 (log_ids, "l", [r.event_date for r in logs])):
            if not ids:
                continue
            # A call's log comes within minutes; a day either side covers midnight and time zones.
            low, high = min(dates) - timedelta(days=1), max(dates) + timedelta(days=1)
            for start in range(0, len(ids), _ROWS_PER_STATEMENT):
                chunk = ids[start:start + _ROWS_PER_STATEMENT]
                cur.execute(_JOIN_SET + f"{side}.request_id IN (" + ",".join(["%s"] * len(chunk)) + ")",
                            [low, high, *chunk])

    def commit(
        self, decisions: Sequence[Decision], decided_at: datetime, *, settle: Sequence[tuple[int, str]] = (),
        settle_since: date | None = None, unknown: Sequence[int] = (), days: tuple[date, date] | None = None,
        recharge: Sequence[tuple[date, datetime, str, str]] = (),
        recharge_logs: Sequence[tuple[date, datetime, str, str]] = (), unpriced: Sequence[Unpriced] = (),
    ) -> None:
        """Add the decisions, move rows between teams as Redis did, and commit.

        `settle`: (person id, team) whose held rows (team '') since `settle_since` go to the team now, as
        their held events just went to it in Redis. `unknown`: people this batch charged to no team yet;
        their rows of the batch's `days` go to the team known by now, if any (a consumer that settled
        them meanwhile could not move rows not yet committed). `recharge`: rows (by primary key) that
        Redis charged to another team than the one they were staged with (`recharge_logs`: log rows, keyed
        by request ID). `unpriced`: models this batch charged at the fallback price."""
        conn = self._session.conn
        try:
            with conn.cursor() as cur:
                if decisions:
                    cur.executemany(_DECISION_SQL, [_decision_row(d, decided_at) for d in decisions])
                if unpriced:
                    cur.executemany(_UNPRICED_SQL, [(u.model, u.fallback_model, u.first_seen, u.last_seen, u.calls)
                                                    for u in sorted(unpriced, key=lambda u: u.model)])
                for table in _CHARGED_TABLES if settle else ():
                    cur.executemany(f"UPDATE {table} SET team = %s WHERE principal_id = %s AND team = ''"
                                    " AND event_date >= %s", [(team, person, settle_since) for person, team in settle])
                if unknown and days:
                    # Most batches with unknown people find them unknown still: ask the small table first.
                    cur.execute("SELECT id FROM principals WHERE resolved_at IS NOT NULL AND id IN ("
                                + ",".join(["%s"] * len(unknown)) + ")", list(unknown))
                    known = [int(r[0]) for r in cur.fetchall()]
                    for table in _CHARGED_TABLES if known else ():
                        cur.execute(
                            f"UPDATE {table} c JOIN principals p ON p.id = c.principal_id"
                            " SET c.team = COALESCE(p.team, %s) WHERE c.team = '' AND c.event_date BETWEEN %s AND %s"
                            " AND c.principal_id IN (" + ",".join(["%s"] * len(known)) + ")",
                            [self._default_team, days[0], days[1], *known])
                for table, key, rows in (("bedrock_calls", "event_id", recharge),
                                         ("invocation_logs", "request_id", recharge_logs)):
                    if rows:
                        cur.executemany(f"UPDATE {table} SET team = %s WHERE event_date = %s AND event_time = %s"
                                        f" AND {key} = %s", [(team, day, at, ident) for day, at, ident, team in rows])
            conn.commit()
        except BaseException:
            _quiet_rollback(conn)
            raise

    def abort(self) -> None:
        _quiet_rollback(self._session.conn)

    def write(
        self, calls: Sequence[CallRow], dead_letters: Sequence[DeadLetter], decisions: Sequence[Decision],
        decided_at: datetime,
    ) -> WriteResult:
        """Both steps at once (when there is nothing to overlap with)."""
        result = self.stage(calls, dead_letters)
        self.commit(decisions, decided_at)
        return result

    def _refs(self, cur: pymysql.cursors.Cursor, calls: Sequence[CallRow]) -> list[tuple[int, int | None]]:
        models = self._models.ids(cur, {c.model_id for c in calls})
        agents = self._agents.ids(cur, {c.user_agent for c in calls if c.user_agent})
        return [(models[c.model_id], agents[c.user_agent] if c.user_agent else None) for c in calls]

    def _insert_calls(
        self, cur: pymysql.cursors.Cursor, calls: Sequence[CallRow], refs: Sequence[tuple[int, int | None]]
    ) -> int:
        """Multi-row INSERTs built here rather than by executemany: pymysql's generic per-value escaping
        was a third of the consumer's CPU time. Strings still go through the connection's escaper."""
        inserted = 0
        values = _Values(cur.connection)
        for start in range(0, len(calls), _ROWS_PER_STATEMENT):
            chunk = zip(calls[start:start + _ROWS_PER_STATEMENT], refs[start:start + _ROWS_PER_STATEMENT],
                        strict=True)
            inserted += cur.execute(_CALL_SQL_HEAD + ",".join(values.row(c, r) for c, r in chunk) + _CALL_SQL_TAIL)
        return inserted

    @staticmethod
    def _one_by_one(
        cur: pymysql.cursors.Cursor, calls: Sequence[CallRow], refs: Sequence[tuple[int, int | None]]
    ) -> tuple[int, list[DeadLetter]]:
        inserted, bad = 0, []
        values = _Values(cur.connection)
        for call, ref in zip(calls, refs, strict=True):
            cur.execute("SAVEPOINT one_row")
            try:
                inserted += cur.execute(_CALL_SQL_HEAD + values.row(call, ref) + _CALL_SQL_TAIL)
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
