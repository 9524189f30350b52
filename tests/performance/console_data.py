"""A database and a Redis the size of a large organisation, for the console's benchmark (issue 14, "speed"):
10,000 people in 100 teams, 10,000,000 calls from the first day of the previous month (in QUOTA_TIMEZONE) until
now, their invocation logs, the Redis day and month counters the consumer would hold for them, blocks,
decisions, audit rows, notifications, and the hourly summaries refreshed.

    BENCH_MYSQL_URL=mysql://root@127.0.0.1:3306/bu_bench_console BENCH_REDIS_URL=redis://127.0.0.1:6379/12 \\
        python -m tests.performance.console_data

Fast: the calls are made by the database, one INSERT … SELECT per day from a table of numbers (portable to
MySQL 8 and MariaDB), never as Python rows; the logs are INSERT … SELECT from the calls. Reusable: a row of
`bench_generation` names what was generated (its size and the day it was made for); a run finding the same
one leaves MySQL as it is (and rewrites Redis only if Redis lost it). Sizes: CONSOLE_BENCH_CALLS,
CONSOLE_BENCH_PEOPLE, CONSOLE_BENCH_TEAMS.

What the rows look like: calls follow the working day (80 % between 07:00 and 19:00 local); a few people call
much more than most (a power law: the heaviest exceed the default daily limit, and are blocked); 2.5 % of the
calls fail (throttled, invalid), 0.5 % of the successful ones have no log yet (unmetered); eight models, the
call's tokens and cost as its log has them, priced from the shipped price table.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import redis
from pymysql.connections import Connection

from bedrock_usage import db, redis_marker, usage_hourly
from bedrock_usage.keys import Keys
from bedrock_usage.migrate import migrate
from bedrock_usage.periods import first_of_next_month, midnight, redis_horizon
from bedrock_usage.quota import Scope
from bedrock_usage.settings import SharedSettings
from devtools.settings import AllSettings
from tests.conftest import fresh_schema, test_env

T = TypeVar("T")
VERSION = 1  # change when the shape of the generated data changes: older generations are then rebuilt
ACCOUNT = "111122223333"
SEQ_ROWS = 1_000_000  # the numbers table: a day's calls at most
_DIGITS = ("(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL"
           " SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)")
# The numbers 0 to SEQ_ROWS - 1 as a derived table (column n), from six tables of digits: portable to MySQL 8
# and MariaDB, no recursion limit.
NUMBERS = (f"(SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * g.d AS n FROM {_DIGITS} a,"
           f" {_DIGITS} b, {_DIGITS} c, {_DIGITS} e, {_DIGITS} f, {_DIGITS} g)")
DEPARTMENTS = ("research", "platform", "data", "mobile", "web", "support", "finance", "legal", "growth", "ops")
# (model, share of the calls in ‰): the price table's regional standard prices are joined to them.
MODELS = (("anthropic.claude-sonnet-4-5-20250929-v1:0", 300), ("anthropic.claude-haiku-4-5-20251001-v1:0", 200),
          ("amazon.nova-lite-v1:0", 150), ("amazon.nova-pro-v1:0", 100),
          ("anthropic.claude-opus-4-5-20251101-v1:0", 50), ("meta.llama3-3-70b-instruct-v1:0", 80),
          ("anthropic.claude-3-5-haiku-20241022-v1:0", 70), ("amazon.titan-embed-text-v2:0", 50))
OPERATIONS = "'Converse','ConverseStream','InvokeModel','InvokeModelWithResponseStream'"
# Pseudo-random but reproducible per call number g: Knuth's multiplicative hashes, each a different constant.
_H1, _H2, _H3, _H4 = ("MOD(g * 2654435761, 4294967296)", "MOD(g * 2246822519, 4294967296)",
                      "MOD(g * 3266489917, 4294967296)", "MOD(g * 668265263, 4294967296)")
# Where in the local day the call number falls: x in [0, 1) → seconds, monotone (rows come in key order):
# 10 % of the calls from 00:00 to 07:00, 80 % to 19:00, 10 % to midnight.
_SECOND_OF_DAY = ("(CASE WHEN x < 0.1 THEN x / 0.1 * 25200 WHEN x < 0.9 THEN 25200 + (x - 0.1) / 0.8 * 43200"
                  " ELSE 68400 + (x - 0.9) / 0.1 * 18000 END)")


@dataclass(frozen=True)
class Spec:
    people: int
    teams: int
    calls: int
    today: date  # the local day it was made for: counters and "today" move with it

    @property
    def name(self) -> str:
        return f"v{VERSION} people={self.people} teams={self.teams} calls={self.calls} today={self.today}"


@dataclass(frozen=True)
class Generation:
    spec: Spec
    reused: bool
    seconds: dict[str, float]  # step → wall time

    def report(self) -> str:
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        return f"{self.spec.name}: {'reused' if self.reused else 'generated'} ({steps or 'nothing to do'})"


def generate(settings: AllSettings, *, people: int = 10_000, teams: int = 100, calls: int = 10_000_000,
             now: datetime | None = None) -> Generation:
    """Fill the settings' database and Redis (the database is dropped and rebuilt unless it holds this very
    generation already)."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    tz = settings.quota_timezone
    spec = Spec(people, teams, calls, now.astimezone(tz).date())
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.redis_key_prefix)
    seconds: dict[str, float] = {}
    reused = _generated(settings, spec)
    if not reused:
        _step(seconds, "schema", lambda: fresh_schema(settings))
    conn = db.connect(settings.mysql)
    days: PersonDays | None = None
    try:
        if not reused:
            with conn.cursor() as cur:
                cur.execute("SET SESSION unique_checks = 0")
            _step(seconds, "people", lambda: _people(conn, spec))
            keys_of = {table: _drop_secondary_keys(conn, table) for table in ("bedrock_calls", "invocation_logs")}
            _step(seconds, "calls", lambda: _calls(conn, spec, tz, now))
            _step(seconds, "logs", lambda: _logs(conn))
            _step(seconds, "indexes", lambda: _add_all_keys(conn, keys_of))
            found = days = _step(seconds, "person_days", lambda: _person_days(conn))
            _step(seconds, "enforcement", lambda: _enforcement(conn, settings, found, now))
            _step(seconds, "analyze", lambda: _analyze(conn))
            _step(seconds, "usage_hourly", lambda: _summaries(conn, tz))
        if reused:
            _step(seconds, "upgrade", lambda: _upgrade(settings, conn))
        if reused and client.get(_redis_mark(keys)) == spec.name.encode():
            return Generation(spec, True, seconds)
        if days is None:
            days = _step(seconds, "person_days", lambda: _person_days(conn))
        _step(seconds, "redis", lambda: _redis(conn, client, keys, days, settings=settings, spec=spec, now=now))
        if not reused:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO bench_generation (id, spec, took, finished_at)"
                            " VALUES (1, %s, %s, UTC_TIMESTAMP(3))",
                            (spec.name, Generation(spec, False, seconds).report()[:1024]))
            conn.commit()
    finally:
        conn.close()
        client.close()
    return Generation(spec, reused, seconds)


