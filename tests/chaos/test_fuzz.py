"""Chaos: fuzzed records among good ones, through the real processor core on real Redis and MariaDB.

10,000 fuzzed records under `make chaos` (1,000 in `make test`) — random bytes, truncated, too deep or
deep-but-parsed JSON, wrong types in every field the decoder needs, huge fields, bad gzip, invalid UTF-8,
CloudWatch Logs payloads with broken log events, CloudTrail log files with bad entries, invocation logs of
wrong shapes, and wrong values in fields the decoder can do without — mixed with as many good records, in
batches as GetRecords returns them. Then, exactly: each bad part is one dead letter with its reason; no
prompt text anywhere in MySQL or Redis; the processor never raised; every good call and log counted once,
per person and per team, in Redis and in MySQL, against what the fuzzer computed on its own.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import pymysql
import redis

from bedrock_usage.keys import Keys
from bedrock_usage.quota import Scope
from bedrock_usage.redis_state import RedisState
from consumer.assembly import ConsumerParts
from consumer.records import InputRecord
from devtools.simulate import Person
from tests.chaos.conftest import ChaosScale
from tests.chaos.fuzz_records import FALLBACK, MARKER, MODELS, PARTS, Fuzzed, Fuzzer, Good, Prices
from tests.conftest import DAY, MONTH, NOW

SHARD = "shardId-000000000000"
TEAMS = ("red", "blue", "green", None)  # None: no team (charged to DEFAULT_TEAM, "unassigned")
MAX_BATCH_RECORDS, MAX_BATCH_BYTES = 10_000, 10 * 1024 * 1024  # what one GetRecords call returns at most


def test_fuzzed_records_are_dead_lettered_and_the_good_ones_in_their_batches_counted_exactly(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis,
    chaos_scale: ChaosScale, chaos_seed: int,
) -> None:
    rng = random.Random(chaos_seed)
    crowd = _crowd(mysql, rng)
    fuzzer = Fuzzer(rng, crowd, _prices(mysql), NOW)
    fuzzed_target = chaos_scale.pick(1_000, 10_000)
    items: list[Fuzzed] = []
    fuzzed = 0
    while fuzzed < fuzzed_target:
        if rng.random() < 0.5:
            items.append(fuzzer.good_record())
        else:
            items.append(fuzzer.bad_record())
            fuzzed += 1
    batches = _batches([InputRecord(item.data, SHARD, str(10_000_000 + n)) for n, item in enumerate(items)], rng)
    consumer = make_consumer(PRICE_FALLBACK=FALLBACK)

    started = time.monotonic()
    dead = 0
    for batch in batches:  # a raise here is a consumer that stops: the test fails
        dead += consumer.processor.process(batch).dead_letters
    seconds = time.monotonic() - started

    expected_letters = {(str(10_000_000 + n), index): reasons
                        for n, item in enumerate(items) for index, reasons in item.bad.items()}
    good = [g for item in items for g in item.good]
    kinds = Counter(item.kind for item in items)
    print(f"fuzz ({chaos_scale.name}, seed {chaos_seed}): {len(items)} records in {len(batches)} batches,"
          f" {fuzzed} fuzzed, {sum(1 for i in items if i.bad)} with bad parts, {len(expected_letters)} bad parts,"
          f" {dead} dead-lettered, {len(good)} good calls and logs; {seconds:.1f} s"
          f" ({len(items) / seconds:,.0f} records/s)")
    print("kinds:", dict(sorted(kinds.items())))

    _assert_dead_letters(mysql, expected_letters, items)
    assert dead == len(expected_letters)
    _assert_no_prompt_text(mysql, redis_client)
    _assert_counted(mysql, redis_client, good, {person.quota_key for person, _ in crowd})


def _crowd(conn: pymysql.connections.Connection, rng: random.Random) -> list[tuple[Person, str]]:
    """30 people, IAM users and Identity Center users, their teams given as the quota file would."""
    crowd = [(Person(f"fuzz{i:02d}@example.com", True) if i % 2 else Person(f"fuzz{i:02d}", False),
              TEAMS[rng.randrange(len(TEAMS))]) for i in range(30)]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO principals (quota_key, identity_type, team, team_source, resolved_at)"
            " VALUES (%s, %s, %s, 'quota_file', UTC_TIMESTAMP(3))",
            [(p.quota_key, "sso_user" if p.sso else "iam_user", team) for p, team in crowd])
    conn.commit()
    return [(p, team or "unassigned") for p, team in crowd]


def _prices(conn: pymysql.connections.Connection) -> Prices:
    """The rates the table gives the case's models: standard tier, regional, any region (the region the
    events name has no row of its own: checked)."""
    rates = {}
    with conn.cursor() as cur:
        for model in (*MODELS, FALLBACK):
            cur.execute("SELECT COUNT(*) FROM prices WHERE model = %s AND region <> '*'", (model,))
            assert cur.fetchone() == (0,), model
            cur.execute(f"SELECT {', '.join(PARTS)} FROM prices WHERE model = %s AND region = '*' AND scope ="
                        " 'regional' AND tier = 'standard' AND effective_from <= %s"
                        " ORDER BY effective_from DESC LIMIT 1", (model, DAY))
            row = cur.fetchone()
            assert row is not None, model
            rates[model] = tuple(Decimal(v) for v in row)
    conn.commit()
    return Prices(rates)


def _batches(records: list[InputRecord], rng: random.Random) -> list[list[InputRecord]]:
    """Sizes as a shard's GetRecords calls vary: a few records to thousands, never over 10 MB."""
    batches: list[list[InputRecord]] = []
    at = 0
    while at < len(records):
        want = rng.choice((rng.randrange(1, 50), rng.randrange(50, 500), rng.randrange(500, MAX_BATCH_RECORDS)))
        batch: list[InputRecord] = []
        size = 0
        while at < len(records) and len(batch) < want and size + len(records[at].data) <= MAX_BATCH_BYTES:
            size += len(records[at].data)
            batch.append(records[at])
            at += 1
        batches.append(batch)
    return batches


