"""`bedrockctl replay --files`: the live pipeline (the processor core as production assembles it) counts two days
of generated traffic — calls, duplicate deliveries, invocation logs in CloudWatch Logs payloads, people of
several teams — and the same events, written to files, are replayed into an isolated namespace and compared
with the live record. Real MariaDB and Redis."""

from __future__ import annotations

import argparse
import gzip
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pymysql
import pytest
import redis

from audit.namespace import delete_prefix, namespace_settings
from audit.replay_command import replay
from audit.settings import AuditSettings
from bedrock_usage import db
from bedrock_usage.periods import midnight
from consumer.assembly import ConsumerParts
from consumer.records import InputRecord
from devtools.simulate import invocation_log, people, subscription_payload, traffic
from tests.conftest import NOW
from tests.conftest import test_env as _env

TZ = ZoneInfo("Europe/Madrid")
TODAY = NOW.astimezone(TZ).date()
YESTERDAY = TODAY - timedelta(days=1)
TEAMS = {0: "alpha", 1: "alpha", 2: "beta", 3: "beta"}  # the others: no team (DEFAULT_TEAM)


@pytest.fixture
def live(mysql: pymysql.connections.Connection, redis_client: redis.Redis,
         make_consumer: Callable[..., ConsumerParts], tmp_path: Path) -> dict[str, Any]:
    """Two quota days (and a few events three days back) counted by the live processor core; the same
    events written to files. Returns the files and the events."""
    crowd = people(8, seed=3)
    with mysql.cursor() as cur:  # people resolved live before: their teams come from MySQL in the replay
        for index, team in TEAMS.items():
            cur.execute("INSERT IGNORE INTO teams (name) VALUES (%s)", (team,))
            cur.execute("INSERT INTO principals (quota_key, identity_type, team, team_source, resolved_at)"
                        " VALUES (%s, %s, %s, 'iam_tag', UTC_TIMESTAMP(3))",
                        (crowd[index].quota_key, "sso_user" if crowd[index].sso else "iam_user", team))
        # One person with a daily limit override of their own (copied, and synced into the namespace's Redis),
        # never reached: this live processor's clock stays at NOW, so it decides nothing for yesterday, where
        # the replay's clock follows the events and would (a decision only the replay took; usage is the point
        # here, the decisions part has its own tests on moto: tests/aws/test_replay_command.py).
        cur.execute("UPDATE principals SET daily_request_limit = 500 WHERE quota_key = %s", (crowd[0].quota_key,))
    mysql.commit()
    start = midnight(YESTERDAY, TZ) + timedelta(minutes=30)
    events = list(traffic(crowd, 500, start, NOW - timedelta(minutes=3) - start, seed=5))
    events += list(traffic(crowd[:3], 20, start - timedelta(days=2), timedelta(hours=5), seed=6))  # outside
    rng = random.Random(9)
    logs = [invocation_log(e, rng) for e in events if "errorCode" not in e["detail"]]
    duplicates = rng.sample(events, 25)
    consumer = make_consumer()
    records = [InputRecord(orjson.dumps(e), "shardId-000000000000", str(i)) for i, e in enumerate(events + duplicates)]
    records += [InputRecord(subscription_payload(logs[i:i + 20]), "shardId-000000000001", str(i))
                for i in range(0, len(logs), 20)]
    random.Random(4).shuffle(records)  # logs before and after their calls, as the stream delivers them
    for i in range(0, len(records), 100):
        consumer.processor.process(records[i:i + 100])
    consumer.processor.drain()  # the last batch's Redis step too, before the "nothing live changed" snapshots
    calls_file = tmp_path / "calls.jsonl"
    calls_file.write_bytes(b"\n".join(orjson.dumps(e) for e in events + duplicates) + b"\n")
    logs_file = tmp_path / "logs.jsonl.gz"
    logs_file.write_bytes(gzip.compress(b"\n".join(orjson.dumps(entry) for entry in logs) + b"\n"))
    return {"files": [calls_file, logs_file], "events": events, "lines": len(events) + len(duplicates) + len(logs),
            "crowd": crowd, "conn": mysql, "redis": redis_client}


def _run(files: list[Path], tmp_path: Path, *extra: str, start: str | None = None, end: str | None = None,
         ) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "report.json"
    parser = argparse.ArgumentParser()
    from audit.commands import register  # noqa: PLC0415
    from bedrock_usage.commands import CommandGroup  # noqa: PLC0415

    register(CommandGroup.root(parser))
    args = parser.parse_args(["replay", "--from", start or YESTERDAY.isoformat(), "--to", end or TODAY.isoformat(),
                              "--files", *map(str, files), "--format", "json", "--out", str(out), *extra])
    status = replay(args, AuditSettings.from_env(_env()))
    return status, orjson.loads(out.read_bytes()) if out.exists() else {}


def _replay_databases(conn: pymysql.connections.Connection) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE %s", (AuditSettings.from_env(_env()).mysql.database + "\\_replay\\_%",))
        found = [str(r[0]) for r in cur.fetchall()]
    conn.commit()
    return found


def _snapshot(conn: pymysql.connections.Connection, client: redis.Redis) -> tuple[dict[bytes, bytes], dict[str, Any]]:
    """Every Redis key's DUMP, every live table's checksum."""
    dumps = {key: client.dump(key) for key in client.scan_iter(count=1000)}
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
        tables = [str(r[0]) for r in cur.fetchall()]
        cur.execute("CHECKSUM TABLE " + ", ".join(f"`{t}`" for t in tables))
        sums = {str(r[0]): r[1] for r in cur.fetchall()}
    conn.commit()
    return dumps, sums  # type: ignore[return-value]


