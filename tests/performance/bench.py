"""`make bench`: the processor core against real Redis and MariaDB, beside the seed system's way.

1. core: ~200,000 generated records from 2,000 people in 20 teams — half EventBridge events of calls, half
   their model invocation logs (CloudWatch Logs subscription payloads of ~3 KB, bodies included) — fed as
   production feeds them: processRecords messages (JSON, base64 `data`) read by amazon_kclpy's own
   KCLProcess loop into our RecordProcessor (consumer/kcl_processor.py), in batches no larger than one
   GetRecords call returns (10,000 records or 10 MB), the processor's checkpoints answered
   (tests/performance/kcl_feed.py): records/s, decision latency (batch handed over → decision published)
   p50/p99 for request and for cost decisions, Redis MEMORY USAGE per person and per team (team keys
   included, dedupe sets apart), bytes per row of the growing tables (information_schema).
2. baseline, same run: what the seed system did per call: insert the row, COUNT(*) the person's rows
   for the day and for the month, update the user, commit (its Lambda handled one call at a time); per
   log: look the model's price up, update the call's row with tokens and cost, SUM the person's cost for
   the day and the month, update the user, commit.
   Timed on the last BASELINE_EVENTS events, its table holding the earlier events of the same day, as
   the core's did when it met them. The ratio core / baseline is the figure that carries between machines.
3. history (skipped with BENCH_PREFILL_ROWS=0): `bedrock_calls` filled to millions of rows of earlier days,
   then a fresh 200,000 records of today: records/s again, and the baseline again with the same earlier
   days in its table (its monthly COUNT(*) then reads what it would in the middle of a month).

Targets (issues #2, #12): core >= 50x the baseline, <= 10 % slower with millions of rows already in the
table. Ends with a `bench: summary {json}` line, also merged into BENCH_RESULTS (bench-results.json), which
`python -m devtools.sizing` reads.
AllSettings: BENCH_EVENTS, BENCH_PEOPLE, BENCH_TEAMS, BENCH_BATCH (records a batch at most, <= 10,000),
BENCH_BASELINE_EVENTS, BENCH_PREFILL_ROWS, BENCH_LOGS (0: calls only, the earlier releases' workload),
BENCH_MYSQL_URL (database is dropped and recreated), BENCH_REDIS_URL (flushed), BENCH_RESULTS,
BENCH_REDIS_CLUSTER=1 (Redis is a local three-master Redis Cluster of the run's own instead: `make bench-cluster`).
Smoke run: BENCH_EVENTS=20000 BENCH_PEOPLE=200 BENCH_BASELINE_EVENTS=2000 BENCH_PREFILL_ROWS=0.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

import orjson
import pymysql
import redis

from bedrock_usage import db, limits, quota_file, redis_marker
from bedrock_usage.keys import Keys
from bedrock_usage.migrate import migrate
from bedrock_usage.periods import midnight
from bedrock_usage.pricing.book import PriceBook
from bedrock_usage.pricing.model_ids import parse_model_id
from bedrock_usage.quota import Decision
from bedrock_usage.redis_state import RedisState, redis_client
from consumer.decode import Decoder
from consumer.events import BedrockCall, InvocationLog
from devtools.redis_cluster import LocalRedisCluster
from devtools.settings import AllSettings
from devtools.simulate import invocation_log, people, subscription_payload, traffic
from tests.performance.kcl_feed import run_kcl, split
from tests.performance.results import report, table_bytes

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
REDIS_CLUSTER = os.environ.get("BENCH_REDIS_CLUSTER", "") not in ("", "0")


def bench_redis() -> redis.Redis:
    """A client of the run's Redis (a cluster client under BENCH_REDIS_CLUSTER: FLUSHDB and SCAN reach every
    master); typed as redis.Redis, the commands used here being both clients'."""
    if REDIS_CLUSTER:
        return redis.RedisCluster.from_url(REDIS_URL)  # type: ignore[return-value]
    return redis.Redis.from_url(REDIS_URL)
TZ = ZoneInfo("Europe/Madrid")
TARGET_RATIO = 50  # issue 12: the core >= 50x the seed system's per-call way, measured in the same run


def say(text: str) -> None:
    print(text, flush=True)