def _step(seconds: dict[str, float], name: str, work: Callable[[], T]) -> T:
    started = time.monotonic()
    result = work()
    seconds[name] = time.monotonic() - started
    return result


def _generated(settings: SharedSettings, spec: Spec) -> bool:
    try:
        conn = db.connect(settings.mysql)
    except Exception:  # no database yet
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT spec FROM bench_generation WHERE id = 1")
            row = cur.fetchone()
        return bool(row and row[0] == spec.name)
    except Exception:  # no such table: not a generated database
        return False
    finally:
        conn.close()


def _redis_mark(keys: Keys) -> str:
    return f"{keys.prefix}:bench_generation"


# -- MySQL ---------------------------------------------------------------------------------------------------

def _drop_secondary_keys(conn: Connection, table: str) -> tuple[str, list[str]]:
    """Drop a table's secondary indexes before a bulk load: built afterwards, sorted, they cost a fraction of
    what maintaining them row by row does (with random keys: request IDs, people). Returns the table's
    definition and the index clauses, exactly as the migrations made them."""
    with conn.cursor() as cur:
        cur.execute(f"SHOW CREATE TABLE {table}")
        definition = str(cur.fetchone()[1])  # type: ignore[index]
        clauses = [line.strip().rstrip(",") for line in definition.splitlines() if line.strip().startswith("KEY ")]
        names = [clause.split("`")[1] for clause in clauses]
        cur.execute(f"ALTER TABLE {table} " + ", ".join(f"DROP KEY `{name}`" for name in names))
    conn.commit()
    return definition, clauses


