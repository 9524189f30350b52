"""`make bench`: the processor core against real Redis and MariaDB, beside the seed system's way.

1. core: ~200,000 generated records from 2,000 people — half EventBridge events of calls, half their
   model invocation logs (CloudWatch Logs subscription payloads of ~3 KB, bodies included) — in
   KCL-sized batches (10,000 records), through the same processor core the KCL consumer runs: events/s,
   decision latency (batch received → decision published) p50/p99 for request and for cost decisions
   (a log's arrival → its cost decision), Redis bytes per person.
2. baseline, same run: what the seed system did per call: insert the row, COUNT(*) the person's rows
   for the day and for the month, update the user, commit (its Lambda handled one call at a time); per
   log: look the model's price up, update the call's row with tokens and cost, SUM the person's cost for
   the day and the month, update the user, commit.
   Timed on the last BASELINE_EVENTS events, its table holding the earlier events of the same day, as
   the core's did when it met them.
3. history: `bedrock_calls` filled to millions of rows of earlier days, then a fresh 200,000 events of
   today: events/s again, and the baseline again with the same earlier days in its table (its monthly
   COUNT(*) then reads what it would in the middle of a month).

Targets (issue #2): core >= 25,000 events/s on one core, >= 50x the baseline, <= 10 % slower with
millions of rows already in the table. The last line prints both rates and their ratio.
AllSettings: BENCH_EVENTS, BENCH_PEOPLE, BENCH_BATCH, BENCH_BASELINE_EVENTS, BENCH_PREFILL_ROWS,
BENCH_LOGS (0: calls only, the earlier releases' workload), BENCH_MYSQL_URL (database is dropped and
recreated), BENCH_REDIS_URL (flushed).
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pymysql
import redis
from prometheus_client import CollectorRegistry

from bedrock_usage import db, limits, quota_file
from bedrock_usage.keys import Keys
from bedrock_usage.migrate import migrate
from bedrock_usage.periods import midnight
from bedrock_usage.pricing.book import PriceBook
from bedrock_usage.pricing.model_ids import parse_model_id
from bedrock_usage.redis_state import RedisState, redis_client
from consumer.assembly import assemble_consumer
from consumer.decode import Decoder
from consumer.events import BedrockCall, InvocationLog
from consumer.processor import BatchInFlight, BatchResult
from consumer.records import InputRecord
from devtools.settings import AllSettings
from devtools.simulate import invocation_log, people, subscription_payload, traffic

EVENTS = int(os.environ.get("BENCH_EVENTS", "200000"))
PEOPLE = int(os.environ.get("BENCH_PEOPLE", "2000"))
BATCH = int(os.environ.get("BENCH_BATCH", "10000"))
BASELINE_EVENTS = int(os.environ.get("BENCH_BASELINE_EVENTS", "10000"))
PREFILL_ROWS = int(os.environ.get("BENCH_PREFILL_ROWS", "3000000"))
TEAMS = int(os.environ.get("BENCH_TEAMS", "20"))
# 0: calls only (the previous releases' workload, to compare with their figures).
LOGS = os.environ.get("BENCH_LOGS", "1") != "0"
MYSQL_URL = os.environ.get("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/bedrock_usage_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
TZ = ZoneInfo("Europe/Madrid")


def say(text: str) -> None:
    print(text, flush=True)


def settings(cost_per_person: Decimal = Decimal(50)) -> AllSettings:
    # Limits = the average usage, so many people and every team cross 60 %, 85 % and 100 % of both the
    # request and the cost quotas: decisions of both scopes and kinds are exercised. Everyone's team comes
    # from the quota file (no lookup to wait for).
    calls = EVENTS // 2 if LOGS else EVENTS
    return AllSettings.from_env({}, MYSQL_URL=MYSQL_URL, REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX="bench",
                             TEAM_TAG_LOOKUP="false", DEFAULT_DAILY_REQUEST_LIMIT=str(max(1, calls // PEOPLE)),
                             DEFAULT_TEAM_DAILY_REQUEST_LIMIT=str(max(1, calls // TEAMS)),
                             DEFAULT_DAILY_COST_LIMIT_USD=f"{max(cost_per_person, Decimal('0.01')):.2f}",
                             DEFAULT_TEAM_DAILY_COST_LIMIT_USD=f"{max(cost_per_person * PEOPLE / TEAMS, 1):.2f}")


def assign_teams(s: AllSettings) -> None:
    """The people in TEAMS teams, by a quota file, as an organisation would declare them."""
    lines = ["teams:", *(f"  team-{t:02d}: {{}}" for t in range(TEAMS)), "users:"]
    lines += [f'  "{p.quota_key}": {{team: team-{i % TEAMS:02d}}}' for i, p in enumerate(people(PEOPLE))]
    conn = db.connect(s.mysql)
    try:
        limits.apply(conn, RedisState(redis_client(s), Keys(s.redis_key_prefix)),
                     quota_file.parse_quota_file("\n".join(lines), default_team=s.default_team))
    finally:
        conn.close()


def fresh_stores(s: AllSettings) -> None:
    conn = pymysql.connect(host=s.mysql.host, port=s.mysql.port, user=s.mysql.user, password=s.mysql.password)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{s.mysql.database}`")
    conn.close()
    migrate(s.mysql)
    redis.Redis.from_url(REDIS_URL).flushdb()


def generate(count: int, seed: int) -> list[bytes]:
    """Records of today (local), spread over the hours before now, in time order: `count // 2` calls and
    their invocation logs, each log a few records after its call (as the two paths deliver them)."""
    now = datetime.now(UTC)
    start = max(midnight(now.astimezone(TZ).date(), TZ), now - timedelta(hours=8))
    span = max(now - start - timedelta(seconds=30), timedelta(minutes=1))
    rng = random.Random(seed)
    if not LOGS:
        return [orjson.dumps(e) for e in traffic(people(PEOPLE), count, start, span, seed=seed)]
    calls = list(traffic(people(PEOPLE), count // 2, start, span, seed=seed))
    out: list[bytes] = []
    lag = 50
    for i, call in enumerate(calls):
        out.append(orjson.dumps(call))
        if i >= lag:
            out.append(_log_record(calls[i - lag], rng))
    out += [_log_record(call, rng) for call in calls[max(0, len(calls) - lag):]]
    return out


def _log_record(call: dict[str, Any], rng: random.Random) -> bytes:
    # A denied or throttled call never reached a model: it has no log.
    if call["detail"].get("errorCode"):
        return subscription_payload([])
    return subscription_payload([invocation_log(call, rng, body_bytes=2400)])


def cost_per_person(s: AllSettings, data: list[bytes]) -> Decimal:
    """The average a person spends in `data`, priced as the consumer will (setup, not timed)."""
    conn = db.connect(s.mysql)
    try:
        book = PriceBook.load(conn, s.price_fallback)
    finally:
        conn.close()
    total = 0
    for raw in data:
        for item in Decoder().decode(raw):
            if isinstance(item, InvocationLog):
                total += book.charge(parse_model_id(item.model_id), item.region, item.tier, item.timestamp.date(),
                                     item.tokens).nanos
    return Decimal(total) / PEOPLE / 10**9


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run_core(s: AllSettings, data: list[bytes], label: str) -> float:
    parts = assemble_consumer(s, source="bench", registry=CollectorRegistry())
    records = [InputRecord(d, "shardId-000000000000", str(i)) for i, d in enumerate(data, start=1)]
    latencies: list[float] = []
    cost_latencies: list[float] = []
    decisions = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    # As the KCL record processor does with full batches: count batch N+1 while batch N is committed.
    done: list[BatchResult] = []
    in_flight: BatchInFlight | None = None
    for start in range(0, len(records), BATCH):
        flight = parts.processor.submit(records[start:start + BATCH])
        if in_flight is not None:
            done.append(in_flight.wait())
        in_flight = flight
    if in_flight is not None:
        done.append(in_flight.wait())
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    for result in done:
        if result.decision_latency is not None:
            latencies += [result.decision_latency] * sum(1 for d in result.decisions if not d.quota.cost)
            cost_latencies += [result.decision_latency] * sum(1 for d in result.decisions if d.quota.cost)
            decisions += len(result.decisions)
    parts.close()
    rate = len(records) / elapsed
    say(f"{label}: {len(records)} events in {elapsed:.2f} s = {rate:,.0f} events/s"
        f" (process CPU {cpu:.2f} s: {cpu / elapsed:.0%} of one core), {decisions} decisions")
    if latencies:
        say(f"{label}: request decision latency (batch of {BATCH} received -> decision published)"
            f" p50 {percentile(latencies, 50) * 1000:.0f} ms, p99 {percentile(latencies, 99) * 1000:.0f} ms")
    if cost_latencies:
        say(f"{label}: cost decision latency (a log's batch received -> its cost decision published)"
            f" p50 {percentile(cost_latencies, 50) * 1000:.0f} ms, p99 {percentile(cost_latencies, 99) * 1000:.0f} ms"
            f" ({len(cost_latencies)} cost decisions)")
    return rate


def redis_bytes_per_person(s: AllSettings) -> float:
    client = redis.Redis.from_url(REDIS_URL)
    total, people_seen = 0, set()
    for key in client.scan_iter(match=f"{s.redis_key_prefix}:{{u:*", count=5000):
        total += int(client.memory_usage(key, samples=0) or 0)
        people_seen.add(key.split(b"}")[0])
    return total / max(1, len(people_seen))


SEED_SCHEMA = (
    "CREATE TABLE users (user_id VARCHAR(255) PRIMARY KEY, team VARCHAR(100) NOT NULL,"
    " daily_limit INT DEFAULT 250, monthly_limit INT DEFAULT 5000, is_blocked BOOLEAN DEFAULT FALSE,"
    " daily_requests INT DEFAULT 0, monthly_requests INT DEFAULT 0,"
    " updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)",
    # The seed's table, plus an index it lacked (without it every COUNT(*) scans the table): a fair rival.
    "CREATE TABLE bedrock_requests (id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id VARCHAR(255) NOT NULL,"
    " team VARCHAR(100) NOT NULL, request_timestamp TIMESTAMP(3) NOT NULL,"
    " date_only DATE GENERATED ALWAYS AS (DATE(request_timestamp)) STORED, model_id VARCHAR(255) NOT NULL,"
    " region VARCHAR(50), source_ip VARCHAR(45), user_agent TEXT, request_id VARCHAR(255),"
    " status_code INT DEFAULT 200, error_message TEXT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
    " input_tokens INT DEFAULT 0, output_tokens INT DEFAULT 0, cost_usd DECIMAL(10,6) DEFAULT 0,"
    " KEY ix_user_date (user_id, date_only), KEY ix_request (request_id))",
    # The seed's price table (per token), looked up per call.
    "CREATE TABLE model_pricing (model_id VARCHAR(255) PRIMARY KEY, input_token_price DECIMAL(10,8),"
    " output_token_price DECIMAL(10,8))",
)


def run_baseline(s: AllSettings, data: list[bytes], label: str, *, with_history: bool = False) -> float:
    params = s.mysql
    conn = pymysql.connect(host=params.host, port=params.port, user=params.user, password=params.password)
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS bedrock_usage_bench_seed")
        cur.execute("CREATE DATABASE bedrock_usage_bench_seed")
        cur.execute("USE bedrock_usage_bench_seed")
        for statement in SEED_SCHEMA:
            cur.execute(statement)
    conn.commit()
    decoder = Decoder()
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO model_pricing VALUES (%s, 0.000003, 0.000015)",
                        [(m,) for m in {c.model_id for raw in data[:2000] for c in decoder.decode(raw)
                                        if isinstance(c, BedrockCall)}])
    # The seed's table holds the same day so far as the core's did when it met these events: load the
    # earlier events in bulk (untimed), then time the per-call path on the last BASELINE_EVENTS.
    history = [c for raw in data[:-BASELINE_EVENTS] for c in decoder.decode(raw) if isinstance(c, BedrockCall)]
    with conn.cursor() as cur:
        for start in range(0, len(history), 5000):
            cur.executemany(
                "INSERT INTO bedrock_requests (user_id, team, request_timestamp, model_id, region)"
                " VALUES (%s, 'default', %s, %s, %s)",
                [(c.principal.key, c.event_time.replace(tzinfo=None), c.model_id, c.region)
                 for c in history[start:start + 5000]])
        if with_history:
            # The same earlier days of this month as the core's table holds, so that the month's COUNT(*)
            # reads what the seed's read in the middle of a month (earlier months it never reads).
            cur.execute(
                "INSERT INTO bedrock_requests (user_id, team, request_timestamp, model_id, region)"
                f" SELECT p.quota_key, c.team, c.event_time, 'm', c.region FROM `{params.database}`.bedrock_calls c"
                f" JOIN `{params.database}`.principals p ON p.id = c.principal_id"
                " WHERE c.event_date >= DATE_FORMAT(%s, '%%Y-%%m-01')", (datetime.now(TZ).date(),))
    conn.commit()
    timed = data[-BASELINE_EVENTS:]
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        for raw in timed:
            decoded = decoder.decode(raw)
            if not decoded:
                continue
            if isinstance(decoded[0], InvocationLog):
                _seed_log(cur, decoded[0])
                conn.commit()
                continue
            call = decoded[0]
            assert isinstance(call, BedrockCall)
            user, ts = call.principal.key, call.event_time.replace(tzinfo=None)
            cur.execute("INSERT IGNORE INTO users (user_id, team) VALUES (%s, 'default')", (user,))
            cur.execute(
                "INSERT INTO bedrock_requests (user_id, team, request_timestamp, model_id, region, source_ip,"
                " user_agent, request_id, status_code, error_message) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (user, "default", ts, call.model_id, call.region, call.source_ip, call.user_agent, call.request_id,
                 200 if call.counted else 400, call.error_code))
            cur.execute("SELECT COUNT(*) FROM bedrock_requests WHERE user_id = %s AND date_only = %s",
                        (user, ts.date()))
            daily = cur.fetchone()[0]  # type: ignore[index]
            cur.execute("SELECT COUNT(*) FROM bedrock_requests WHERE user_id = %s AND date_only >= %s",
                        (user, ts.date().replace(day=1)))
            monthly = cur.fetchone()[0]  # type: ignore[index]
            cur.execute("UPDATE users SET daily_requests = %s, monthly_requests = %s,"
                        " is_blocked = (%s >= daily_limit) WHERE user_id = %s", (daily, monthly, daily, user))
            conn.commit()
    elapsed = time.perf_counter() - t0
    rate = len(timed) / elapsed
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM bedrock_requests")
        rows = int(cur.fetchone()[0])  # type: ignore[index]
    conn.close()
    say(f"{label}: last {len(timed)} events in {elapsed:.2f} s = {rate:,.0f} events/s"
        f" (insert, COUNT(*) day, COUNT(*) month, update user, commit: per call; {rows:,} rows at the end)")
    return rate


def _seed_log(cur: pymysql.cursors.Cursor, log: InvocationLog) -> None:
    """The seed's cost path for one logged call: price lookup, update the call, sum the day and the month."""
    user, day = log.principal.key, log.timestamp.date()
    cur.execute("SELECT input_token_price, output_token_price FROM model_pricing WHERE model_id = %s",
                (log.model_id,))
    price_in, price_out = cur.fetchone() or (Decimal("0.000003"), Decimal("0.000015"))  # type: ignore[misc]
    cost = log.tokens.input * price_in + log.tokens.output * price_out
    cur.execute("UPDATE bedrock_requests SET input_tokens = %s, output_tokens = %s, cost_usd = %s"
                " WHERE request_id = %s", (log.tokens.input, log.tokens.output, cost, log.request_id))
    cur.execute("SELECT SUM(cost_usd) FROM bedrock_requests WHERE user_id = %s AND date_only = %s", (user, day))
    cur.fetchone()
    cur.execute("SELECT SUM(cost_usd) FROM bedrock_requests WHERE user_id = %s AND date_only >= %s",
                (user, day.replace(day=1)))
    cur.fetchone()
    cur.execute("UPDATE users SET updated_at = CURRENT_TIMESTAMP WHERE user_id = %s", (user,))


