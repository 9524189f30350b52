"""MySQL adapter of the consumer: one transaction per batch for calls, invocation logs, dead letters and
decisions.

Every insert is idempotent (`ON DUPLICATE KEY UPDATE` a no-op on the natural key), so a batch written
twice — after a crash before the checkpoint, a lease handoff or a replay — leaves the same rows.
`ON DUPLICATE KEY` rather than `INSERT IGNORE`: IGNORE would also turn real errors (a value too long)
into silent truncation. If the database rejects a batch for its content (not for being down), the
rows are retried one by one and the rejected ones become dead letters with the database's reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pymysql

from bedrock_usage import usage_hourly
from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.pricing.rates import TOKEN_COLUMNS
from bedrock_usage.quota import Decision, usd
from bedrock_usage.teams import team_or_default_sql
from consumer.rows import CallRow, DeadLetter, Dimension, LogRow, Unpriced, Values, WriteResult

log = logging.getLogger(__name__)

# Content errors: the same rows would fail again, so retrying the batch cannot help.
_CONTENT_ERRORS = (pymysql.err.DataError, pymysql.err.IntegrityError, pymysql.err.ProgrammingError)


# The tables whose rows carry the team charged (moved together when a person's team becomes known).
_CHARGED_TABLES = ("bedrock_calls", "invocation_logs")
_CALL_SQL_HEAD = (
    "INSERT INTO bedrock_calls (event_date, event_id, event_time, principal_id, team, account_id, operation,"
    " model_ref, region, inference_region, source_ip, user_agent_ref, request_id, error_code, bearer_token, "
    + ", ".join(TOKEN_COLUMNS) + ", cost_usd) VALUES "
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
_TOKEN_COLUMNS = (*TOKEN_COLUMNS, "cost_usd")  # what a call's row takes from its log
_JOIN_CHUNK = 2000
# Request IDs per UPDATE: each updated row picks its values among them (CASE, a linear search), so the cost
# of a statement grows with the square of this; 100 measured twice as fast as 500 (and than 20) for 5,000 rows.
_FILL_CHUNK = 100
_UNPRICED_SQL = (
    "INSERT INTO unpriced_models (model, fallback_model, first_seen, last_seen, calls) VALUES (%s,%s,%s,%s,%s)"
    " ON DUPLICATE KEY UPDATE fallback_model = VALUES(fallback_model),"
    " first_seen = LEAST(first_seen, VALUES(first_seen)), last_seen = GREATEST(last_seen, VALUES(last_seen)),"
    " calls = calls + VALUES(calls)"
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


class Store:
    """Writes in two steps so the processor can overlap MySQL with Redis: `stage` inserts the calls and
    dead letters in an open transaction (run while Redis counts), `commit` adds the decisions Redis
    returned and commits. Nothing is visible, or acknowledged, before `commit`."""

    def __init__(self, session: MySQLSession, default_team: str) -> None:
        self._session = session
        self._default_team = default_team
        self._models = Dimension("models", "model_id", hashed=False)
        self._agents = Dimension("user_agents", "user_agent", hashed=True)
        # The staged batch's calls and logs, joined once it is committed (the MySQL thread's only).
        self._to_join: tuple[Sequence[CallRow], Sequence[LogRow], frozenset[str]] = ((), (), frozenset())

    def stage(
        self, calls: Sequence[CallRow], dead_letters: Sequence[DeadLetter], logs: Sequence[LogRow] = ()
    ) -> WriteResult:
        conn = self._session.conn
        letters = list(dead_letters)
        inserted = rejected = logged = 0
        # A call whose log comes in the same batch (one shard, a backlog) is inserted with the log's tokens
        # and cost: the join after the commit need not look for it (the UPDATE is most of its time).
        at_hand = {r.request_id: r for r in logs if r.request_id}
        try:
            with conn.cursor() as cur:
                refs = self._refs(cur, calls) if calls else []
                log_refs = self._log_refs(cur, logs) if logs else []
                # Dimension rows commit on their own: the ids cached in-process must exist even if the
                # batch below is rolled back.
                conn.commit()
                try:
                    inserted = self._insert_calls(cur, calls, refs, at_hand)
                    logged = self._insert_logs(cur, logs, log_refs)
                except _CONTENT_ERRORS as error:
                    conn.rollback()
                    log.warning("batch rejected by the database, retrying rows one by one",
                                extra={"error": str(error)})
                    values = Values(cur.connection)
                    inserted, bad = self._one_by_one(cur, [
                        (_CALL_SQL_HEAD + values.row(c, ref, at_hand.get(c.request_id or "")) + _CALL_SQL_TAIL,
                         c.event_id, c)
                        for c, ref in zip(calls, refs, strict=True)])
                    logged, bad_logs = self._one_by_one(cur, [
                        (_LOG_SQL_HEAD + values.log(r, *ref) + _LOG_SQL_TAIL, f"log {r.request_id}", r)
                        for r, ref in zip(logs, log_refs, strict=True)])
                    letters += bad + bad_logs
                    rejected = len(bad) + len(bad_logs)
                if letters:
                    cur.executemany(_DEAD_SQL, [_dead_row(d) for d in letters])
        except BaseException:
            _quiet_rollback(conn)
            raise
        # Filled at the insert only if every call was new: a row already there (a redo) kept its own columns
        # (ON DUPLICATE KEY does nothing) and may still lack its tokens, which the join then gives it.
        filled = frozenset(c.request_id for c in calls if c.request_id in at_hand) if inserted == len(calls) \
            else frozenset()
        self._to_join = (calls, logs, filled)
        return WriteResult(inserted, len(letters), rejected, logged)

    def _log_refs(self, cur: pymysql.cursors.Cursor, logs: Sequence[LogRow]) -> list[tuple[int, int | None]]:
        models = self._models.ids(cur, {r.model_id for r in logs} | {r.price_model for r in logs if r.price_model})
        return [(models[r.model_id], models[r.price_model] if r.price_model else None) for r in logs]

    def _insert_logs(
        self, cur: pymysql.cursors.Cursor, logs: Sequence[LogRow], refs: Sequence[tuple[int, int | None]]
    ) -> int:
        inserted = 0
        values = Values(cur.connection)
        for start in range(0, len(logs), _ROWS_PER_STATEMENT):
            chunk = zip(logs[start:start + _ROWS_PER_STATEMENT], refs[start:start + _ROWS_PER_STATEMENT], strict=True)
            inserted += cur.execute(_LOG_SQL_HEAD + ",".join(values.log(r, *ref) for r, ref in chunk) + _LOG_SQL_TAIL)
        return inserted

    def _join(self, conn: pymysql.connections.Connection) -> None:
        """Give the calls of the batch just committed their logs' tokens and cost, and its logs their calls.
        A transaction of its own, after the batch's: its locks are held for a moment, not for the whole
        batch (a call and its log usually come through different shards, whose batches then overlap). If
        it fails, the batch is redone and joins again (only calls still without tokens are filled).

        No join of the two tables in SQL: with thousands of request IDs, the optimizer carries the IN list
        to both sides and probes every ID for every row. Instead, single-table statements, each led by both
        parts of the table's (event_date, request_id) index: the logs of this batch's calls (the logs of
        this batch are at hand), then the calls of all those request IDs still without tokens."""
        calls, logs, filled = self._to_join
        self._to_join = ((), (), frozenset())
        if not calls and not logs:
            return
        # A call's log comes within minutes: the days of the batch and a day either side (midnight).
        days = sorted({d + timedelta(days=k) for d in {c.event_date for c in calls} | {r.event_date for r in logs}
                       for k in (-1, 0, 1)})
        values: dict[str, tuple[object, ...]] = {
            r.request_id: (*r.tokens, usd(r.cost_nanos)) for r in logs}
        with conn.cursor() as cur:
            wanted = sorted({c.request_id for c in calls if c.request_id and c.request_id not in values})
            for rows in _chunked(cur, "SELECT request_id, " + ", ".join(_TOKEN_COLUMNS)
                                 + " FROM invocation_logs FORCE INDEX (ix_logs_day_request)", days, wanted):
                values.update((str(row[0]), tuple(row[1:])) for row in rows)
            # The calls to fill, each found by (day, request ID), their values chosen by request ID. The index is
            # forced: on a day's statistics the optimizer would rather read the whole day by primary key.
            fill = sorted(values.keys() - filled)
            for start in range(0, len(fill), _FILL_CHUNK):
                chunk = fill[start:start + _FILL_CHUNK]
                sets = ", ".join(f"{column} = CASE request_id" + " WHEN %s THEN %s" * len(chunk) + " END"
                                 for column in _TOKEN_COLUMNS)
                args = [x for i in range(len(_TOKEN_COLUMNS)) for rid in chunk for x in (rid, values[rid][i])]
                cur.execute(f"UPDATE bedrock_calls FORCE INDEX (ix_calls_day_request) SET {sets}"
                            f" WHERE event_date IN ({','.join(['%s'] * len(days))}) AND request_id IN ("
                            + ",".join(["%s"] * len(chunk)) + ") AND input_tokens IS NULL", [*args, *days, *chunk])
        conn.commit()

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
        calls, logs, _ = self._to_join
        # The hours whose summary this batch changes (bedrock_usage.usage_hourly): its rows' hours, and those of
        # the rows it moves between teams. The calls' tokens the join copies from their logs are not summed there.
        hours = {c.event_time for c in calls} | {r.event_time for r in logs}
        hours.update(at for _, at, _, _ in (*recharge, *recharge_logs))
        try:
            with conn.cursor() as cur:
                if decisions:
                    cur.executemany(_DECISION_SQL, [_decision_row(d, decided_at) for d in decisions])
                if unpriced:
                    cur.executemany(_UNPRICED_SQL, [(u.model, u.fallback_model, u.first_seen, u.last_seen, u.calls)
                                                    for u in sorted(unpriced, key=lambda u: u.model)])
                for table in _CHARGED_TABLES if settle else ():
                    for person, _ in settle:
                        hours.update(_locked_times(cur, table, "principal_id = %s AND team = '' AND event_date >= %s",
                                                   [person, settle_since]))
                    cur.executemany(f"UPDATE {table} SET team = %s WHERE principal_id = %s AND team = ''"
                                    " AND event_date >= %s", [(team, person, settle_since) for person, team in settle])
                if unknown and days:
                    # Most batches with unknown people find them unknown still: ask the small table first.
                    cur.execute("SELECT id FROM principals WHERE resolved_at IS NOT NULL AND id IN ("
                                + ",".join(["%s"] * len(unknown)) + ")", list(unknown))
                    known = [int(r[0]) for r in cur.fetchall()]
                    for table in _CHARGED_TABLES if known else ():
                        hours.update(_locked_times(
                            cur, table, "team = '' AND event_date BETWEEN %s AND %s AND principal_id IN ("
                            + ",".join(["%s"] * len(known)) + ")", [days[0], days[1], *known]))
                        cur.execute(
                            f"UPDATE {table} c JOIN principals p ON p.id = c.principal_id"
                            f" SET c.team = {team_or_default_sql('p.team')} WHERE c.team = ''"
                            " AND c.event_date BETWEEN %s AND %s"
                            " AND c.principal_id IN (" + ",".join(["%s"] * len(known)) + ")",
                            [self._default_team, days[0], days[1], *known])
                for table, key, rows in (("bedrock_calls", "event_id", recharge),
                                         ("invocation_logs", "request_id", recharge_logs)):
                    if rows:
                        cur.executemany(f"UPDATE {table} SET team = %s WHERE event_date = %s AND event_time = %s"
                                        f" AND {key} = %s", [(team, day, at, ident) for day, at, ident, team in rows])
                # Last: two batches marking the same hour wait for each other only while the first commits.
                usage_hourly.mark(cur, hours, decided_at)
            conn.commit()
            self._join(conn)
        except BaseException:
            _quiet_rollback(conn)
            raise

    def abort(self) -> None:
        self._to_join = ((), (), frozenset())
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
        self, cur: pymysql.cursors.Cursor, calls: Sequence[CallRow], refs: Sequence[tuple[int, int | None]],
        at_hand: dict[str, LogRow],
    ) -> int:
        """Multi-row INSERTs built here rather than by executemany: pymysql's generic per-value escaping
        was a third of the consumer's CPU time. Strings still go through the connection's escaper."""
        inserted = 0
        values = Values(cur.connection)
        for start in range(0, len(calls), _ROWS_PER_STATEMENT):
            chunk = zip(calls[start:start + _ROWS_PER_STATEMENT], refs[start:start + _ROWS_PER_STATEMENT],
                        strict=True)
            inserted += cur.execute(_CALL_SQL_HEAD + ",".join(values.row(c, r, at_hand.get(c.request_id or ""))
                                                              for c, r in chunk) + _CALL_SQL_TAIL)
        return inserted

    @staticmethod
    def _one_by_one(
        cur: pymysql.cursors.Cursor, statements: Sequence[tuple[str, str, object]]
    ) -> tuple[int, list[DeadLetter]]:
        """(SQL, what the row is, the row) one at a time: the rows the database rejects become dead letters."""
        inserted, bad = 0, []
        for sql, name, row in statements:
            cur.execute("SAVEPOINT one_row")
            try:
                inserted += cur.execute(sql)
            except _CONTENT_ERRORS as error:
                cur.execute("ROLLBACK TO SAVEPOINT one_row")
                bad.append(DeadLetter(
                    source="mysql", shard_id=None, sequence_number=None, sub_index=0,
                    reason="rejected_by_database", detail=f"{name}: {error}"[:1024],
                    raw=repr(row).encode(), received_at=datetime.now(UTC).replace(tzinfo=None),
                ))
        return inserted, bad


def _chunked(cur: pymysql.cursors.Cursor, select: str, days: Sequence[date], ids: Sequence[str],
             extra: str = "") -> Iterator[Sequence[tuple[Any, ...]]]:
    """Rows by an (event_date, request_id) index (`select` names it): both parts listed, so each (day, ID) pair
    is one exact lookup."""
    within = ",".join(["%s"] * len(days))
    for start in range(0, len(ids), _JOIN_CHUNK):
        chunk = ids[start:start + _JOIN_CHUNK]
        cur.execute(f"{select} WHERE event_date IN ({within}) AND request_id IN ("
                    + ",".join(["%s"] * len(chunk)) + ")" + extra, [*days, *chunk])
        yield cur.fetchall()


def _locked_times(cur: pymysql.cursors.Cursor, table: str, where: str, args: Sequence[object]) -> set[datetime]:
    """The event times of the rows an UPDATE of `table` by `where` is about to move, read with the locks the
    UPDATE takes (a locking read sees what it will change). Held rows are few: a person's first minutes."""
    cur.execute(f"SELECT event_time FROM {table} WHERE {where} FOR UPDATE", list(args))
    return {row[0] for row in cur.fetchall()}


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