def _add_all_keys(conn: Connection, keys_of: dict[str, tuple[str, list[str]]]) -> None:
    for table, (definition, clauses) in keys_of.items():
        _add_keys(conn, table, definition, clauses)


def _add_keys(conn: Connection, table: str, definition: str, clauses: list[str]) -> None:
    with conn.cursor() as cur:
        cur.execute(f"ALTER TABLE {table} " + ", ".join(f"ADD {clause}" for clause in clauses))
        cur.execute(f"SHOW CREATE TABLE {table}")
        rebuilt = str(cur.fetchone()[1])  # type: ignore[index]
    conn.commit()
    if rebuilt != definition:  # the benchmark must measure the schema the migrations make, nothing else
        raise RuntimeError(f"{table} rebuilt differently:\n{definition}\n---\n{rebuilt}")


def _people(conn: Connection, spec: Spec) -> None:
    """Teams, people (70 % IAM users, 30 % Identity Center users; person i in team i mod teams), models, and the
    numbers table the calls are made from."""
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE bench_generation (id TINYINT UNSIGNED NOT NULL PRIMARY KEY,"
                    " spec VARCHAR(255) NOT NULL, took VARCHAR(1024) NOT NULL, finished_at DATETIME(3) NOT NULL)"
                    " ENGINE=InnoDB")
        cur.execute("CREATE TABLE bench_seq (n INT UNSIGNED NOT NULL PRIMARY KEY) ENGINE=InnoDB")
        cur.execute(f"INSERT INTO bench_seq (n) SELECT n FROM {NUMBERS} numbers")
        names = [f"{DEPARTMENTS[i % len(DEPARTMENTS)]}-{i // len(DEPARTMENTS) + 1}" for i in range(spec.teams)]
        cur.executemany("INSERT INTO teams (name, daily_request_limit, monthly_request_limit, monthly_cost_limit_usd)"
                        " VALUES (%s, %s, %s, %s)",
                        [(n, None if i % 3 else 40_000, None if i % 4 else 600_000, None if i % 5 else 50_000)
                         for i, n in enumerate(names)])
        cur.execute("CREATE TEMPORARY TABLE bench_teams (i INT UNSIGNED NOT NULL PRIMARY KEY, name VARCHAR(128))")
        cur.executemany("INSERT INTO bench_teams VALUES (%s, %s)", list(enumerate(names)))
        cur.execute(
            "INSERT INTO principals (id, quota_key, identity_type, arn, account_id, display_name, team, team_source,"
            " email, first_seen_at, tags_checked_at, resolved_at, daily_request_limit)"
            " SELECT s.n + 1, IF(MOD(s.n, 10) < 7, CONCAT('arn:aws:iam::', %s, ':user/person', LPAD(s.n + 1, 5, '0')),"
            "   CONCAT('sso:person', LPAD(s.n + 1, 5, '0'), '@example.com')),"
            " IF(MOD(s.n, 10) < 7, 'iam_user', 'sso_user'),"
            " IF(MOD(s.n, 10) < 7, CONCAT('arn:aws:iam::', %s, ':user/person', LPAD(s.n + 1, 5, '0')), NULL), %s,"
            " CONCAT('Person ', s.n + 1), t.name, 'tag', CONCAT('person', LPAD(s.n + 1, 5, '0'), '@example.com'),"
            " %s, %s, %s, IF(MOD(s.n, 50) = 0, 500, NULL)"
            " FROM bench_seq s JOIN bench_teams t ON t.i = MOD(s.n, %s) WHERE s.n < %s ORDER BY s.n",
            (ACCOUNT, ACCOUNT, ACCOUNT, *[datetime.combine(spec.today.replace(day=1) - timedelta(days=40),
                                                           datetime.min.time())] * 3, spec.teams, spec.people))
        # One row per ‰ of the calls (the model of the calls whose number hashes to that slot): an equality
        # join, looked up by key for each call.
        cur.execute("CREATE TABLE bench_models (slot SMALLINT UNSIGNED NOT NULL PRIMARY KEY,"
                    " id SMALLINT UNSIGNED NOT NULL, p_in DECIMAL(16,6) NOT NULL, p_out DECIMAL(16,6) NOT NULL,"
                    " p_cr DECIMAL(16,6) NOT NULL, p_cw DECIMAL(16,6) NOT NULL) ENGINE=InnoDB")
        lo = 0
        for model, share in MODELS:
            cur.execute("INSERT INTO models (model_id) VALUES (%s) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)",
                        (model,))
            model_ref = cur.lastrowid
            cur.execute("SELECT input, output, cache_read, cache_write_5m FROM prices WHERE model = %s"
                        " AND region = '*' AND scope = 'regional' AND tier = 'standard'"
                        " ORDER BY effective_from DESC LIMIT 1", (model,))
            prices = cur.fetchone() or (1, 5, 0.1, 1.25)
            cur.executemany("INSERT INTO bench_models VALUES (%s, %s, %s, %s, %s, %s)",
                            [(slot, model_ref, *prices) for slot in range(lo, lo + share)])
            lo += share
    conn.commit()