def prefill(s: AllSettings, target: int) -> int:
    """Turn the first run's calls into history: double them into earlier days and months until the
    table holds `target` rows from before today, then remove today's, so that the second run does
    the first run's work (an empty today) beside millions of older rows."""
    conn = db.connect(s.mysql)
    rows = 0
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), MAX(event_date) FROM bedrock_calls")
        rows, today = cur.fetchone()  # type: ignore[misc]
        target += rows
        shift = 1
        while 0 < rows < target:
            cur.execute(
                "INSERT INTO bedrock_calls (event_date, event_id, event_time, principal_id, team, account_id,"
                " operation, model_ref, region, inference_region, source_ip, user_agent_ref, request_id,"
                " error_code) SELECT DATE_SUB(event_date, INTERVAL %s DAY), UUID(),"
                " DATE_SUB(event_time, INTERVAL %s DAY), principal_id, team, account_id, operation, model_ref,"
                " region, inference_region, source_ip, user_agent_ref, request_id, error_code"
                " FROM bedrock_calls LIMIT %s", (shift, shift, target - rows))
            conn.commit()
            cur.execute("SELECT COUNT(*) FROM bedrock_calls")
            rows = int(cur.fetchone()[0])  # type: ignore[index]
            shift *= 2
        cur.execute("DELETE FROM bedrock_calls WHERE event_date = %s", (today,))
        conn.commit()
        cur.execute("SELECT COUNT(*) FROM bedrock_calls")
        rows = int(cur.fetchone()[0])  # type: ignore[index]
        # Measure the steady state, not InnoDB still writing back millions of fresh rows: let it flush
        # at full speed (the default io_capacity of 200 pages/s is meant for spinning disks), then restore.
        cur.execute("SELECT @@innodb_io_capacity, @@innodb_max_dirty_pages_pct")
        capacity, dirty_pct = cur.fetchone()  # type: ignore[misc]
        try:
            cur.execute("SET GLOBAL innodb_io_capacity = GREATEST(@@innodb_io_capacity, 20000)")
            cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = 0")
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                if int(cur.fetchone()[1]) < 500:  # type: ignore[index]
                    break
                time.sleep(1)
        except pymysql.err.OperationalError as error:  # no SUPER privilege (a managed server): just wait
            say(f"history: cannot speed up InnoDB's flushing ({error}); waiting 60 s instead")
            time.sleep(60)
        else:
            cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = %s", (dirty_pct,))
            cur.execute("SET GLOBAL innodb_io_capacity = %s", (capacity,))
    conn.close()
    return rows