def _in(events: list[dict[str, Any]], start: datetime, end: datetime) -> list[dict[str, Any]]:
    return [e for e in events if start <= datetime.fromisoformat(e["detail"]["eventTime"]) < end]


def test_a_replay_of_two_days_equals_the_live_record_and_leaves_the_live_state_byte_for_byte(
        live: dict[str, Any], tmp_path: Path) -> None:
    before = _snapshot(live["conn"], live["redis"])
    status, report = _run(live["files"], tmp_path)
    assert status == 0, report["usage_differences"]
    assert report["differs"] is False and report["usage_differences"] == []
    in_period = _in(live["events"], midnight(YESTERDAY, TZ), midnight(TODAY + timedelta(days=1), TZ))
    counted = [e for e in in_period if "errorCode" not in e["detail"]]
    assert report["totals"]["requests"] == report["totals"]["requests_live"] == len(counted)
    assert report["totals"]["failed"] == len(in_period) - len(counted)
    assert report["totals"]["cost_usd"] == report["totals"]["cost_usd_live"] > 0
    assert {row["day"] for row in report["days"]} == {YESTERDAY.isoformat(), TODAY.isoformat()}
    assert {row["team"] for row in report["teams"]} == {"alpha", "beta", "unassigned"}
    assert {row["person"] for row in report["people"]} == {p.quota_key for p in live["crowd"]}
    # The live Redis keys and MySQL rows are unchanged, and the namespace is gone.
    assert _snapshot(live["conn"], live["redis"]) == before
    assert _replay_databases(live["conn"]) == []


def test_a_replay_of_one_day_counts_that_day_only(live: dict[str, Any], tmp_path: Path) -> None:
    status, report = _run(live["files"], tmp_path, start=TODAY.isoformat(), end=TODAY.isoformat())
    assert status == 0
    today = _in(live["events"], midnight(TODAY, TZ), midnight(TODAY + timedelta(days=1), TZ))
    assert [row["day"] for row in report["days"]] == [TODAY.isoformat()]
    assert report["totals"]["requests"] == sum(1 for e in today if "errorCode" not in e["detail"])
    assert report["notes"][0].startswith(f"replayed {live['lines']} records")  # every line read, a day kept


def test_a_call_missing_from_the_live_record_makes_them_differ_and_is_named(live: dict[str, Any],
                                                                              tmp_path: Path) -> None:
    conn: pymysql.connections.Connection = live["conn"]
    with conn.cursor() as cur:
        cur.execute("SELECT c.event_id, p.quota_key, c.event_date FROM bedrock_calls c JOIN principals p"
                    " ON p.id = c.principal_id WHERE c.error_code IS NULL AND c.event_date = %s LIMIT 1", (YESTERDAY,))
        event_id, person, day = cur.fetchone()  # type: ignore[misc]
        cur.execute("DELETE FROM bedrock_calls WHERE event_id = %s", (event_id,))
    conn.commit()
    status, report = _run(live["files"], tmp_path)
    assert status == 1 and report["differs"] is True
    assert report["totals"]["requests"] == report["totals"]["requests_live"] + 1
    [row] = report["usage_differences"]
    assert (row["person"], row["day"], row["differences"]) == (person, day.isoformat(), "requests +1")
    assert row["requests"] == row["requests_live"] + 1


def test_keep_leaves_the_namespace_for_a_look(live: dict[str, Any], tmp_path: Path) -> None:
    status, report = _run(live["files"], tmp_path, "--keep")
    assert status == 0
    [database] = _replay_databases(live["conn"])
    replay_id = database.rsplit("_", 1)[1]
    ns = namespace_settings(AuditSettings.from_env(_env()), replay_id)
    assert f"namespace kept: MySQL database {database}, Redis keys {ns.redis_key_prefix}:*" in report["notes"]
    client: redis.Redis = live["redis"]
    assert any(True for _ in client.scan_iter(match=f"{ns.redis_key_prefix}:*", count=1000))
    conn = db.connect(ns.mysql)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM bedrock_calls")
        assert cur.fetchone()[0] > 0  # type: ignore[index]
    conn.close()
    _drop(live["conn"], client, database, ns.redis_key_prefix)


def test_a_bad_period_or_a_missing_file_is_an_error(live: dict[str, Any], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(live["files"], tmp_path, start="2026-13-01")[0] == 2
    assert "bedrockctl replay:" in capsys.readouterr().err
    assert _run([tmp_path / "nothing.jsonl"], tmp_path)[0] == 2
    assert "no such file" in capsys.readouterr().err
    assert _replay_databases(live["conn"]) == []


def _drop(conn: pymysql.connections.Connection, client: redis.Redis, database: str, prefix: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE `{database}`")
    conn.commit()
    delete_prefix(client, prefix)


@pytest.fixture(autouse=True)
def _no_namespace_left(mysql: pymysql.connections.Connection) -> Iterator[None]:
    yield
    for database in _replay_databases(mysql):  # a failed test's namespace
        with mysql.cursor() as cur:
            cur.execute(f"DROP DATABASE `{database}`")
        mysql.commit()