def _day_plan(spec: Spec, tz: ZoneInfo, now: datetime) -> list[tuple[date, datetime, int, int, int]]:
    """(day, its midnight in UTC, its length in seconds, the calls per full day, the calls it gets) from the first
    of the previous month to today (today: only its hours so far, along the same curve)."""
    first = (spec.today.replace(day=1) - timedelta(days=1)).replace(day=1)
    days = [first + timedelta(days=i) for i in range((spec.today - first).days + 1)]
    start = midnight(spec.today, tz)
    length = (midnight(spec.today + timedelta(days=1), tz) - start).total_seconds()
    share = _curve_inverse((now - start).total_seconds() / length)  # of a full day's calls, made by now
    per_day = int(spec.calls / (len(days) - 1 + share))
    plan = []
    for day in days:
        begins = midnight(day, tz)
        seconds = int((midnight(day + timedelta(days=1), tz) - begins).total_seconds())
        plan.append((day, begins, seconds, per_day, per_day if day < spec.today else int(per_day * share)))
    made = sum(p[4] for p in plan)
    day, begins, seconds, per_day, today = plan[-1]
    plan[-1] = (day, begins, seconds, per_day, max(0, today + spec.calls - made))  # exactly `calls` in all
    return plan


def _curve_inverse(fraction_of_day: float) -> float:
    """The share of a day's calls made by a point of the day (the inverse of _SECOND_OF_DAY)."""
    s = max(0.0, min(1.0, fraction_of_day)) * 86400
    if s < 25200:
        return s / 25200 * 0.1
    if s < 68400:
        return 0.1 + (s - 25200) / 43200 * 0.8
    return 0.9 + (s - 68400) / 18000 * 0.1