def settings(cost_per_person: Decimal = Decimal(50)) -> AllSettings:
    # Limits = the average usage, so many people and every team cross 60 %, 85 % and 100 % of both the
    # request and the cost quotas: decisions of both scopes and kinds are exercised. Everyone's team comes
    # from the quota file (no lookup to wait for).
    calls = EVENTS // 2 if LOGS else EVENTS
    return AllSettings.from_env({}, MYSQL_URL=MYSQL_URL, REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX="bench",
                             REDIS_CLUSTER="true" if REDIS_CLUSTER else "false",
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
    empty_redis(s)


def empty_redis(s: AllSettings) -> None:
    """Redis emptied on purpose, and a fresh marker written with it (bedrock_usage/redis_marker.py): else the
    consumer would take the empty Redis for one that lost its data and rebuild it from MySQL, in the timing."""
    client = bench_redis()
    client.flushdb()
    conn = db.connect(s.mysql)
    try:
        redis_marker.stamp(conn, client, Keys(s.redis_key_prefix, cluster=s.redis_cluster), by="bench")
    finally:
        conn.close()
        client.close()


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


def run_core(s: AllSettings, data: list[bytes], label: str) -> dict[str, Any]:
    """The records through kclpy's message loop into the KCL RecordProcessor, as the daemon feeds it."""
    batches = split(data, max_records=BATCH)
    batch_of: dict[str, int] = {}  # the event a decision names → its batch (setup, not timed)
    decoder = Decoder()
    for index, batch in enumerate(batches):
        for i in batch:
            for item in decoder.decode(data[i]):
                if isinstance(item, BedrockCall):
                    batch_of[item.event_id] = index
                elif isinstance(item, InvocationLog):
                    batch_of[item.request_id] = index
    run = run_kcl(s, data, batches)
    if run.checkpoints[-1] != str(len(data)):
        raise RuntimeError(f"{label}: the last checkpoint was {run.checkpoints[-1]}, not {len(data)}")
    latencies: list[float] = []
    cost_latencies: list[float] = []
    client = bench_redis()
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(Keys(s.redis_key_prefix).decisions))
    for entry_id, fields in entries:
        decision = Decision.from_fields(fields)
        published = int(entry_id.split(b"-")[0]) / 1000
        if decision.event_id not in batch_of:
            continue
        latency = published - run.batch_sent[batch_of[decision.event_id]]
        (cost_latencies if decision.quota.cost else latencies).append(latency)
    rate = len(data) / run.elapsed
    record_bytes = [sum(len(data[i]) for i in b) for b in batches]
    say(f"{label}: {len(data)} records through kclpy (JSON + base64, checkpoint replies) in {len(batches)} batches"
        f" (GetRecords-sized: <= {BATCH:,} records and <= 10 MB; the largest {max(len(b) for b in batches):,}"
        f" records, {max(record_bytes) / 2**20:.1f} MB of data) in {run.elapsed:.2f} s = {rate:,.0f} records/s"
        f" (process CPU {run.cpu:.2f} s: {run.cpu / run.elapsed:.0%} of one core), {len(entries)} decisions,"
        f" {len(run.checkpoints)} checkpoints")
    if latencies:
        say(f"{label}: request decision latency (batch handed to the processor -> decision published)"
            f" p50 {percentile(latencies, 50) * 1000:.0f} ms, p99 {percentile(latencies, 99) * 1000:.0f} ms")
    if cost_latencies:
        say(f"{label}: cost decision latency (a log's batch handed over -> its cost decision published)"
            f" p50 {percentile(cost_latencies, 50) * 1000:.0f} ms, p99 {percentile(cost_latencies, 99) * 1000:.0f} ms"
            f" ({len(cost_latencies)} cost decisions)")
    return {"records": len(data), "records_per_s": rate, "cpu_share": run.cpu / run.elapsed,
            "record_bytes": sum(record_bytes), "batches": len(batches), "decisions": len(entries),
            "decision_p50_s": percentile(latencies, 50) if latencies else None,
            "decision_p99_s": percentile(latencies, 99) if latencies else None,
            "cost_decision_p99_s": percentile(cost_latencies, 99) if cost_latencies else None}