def _assert_dead_letters(conn: pymysql.connections.Connection,
                         expected: dict[tuple[str, int], frozenset[str]], items: list[Fuzzed]) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT sequence_number, sub_index, reason, detail FROM dead_letters")
        rows = cur.fetchall()
    conn.commit()
    found = {(str(seq), int(index)): (str(reason), str(detail)) for seq, index, reason, detail in rows}
    kind = {str(10_000_000 + n): item.kind for n, item in enumerate(items)}
    missing = sorted((kind[s], s, i, sorted(expected[s, i])) for s, i in set(expected) - set(found))
    unexpected = sorted((kind.get(str(s), "?"), s, i, found[s, i]) for s, i in set(found) - set(expected))
    assert not missing and not unexpected, f"missing: {missing[:10]}\nunexpected: {unexpected[:10]}"
    wrong = [(kind[s], s, i, found[s, i], sorted(reasons)) for (s, i), reasons in expected.items()
             if found[s, i][0] not in reasons or not found[s, i][1]]
    assert not wrong, wrong[:10]
    assert len(rows) == len(expected)


def _assert_no_prompt_text(conn: pymysql.connections.Connection, client: redis.Redis) -> None:
    """The marker of every prompt, nowhere: not in any column of any table, not in any Redis key or value."""
    needle = MARKER.encode()
    with conn.cursor() as cur:
        cur.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema ="
                    " DATABASE() AND data_type IN ('char', 'varchar', 'text', 'mediumtext', 'longtext', 'blob',"
                    " 'mediumblob', 'longblob', 'binary', 'varbinary', 'json', 'enum')")
        columns = cur.fetchall()
        leaks = []
        for table, column in columns:
            cur.execute(f"SELECT COUNT(*) FROM `{table}` WHERE INSTR(CAST(`{column}` AS BINARY), %s) > 0",
                        (needle,))
            found = cur.fetchone()
            if found and found[0]:
                leaks.append((table, column, found[0]))
    conn.commit()
    assert len(columns) > 50 and not leaks, leaks
    for key in client.scan_iter(count=1000):
        assert needle not in key, key
        kind = client.type(key)
        if kind == b"hash":
            values = [b for pair in client.hgetall(key).items() for b in pair]
        elif kind in (b"set", b"zset"):
            values = list(client.smembers(key)) if kind == b"set" else list(client.zrange(key, 0, -1))
        elif kind == b"stream":
            values = [b for _, entry in client.xrange(key) for pair in entry.items() for b in pair]
        elif kind == b"list":
            values = list(client.lrange(key, 0, -1))
        else:
            values = [client.get(key) or b""]
        assert not any(needle in value for value in values), key


def _assert_counted(conn: pymysql.connections.Connection, client: redis.Redis, good: list[Good],
                    crowd: set[str]) -> None:
    expected_people: dict[str, Counter[str]] = {}
    expected_teams: dict[str, Counter[str]] = {}
    for g in good:
        for totals in (expected_people.setdefault(g.person, Counter()), expected_teams.setdefault(g.team, Counter())):
            totals.update(req=g.requests, err=g.errors, cost=g.cost, logs=g.logs)
    state = RedisState(client, Keys("test"))
    fields = ("req", "err", "cost", "logs")
    for scope, expected in ((Scope.USER, expected_people), (Scope.TEAM, expected_teams)):
        for subject, totals in expected.items():
            for period in (DAY, MONTH):
                usage = state.usage(scope, subject, period)
                assert {f: usage.get(f, 0) for f in fields} == {f: totals[f] for f in fields}, (scope, subject)
    with conn.cursor() as cur:
        cur.execute("SELECT p.quota_key, c.team, SUM(c.error_code IS NULL), SUM(c.error_code IS NOT NULL)"
                    " FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id GROUP BY p.quota_key, c.team")
        calls = cur.fetchall()
        cur.execute("SELECT p.quota_key, l.team, COUNT(*), SUM(l.cost_usd) FROM invocation_logs l"
                    " JOIN principals p ON p.id = l.principal_id GROUP BY p.quota_key, l.team")
        logs = cur.fetchall()
        cur.execute("SELECT quota_key FROM principals")
        people = {str(key) for (key,) in cur.fetchall()}
    conn.commit()
    assert people == crowd, sorted(people - crowd)[:5]  # nobody made up from a bad record
    rows: dict[str, Counter[str]] = {}
    team_rows: dict[str, Counter[str]] = {}
    for key, team, ok, failed in calls:
        rows.setdefault(str(key), Counter()).update(req=int(ok), err=int(failed))
        team_rows.setdefault(str(team), Counter()).update(req=int(ok), err=int(failed))
    for key, team, count, cost in logs:
        nanos = int(Decimal(cost) * 10**9)
        rows.setdefault(str(key), Counter()).update(logs=int(count), cost=nanos)
        team_rows.setdefault(str(team), Counter()).update(logs=int(count), cost=nanos)
    for expected, actual in ((expected_people, rows), (expected_teams, team_rows)):
        assert {k: {f: v[f] for f in fields} for k, v in actual.items()} == \
            {k: {f: v[f] for f in fields} for k, v in expected.items() if any(v[f] for f in fields)}