def _calls(conn: Connection, spec: Spec, tz: ZoneInfo, now: datetime) -> None:
    """One INSERT … SELECT per day, in primary-key order. Who calls: a power law over the people (person 1
    the heaviest); the model by its share; tokens and cost for the successful, metered calls."""
    person = f"1 + FLOOR({spec.people} * POW({_H1} / 4294967296, 1.6))"
    tokens_in, tokens_out = f"(50 + MOD({_H2}, 4000))", f"(20 + MOD({_H2} DIV 4096, 1500))"
    cache_read, cache_write = f"IF(MOD({_H3}, 5) = 0, 2048, 0)", f"IF(MOD({_H3}, 7) = 0, 1024, 0)"
    fail = f"MOD({_H4}, 1000)"
    metered = f"({fail} >= 30)"  # < 20 throttled, < 25 invalid, < 30 successful but no log yet
    call_sql = (
        "INSERT INTO bedrock_calls (event_date, event_id, event_time, principal_id, team, account_id, operation,"
        " model_ref, region, request_id, error_code, input_tokens, output_tokens, cache_read_tokens,"
        " cache_write_5m_tokens, cache_write_1h_tokens, cost_usd)"
        " SELECT %(day)s, CONCAT('00000000-0000-4000-8000-', LPAD(HEX(g), 12, '0')),"
        f" TIMESTAMPADD(MICROSECOND, FLOOR({_SECOND_OF_DAY} * %(seconds)s / 86400 * 1000) * 1000, %(midnight)s),"
        " p.id, p.team, %(account)s,"
        f" ELT(1 + MOD(g, 4), {OPERATIONS}), m.id, IF(MOD(g, 3) = 0, 'eu-west-1', 'us-east-1'),"
        f" CONCAT(LPAD(HEX({_H3}), 8, '0'), '-1111-4222-8333-', LPAD(HEX(g), 12, '0')),"
        f" CASE WHEN {fail} < 20 THEN 'ThrottlingException' WHEN {fail} < 25 THEN 'ValidationException' END,"
        f" IF({metered}, {tokens_in}, NULL), IF({metered}, {tokens_out}, NULL),"
        f" IF({metered}, {cache_read}, NULL), IF({metered}, {cache_write}, NULL), IF({metered}, 0, NULL),"
        f" IF({metered}, ROUND(({tokens_in} * m.p_in + {tokens_out} * m.p_out + {cache_read} * m.p_cr"
        f" + {cache_write} * m.p_cw) / 1000000, 9), NULL)"
        # In the numbers' order (STRAIGHT_JOIN: the numbers drive, the others are looked up by key), which is the
        # calls' primary-key order: each day's rows are appended, not sorted.
        " FROM (SELECT n + %(first)s AS g, n / %(per_day)s AS x FROM bench_seq WHERE n < %(count)s) s"
        f" STRAIGHT_JOIN principals p ON p.id = {person}"
        " STRAIGHT_JOIN bench_models m ON m.slot = MOD(g * 40503, 1000)")
    first = 0
    for day, begins, seconds, per_day, count in _day_plan(spec, tz, now):
        if count > SEQ_ROWS:
            raise ValueError(f"{count} calls in a day: more than the numbers table holds ({SEQ_ROWS})")
        with conn.cursor() as cur:
            cur.execute(call_sql, {"day": day, "seconds": seconds, "midnight": begins.replace(tzinfo=None),
                                   "account": ACCOUNT, "first": first, "per_day": per_day, "count": count})
        conn.commit()
        first += count


def _logs(conn: Connection) -> None:
    """The invocation log of each metered call: same request ID, instant, caller, tokens and cost."""
    with conn.cursor() as cur:
        cur.execute("SELECT MIN(event_date), MAX(event_date) FROM bedrock_calls")
        first, last = cur.fetchone() or (None, None)
        day = first
        while day is not None and day <= last:
            cur.execute(
                "INSERT INTO invocation_logs (event_date, event_time, request_id, principal_id, team, account_id,"
                " operation, model_ref, price_model_ref, region, inference_region, price_scope, tier, error_code,"
                " input_tokens, output_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens,"
                " cost_usd, price_status, cache_split)"
                " SELECT event_date, event_time, request_id, principal_id, team, account_id, operation, model_ref,"
                " model_ref, region, NULL, 'regional', 'standard', NULL, input_tokens, output_tokens,"
                " cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cost_usd, 'priced', 'body'"
                " FROM bedrock_calls WHERE event_date = %s AND input_tokens IS NOT NULL"
                " ORDER BY event_date, event_time, request_id", (day,))
            conn.commit()
            day += timedelta(days=1)