def redis_memory(s: AllSettings) -> dict[str, float]:
    """MEMORY USAGE over every key of each kind: per person ({u:…}) and per team ({t:…}), the dedupe sets
    (which grow with the calls of the month) apart from the rest (which grows with people and teams)."""
    client = bench_redis()
    out: dict[str, float] = {}
    for kind, tag in (("person", "u"), ("team", "t")):
        subjects: set[bytes] = set()
        fixed = seen = entries = 0
        for key in client.scan_iter(match=f"{s.redis_key_prefix}:{{{tag}:*", count=5000):
            size = int(client.memory_usage(key, samples=0) or 0)
            subjects.add(key.split(b"}")[0])
            if b"}:s:" in key:
                seen += size
                entries += int(client.scard(key))
            else:
                fixed += size
        n = max(1, len(subjects))
        out |= {f"{kind}s": len(subjects), f"{kind}_bytes": (fixed + seen) / n, f"{kind}_fixed_bytes": fixed / n,
                f"{kind}_seen_entries": entries, f"{kind}_seen_bytes_per_entry": seen / max(1, entries)}
    return out


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
        # Named after the bench database, so that two benchmarks on one server keep apart.
        cur.execute(f"DROP DATABASE IF EXISTS `{params.database}_seed`")
        cur.execute(f"CREATE DATABASE `{params.database}_seed`")
        cur.execute(f"USE `{params.database}_seed`")
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
    global REDIS_URL  # noqa: PLW0603 -- the run's Redis, read by every helper of this module
    if REDIS_CLUSTER:
        cluster = LocalRedisCluster()
        cluster.start()
        REDIS_URL = cluster.url
        try:
            return _main()
        finally:
            cluster.stop()
    return _main()


def _main() -> int:
    s = settings()
    say(f"bench: {EVENTS} records (half invocation logs), {PEOPLE} people in {TEAMS} teams, batches of <= {BATCH}"
        f" records and <= 10 MB, MySQL {s.mysql.host}:{s.mysql.port}, Redis {REDIS_URL}"
        f"{' (a Redis Cluster of three masters)' if REDIS_CLUSTER else ''}")
    fresh_stores(s)
    data = generate(EVENTS, seed=1)
    spend = cost_per_person(s, data)
    s = settings(spend)
    say(f"cost quota: ${spend:.2f} a person a day (what the average person spends in the run)")
    assign_teams(s)
    core = run_core(s, data, "core")
    memory = redis_memory(s)
    say(f"redis: {memory['person_bytes']:,.0f} bytes per person ({memory['person_fixed_bytes']:,.0f} counters,"
        f" limits, hand-offs + dedupe sets of {memory['person_seen_bytes_per_entry']:,.1f} bytes per event);"
        f" {memory['team_bytes']:,.0f} bytes per team ({memory['team_fixed_bytes']:,.0f} counters, members +"
        f" dedupe sets of {memory['team_seen_bytes_per_entry']:,.1f} bytes per event), MEMORY USAGE over"
        f" {memory['persons']:.0f} people's and {memory['teams']:.0f} teams' keys")
    baseline = run_baseline(s, data, "seed baseline")
    summary: dict[str, Any] = {"records": EVENTS, "people": PEOPLE, "teams": TEAMS, "logs": LOGS,
                               "redis_cluster": REDIS_CLUSTER, "core": core,
                               "baseline_records_per_s": baseline, "ratio": core["records_per_s"] / baseline,
                               "redis": memory, "mysql": table_bytes(s.mysql), "target_ratio": TARGET_RATIO}
    say(f"on a first day (no history): core {core['records_per_s']:,.0f} records/s, seed baseline {baseline:,.0f}"
        f" records/s, ratio {summary['ratio']:,.1f}x (target >= {TARGET_RATIO}x)")

    if PREFILL_ROWS > 0:
        t0 = time.perf_counter()
        rows = prefill(s, PREFILL_ROWS)
        say(f"history: bedrock_calls holds {rows:,} rows of earlier days (prepared in"
            f" {time.perf_counter() - t0:.0f} s)")
        empty_redis(s)
        assign_teams(s)  # the limits cache with Redis
        later = generate(EVENTS, seed=2)
        baseline_later = run_baseline(s, later, "seed baseline with history", with_history=True)
        with_history = run_core(s, later, "core with history")
        slowdown = (core["records_per_s"] - with_history["records_per_s"]) / core["records_per_s"]
        # Negative when the second run was the faster one (the shared machine's speed varies more than that).
        change = f"{slowdown:.1%} slower" if slowdown >= 0 else f"{-slowdown:.1%} faster"
        say(f"with {rows:,} rows already in the table: {change} (target <= 10 % slower)")
        say(f"core {with_history['records_per_s']:,.0f} records/s; seed baseline {baseline_later:,.0f} records/s;"
            f" ratio {with_history['records_per_s'] / baseline_later:,.1f}x (both beside {rows:,} rows of"
            " earlier days)")
        summary["history"] = {"rows": rows, "core": with_history, "baseline_records_per_s": baseline_later,
                              "ratio": with_history["records_per_s"] / baseline_later, "slowdown": slowdown}
    report("bench-cluster" if REDIS_CLUSTER else "bench", summary)  # devtools.sizing reads "bench"
    return 0


if __name__ == "__main__":
    sys.exit(main())