def main() -> int:
    s = settings()
    say(f"bench: {EVENTS} records (half invocation logs), {PEOPLE} people, batches of {BATCH},"
        f" MySQL {s.mysql.host}:{s.mysql.port}, Redis {REDIS_URL}")
    fresh_stores(s)
    data = generate(EVENTS, seed=1)
    spend = cost_per_person(s, data)
    s = settings(spend)
    say(f"cost quota: ${spend:.2f} a person a day (what the average person spends in the run)")
    assign_teams(s)
    core = run_core(s, data, "core")
    say(f"redis: {redis_bytes_per_person(s):,.0f} bytes per person (counters, dedupe sets, limits)")
    baseline = run_baseline(s, data, "seed baseline")

    t0 = time.perf_counter()
    rows = prefill(s, PREFILL_ROWS)
    say(f"history: bedrock_calls holds {rows:,} rows of earlier days (prepared in {time.perf_counter() - t0:.0f} s)")
    redis.Redis.from_url(REDIS_URL).flushdb()
    assign_teams(s)  # the limits cache with Redis
    later = generate(EVENTS, seed=2)
    baseline_later = run_baseline(s, later, "seed baseline with history", with_history=True)
    with_history = run_core(s, later, "core with history")
    slowdown = (core - with_history) / core
    say(f"with {rows:,} rows already in the table: {slowdown:+.1%} slower (target <= 10 %)")
    say(f"on a first day (no history): core {core:,.0f} events/s, seed baseline {baseline:,.0f} events/s,"
        f" ratio {core / baseline:,.1f}x")
    say(f"core {with_history:,.0f} events/s; seed baseline {baseline_later:,.0f} events/s;"
        f" ratio {with_history / baseline_later:,.1f}x (both beside {rows:,} rows of earlier days)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