@dataclass
class PersonDays:
    """Every person's calls and logs by quota day, summed from the rows (one pass over each table)."""

    people: dict[int, tuple[str, str, str]]  # id → quota key, team, email
    limits: dict[int, int]  # id → daily request limit of their own (the others have the default)
    calls: dict[tuple[int, date], tuple[int, int]]  # (id, day) → successful, failed
    logs: dict[tuple[int, date], tuple[int, ...]]  # (id, day) → logs, in, out, cr, cw5, cw1, cost in nano-dollars


def _person_days(conn: Connection) -> PersonDays:
    """By person id and day, a day's range of each table at a time: grouping a join by the quota keys would sort
    ten million wide rows on disk, and reading a person's rows through their index costs one row lookup each."""
    with conn.cursor() as cur:
        cur.execute("SELECT id, quota_key, team, email, daily_request_limit FROM principals")
        rows = cur.fetchall()
        people = {int(r[0]): (str(r[1]), str(r[2]), str(r[3])) for r in rows}
        limits = {int(r[0]): int(r[4]) for r in rows if r[4] is not None}
        cur.execute("SELECT MIN(event_date), MAX(event_date) FROM bedrock_calls")
        first, last = cur.fetchone() or (None, None)
        calls: dict[tuple[int, date], tuple[int, int]] = {}
        logs: dict[tuple[int, date], tuple[int, ...]] = {}
        day = first
        while day is not None and day <= last:  # a day at a time: each group-by's temporary table stays in memory
            cur.execute("SELECT principal_id, SUM(error_code IS NULL), SUM(error_code IS NOT NULL)"
                        " FROM bedrock_calls FORCE INDEX (PRIMARY) WHERE event_date = %s GROUP BY principal_id", (day,))
            calls.update(((int(p), day), (int(ok), int(failed))) for p, ok, failed in cur.fetchall())
            cur.execute("SELECT principal_id, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),"
                        " SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens), ROUND(SUM(cost_usd) * 1000000000)"
                        " FROM invocation_logs FORCE INDEX (PRIMARY) WHERE event_date = %s GROUP BY principal_id",
                        (day,))
            logs.update(((int(p), day), tuple(int(v) for v in values)) for p, *values in cur.fetchall())
            day += timedelta(days=1)
    conn.commit()
    return PersonDays(people, limits, calls, logs)


def _enforcement(conn: Connection, settings: SharedSettings, days: PersonDays, now: datetime) -> None:
    """For every person-day over a warning threshold of the daily request limit: the decisions, the enforcer's
    audit rows and the notifications; a block for each day exceeded (lifted at the next midnight, still in force
    for today's), and two admin blocks."""
    tz = settings.quota_timezone
    default = settings.user_defaults.daily or 300
    percents = sorted({*settings.warning_thresholds, 100})
    naive_now = now.replace(tzinfo=None)
    over = []
    for (person, day), (used, _) in sorted(days.calls.items()):
        limit = days.limits.get(person, default)
        if used * 100 >= min(percents) * limit:
            over.append((person, *days.people[person], day, used, limit))
    with conn.cursor() as cur:
        decisions: list[tuple[object, ...]] = []
        actions: list[tuple[object, ...]] = []
        notes: list[tuple[object, ...]] = []
        blocks: dict[str, tuple[object, ...]] = {}
        for _, key, team, email, day, used, limit in over:
            noon = midnight(day, tz).replace(tzinfo=None) + timedelta(hours=12)
            for percent in percents:
                if used * 100 < percent * limit:
                    continue
                kind = "exceeded" if percent == 100 else "warning"
                ident = _digest(key, day, percent)
                at = noon + timedelta(minutes=percent)
                decisions.append((ident[:32], kind, "user", key, "daily_requests", day.isoformat(), percent,
                                  limit * percent // 100, limit, f"ev-{ident[:20]}", at, key, team, at))
                action = "block" if kind == "exceeded" else "warn"
                outcome = "applied" if kind == "exceeded" else "notified"
                until = midnight(day + timedelta(days=1), tz).replace(tzinfo=None) if kind == "exceeded" else None
                actions.append((_digest("action", key, day, percent), at, "system", action, outcome, key, "user",
                                "daily_requests", day.isoformat(), limit * percent // 100, limit, ident[:32], until,
                                f"daily requests at {percent} %"))
                notes.append((_digest("note", key, day, percent), "blocked" if kind == "exceeded" else "warning",
                              "user", key, email, team, "daily_requests", "user", day.isoformat(), percent,
                              limit * percent // 100, limit, until, at, "sent", at, at))
                if kind == "exceeded":
                    in_force = until is not None and until > naive_now
                    blocks[key] = (key, int(in_force), "quota", "user", "daily_requests", day.isoformat(), used,
                                   limit, "daily request quota exceeded", "system", at, until,
                                   "applied" if in_force else "lifted")  # the person's latest day
                    if not in_force:  # lifted at the reset
                        actions.append((_digest("lift", key, day), until, "system", "unblock", "applied", key, None,
                                        None, None, None, None, None, None, "the period reset"))
        cur.executemany(
            "INSERT INTO decisions (decision_id, kind, scope, subject, quota, period, percent, usage_count,"
            " limit_count, event_id, event_time, principal, team, decided_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            decisions)
        cur.executemany(
            "INSERT INTO enforcement_actions (action_key, at, actor, action, outcome, principal, scope, quota, period,"
            " usage_count, limit_count, decision_id, blocked_until, reason) VALUES"
            " (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", actions)
        cur.executemany(
            "INSERT INTO notifications (dedupe_key, kind, scope, principal, email, team, quota, quota_scope, period,"
            " percent, usage_count, limit_count, access_returns_at, created_at, status, next_attempt_at, sent_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", notes)
        cur.executemany(
            "INSERT INTO blocks (principal, blocked, origin, scope, quota, period, usage_count, limit_count, reason,"
            " actor, blocked_at, blocked_until, iam_state) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            list(blocks.values()))
        cur.execute("SELECT quota_key FROM principals WHERE id IN (777, 4242)")
        for (key,) in cur.fetchall():  # two admin blocks, indefinite
            cur.execute("INSERT INTO blocks (principal, blocked, origin, reason, actor, blocked_at, iam_state)"
                        " VALUES (%s, 1, 'admin', 'left the company', 'admin@example.com', %s, 'applied')"
                        " ON DUPLICATE KEY UPDATE blocked = 1", (key, naive_now - timedelta(days=3)))
            cur.execute("INSERT INTO enforcement_actions (action_key, at, actor, action, outcome, principal, reason)"
                        " VALUES (%s, %s, 'admin@example.com', 'block', 'applied', %s, 'left the company')",
                        (_digest("admin", key), naive_now - timedelta(days=3), key))
    conn.commit()


def _digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


def _analyze(conn: Connection) -> None:
    with conn.cursor() as cur:
        for table in ("bedrock_calls", "invocation_logs", "principals", "decisions", "enforcement_actions"):
            cur.execute(f"ANALYZE TABLE {table}")
            cur.fetchall()
        for table in ("bench_seq", "bench_models"):
            cur.execute(f"DROP TABLE {table}")
    conn.commit()


def _upgrade(settings: SharedSettings, conn: Connection) -> None:
    """A reused generation brought to the current schema: the migrations added since (re-runnable), and a
    summary table derived from usage_hourly filled as the refresher fills it, hour by hour, if it is new."""
    migrate(settings.mysql)
    with conn.cursor() as cur:
        cur.execute("SELECT EXISTS(SELECT 1 FROM usage_hour_team)")
        (filled,) = cur.fetchone() or (1,)
        if not filled:
            cur.execute("INSERT INTO usage_hour_team (hour_utc, team, requests, failed, cost_usd) SELECT hour_utc,"
                        " team, SUM(requests), SUM(failed), SUM(cost_usd) FROM usage_hourly GROUP BY hour_utc, team")
    conn.commit()


def _summaries(conn: Connection, tz: ZoneInfo) -> None:
    """The summaries as a console deployed on this database would build them: a backfill, then refreshes."""
    usage_hourly.backfill(conn, tz, None)
    usage_hourly.refresh_all(conn, tz)


# -- Redis ---------------------------------------------------------------------------------------------------

def _redis(conn: Connection, client: redis.Redis, keys: Keys, found: PersonDays, *, settings: SharedSettings,
           spec: Spec, now: datetime) -> None:
    """The counters the consumer would hold, from the rows (so they agree with MySQL): each person's and team's
    day counters from the Redis horizon on and their month counters, the teams' members, and the marker."""
    tz = settings.quota_timezone
    horizon = redis_horizon(now, tz, settings.counter_grace_days)
    days: dict[tuple[Scope, str, str], dict[str, int]] = {}
    members: dict[tuple[str, str], set[str]] = {}
    # Every row of a person here is charged to the person's team.
    for (person, day), (req, err) in found.calls.items():
        if day < horizon:
            continue
        key, team, _ = found.people[person]
        _add(days, key, team, day, {"req": req, "err": err})
        for period in (day.isoformat(), day.isoformat()[:7]):
            members.setdefault((team, period), set()).add(key)
    for (person, day), (logs, tin, tout, tcr, tcw5, tcw1, cost) in found.logs.items():
        if day < horizon:
            continue
        key, team, _ = found.people[person]
        _add(days, key, team, day, {"logs": logs, "in": tin, "out": tout, "cr": tcr, "cw5": tcw5, "cw1": tcw1,
                                    "cost": cost})
    _clear(client, keys)
    pipe = client.pipeline(transaction=False)
    for n, ((scope, subject, period), counters) in enumerate(days.items(), 1):
        key = keys.counter(scope, subject, period)
        values: dict[Any, Any] = {k: v for k, v in counters.items() if v}  # redis-py types its keys invariantly
        if not values:
            continue
        pipe.hset(key, mapping=values)
        pipe.expireat(key, _expiry(period, tz, settings.counter_grace_days))
        if n % 5000 == 0:
            pipe.execute()
    for (team, period), keys_in_team in members.items():
        key = keys.members(team, period)
        pipe.sadd(key, *sorted(keys_in_team))
        pipe.expireat(key, _expiry(period, tz, settings.counter_grace_days))
    pipe.execute()
    redis_marker.stamp(conn, client, keys, by="tests.performance.console_data")
    client.set(_redis_mark(keys), spec.name)


def _add(days: dict[tuple[Scope, str, str], dict[str, int]], person: str, team: str, day: date,
         counters: dict[str, int]) -> None:
    for scope, subject in ((Scope.USER, person), (Scope.TEAM, team)):
        for period in (day.isoformat(), day.isoformat()[:7]):
            found = days.setdefault((scope, subject, period), {})
            for name, value in counters.items():
                found[name] = found.get(name, 0) + value


def _expiry(period: str, tz: ZoneInfo, grace_days: int) -> int:
    """As the consumer expires them: the end of the period's month plus the grace days."""
    month = date.fromisoformat(period[:7] + "-01")
    return int((midnight(first_of_next_month(month), tz) + timedelta(days=grace_days)).timestamp())


def _clear(client: redis.Redis, keys: Keys) -> None:
    """Only this prefix's keys (the logical database may be shared with nothing else, but be polite)."""
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{keys.prefix}:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


def main() -> None:
    url = os.environ.get("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/bu_bench_console")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    settings = AllSettings.from_env(test_env(MYSQL_URL=url, REDIS_URL=redis_url))
    started = time.monotonic()
    generation = generate(settings, people=int(os.environ.get("CONSOLE_BENCH_PEOPLE", "10000")),
                          teams=int(os.environ.get("CONSOLE_BENCH_TEAMS", "100")),
                          calls=int(os.environ.get("CONSOLE_BENCH_CALLS", "10000000")))
    print(f"{generation.report()}; {time.monotonic() - started:.1f} s in all")


if __name__ == "__main__":
    main()
