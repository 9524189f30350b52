"""`bedrockctl replay` end to end on moto: the command (bedrockctl's own main(), settings from the environment)
reads a moto Kinesis stream of two shards, or moto S3 archives, and compares its isolated replay with the
live record the consumer's processor core made from the same records — on the suite's real MariaDB and Redis.

Each test's live side is the processor core fed the stream shard by shard, as the KCL feeds it: what was
put is what was counted. The period is the quota day of NOW (the stream keeps 24 hours: an older day is
refused, tests/aws/test_replay_sources.py), its events from at most an hour before NOW."""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import orjson
import pymysql
import pytest
import redis
from prometheus_client import CollectorRegistry

from bedrock_usage.periods import midnight
from bedrockctl.main import main
from consumer.assembly import ConsumerParts
from consumer.records import InputRecord
from devtools.settings import AllSettings
from devtools.simulate import Person, deliver, invocation_log, put_records, subscription_payload, traffic
from enforcement.assembly import assemble_enforcer
from tests.conftest import DAY, NOW, envelope
from tests.conftest import test_env as _env
from tests.integration.test_replay import (  # noqa: F401 (an autouse fixture: a failed test's namespace dropped)
    _no_namespace_left,
    _replay_databases,
    _snapshot,
)
from tests.integration.two_namespaces import hand_cost

ACCOUNT = "123456789012"  # moto's: the enforcer acts on these people's IAM users
STREAM = "bedrock-usage-events"
BUCKET = "org-trail"
TZ = ZoneInfo("Europe/Madrid")
NOVA = "amazon.nova-pro-v1:0"
CROWD = [Person(f"user{i:02d}", sso=False, account=ACCOUNT) for i in range(6)]
TEAMS = {0: "alpha", 1: "alpha", 2: "beta"}  # the others: no team (DEFAULT_TEAM)
# The events' window: the hour before NOW, never before the quota day's midnight (NOW keeps 20 minutes
# clear of it), so that every event is in the period replayed.
START = max(midnight(NOW.astimezone(TZ).date(), TZ), NOW - timedelta(hours=1))


def _json(raw: bytes) -> dict[str, Any]:
    return dict(json.loads(raw, parse_float=Decimal))  # dollars exact, as the report writes them


@pytest.fixture
def bedrockctl(monkeypatch: pytest.MonkeyPatch, aws: None, tmp_path: Path) -> Callable[..., tuple[int, dict[str, Any]]]:
    """`bedrockctl replay --from DAY --to DAY <args> --format json --out …` with the suite's settings in the
    environment (and `env`'s beside them); returns the exit status and the JSON report."""

    def run(*args: str, **env: str) -> tuple[int, dict[str, Any]]:
        for name, value in _env(**env).items():
            monkeypatch.setenv(name, value)
        out = tmp_path / "report.json"
        out.unlink(missing_ok=True)
        status = main(["replay", "--from", DAY, "--to", DAY, *args, "--format", "json", "--out", str(out)])
        return status, _json(out.read_bytes()) if out.exists() else {}

    return run


@pytest.fixture
def kinesis(aws: None) -> Any:
    # moto stamps a record's arrival with the wall clock: past the period's end and the reader's margin
    # (a suite that ran across local midnight since NOW was taken), the stream holds nothing of the period.
    day_end = midnight(NOW.astimezone(TZ).date() + timedelta(days=1), TZ)
    if datetime.now(UTC) > day_end + timedelta(minutes=10):
        pytest.skip("the quota day of NOW ended while the suite ran: its records arrive after the period")
    client = boto3.client("kinesis", region_name="us-east-1")
    client.create_stream(StreamName=STREAM, ShardCount=2)
    return client


def _resolved_teams(conn: pymysql.connections.Connection) -> None:
    """People resolved live before (their teams come from MySQL, in the replay as live)."""
    with conn.cursor() as cur:
        for index, team in TEAMS.items():
            cur.execute("INSERT IGNORE INTO teams (name) VALUES (%s)", (team,))
            cur.execute("INSERT INTO principals (quota_key, identity_type, team, team_source, resolved_at)"
                        " VALUES (%s, 'iam_user', %s, 'iam_tag', UTC_TIMESTAMP(3))", (CROWD[index].quota_key, team))
    conn.commit()


def _logs(events: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [invocation_log(e, rng) for e in events if "errorCode" not in e["detail"]]


def _put(kinesis: Any, events: list[dict[str, Any]], logs: list[dict[str, Any]]) -> None:
    """Calls as the EventBridge rule's target puts them (its pattern, its partition key), each log batch as a
    CloudWatch Logs subscription delivers it."""
    assert deliver(kinesis, STREAM, events) == len(events)
    put_records(kinesis, STREAM, ((subscription_payload(logs[i:i + 10]), f"log-stream-{i % 3}")
                                  for i in range(0, len(logs), 10)))


def _shard_records(kinesis: Any) -> dict[str, list[InputRecord]]:
    """Every record of every shard, in shard order, as the live consumer's KCL reads them."""
    found: dict[str, list[InputRecord]] = {}
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        shard_id = shard["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard_id,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records: list[InputRecord] = []
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            records += [InputRecord(bytes(r["Data"]), shard_id, r["SequenceNumber"],
                                    int(r["ApproximateArrivalTimestamp"].timestamp() * 1000)) for r in page["Records"]]
            iterator = page.get("NextShardIterator") if page["Records"] else None
        found[shard_id] = records
    return found


def _count_live(consumer: ConsumerParts, kinesis: Any) -> list[Any]:
    """The live processor core over the stream, shard by shard in batches; the decisions it took."""
    decisions: list[Any] = []
    shards = _shard_records(kinesis)
    assert len(shards) == 2 and all(shards.values())  # both shards carry records
    for records in shards.values():
        for i in range(0, len(records), 40):
            decisions += consumer.processor.process(records[i:i + 40]).decisions
    return decisions


@pytest.fixture
def on_stream(kinesis: Any, mysql: pymysql.connections.Connection, redis_client: redis.Redis,
              make_consumer: Callable[..., ConsumerParts]) -> dict[str, Any]:
    """An hour of several people's calls (failures, duplicate deliveries among them) and their invocation
    logs on the stream, counted live."""
    _resolved_teams(mysql)
    events = list(traffic(CROWD, 120, START, NOW - timedelta(minutes=2) - START, seed=11, error_rate=0.05))
    logs = _logs(events, seed=12)
    duplicates = random.Random(13).sample(events, 8)
    _put(kinesis, events + duplicates, logs)
    consumer = make_consumer()
    _count_live(consumer, kinesis)
    # process() returns once a batch is durable in MySQL; its last Redis step (clearing what it handed over)
    # may still be running: the "nothing live changed" snapshots must start after it.
    consumer.processor.drain()
    return {"events": events, "logs": logs, "conn": mysql, "redis": redis_client}


def test_a_replay_of_the_stream_equals_the_live_record_and_leaves_the_live_state_untouched(
        on_stream: dict[str, Any], bedrockctl: Callable[..., tuple[int, dict[str, Any]]]) -> None:
    before = _snapshot(on_stream["conn"], on_stream["redis"])

    status, report = bedrockctl("--stream")

    assert status == 0, report
    assert report["differs"] is False and report["usage_differences"] == []
    events = on_stream["events"]
    counted = [e for e in events if "errorCode" not in e["detail"]]
    assert len(counted) < len(events)  # failures among them
    totals = report["totals"]
    assert totals["requests"] == totals["requests_live"] == len(counted)
    assert totals["failed"] == totals["failed_live"] == len(events) - len(counted)
    assert totals["input_tokens"] == totals["input_tokens_live"] == sum(
        log["input"]["inputTokenCount"] for log in on_stream["logs"])
    assert totals["cost_usd"] == totals["cost_usd_live"] > 0
    assert (totals["missed_blocks"], totals["late_blocks"], totals["blocks_without_crossing"]) == (0, 0, 0)
    assert {row["person"] for row in report["people"]} == {e["detail"]["userIdentity"]["arn"] for e in events}
    assert {row["team"] for row in report["teams"]} == {"alpha", "beta", "unassigned"}
    assert [row["day"] for row in report["days"]] == [DAY]
    # Every record of the stream read (the duplicates too), the 8 duplicate deliveries counted once.
    assert report["notes"][0].startswith(f"replayed {len(events) + 8 + -(-len(on_stream['logs']) // 10)} records"
                                         f" from stream {STREAM}: {len(events) + 8} calls")
    assert "(8 duplicate calls)" in report["notes"][0]
    # Nothing live changed — the Redis keys byte for byte, every table's checksum — and the namespace is gone.
    assert _snapshot(on_stream["conn"], on_stream["redis"]) == before
    assert _replay_databases(on_stream["conn"]) == []


_RATES = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")


def _regional_price(conn: pymysql.connections.Connection, model: str) -> dict[str, Decimal]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(_RATES)} FROM prices WHERE model = %s AND region = '*'"
                    " AND scope = 'regional' AND tier = 'standard'", (model,))
        (row,) = cur.fetchall()
    conn.commit()
    return dict(zip(_RATES, row, strict=True))


def test_prices_doubling_one_models_input_price_shows_each_persons_difference_exactly(
        on_stream: dict[str, Any], bedrockctl: Callable[..., tuple[int, dict[str, Any]]], tmp_path: Path) -> None:
    live = _regional_price(on_stream["conn"], NOVA)
    doubled = {**live, "input": live["input"] * 2}
    (tmp_path / "prices.yaml").write_text(f"""
currency: USD
source: the live table with Nova Pro's input price doubled
prices:
  - model: {NOVA}
    region: "*"
    scope: regional
    per_million: {{{", ".join(f"{k}: {v}" for k, v in doubled.items())}}}
""")

    status, report = bedrockctl("--stream", "--prices", str(tmp_path / "prices.yaml"))

    assert status == 1  # the re-priced cost differs from the charged one
    nova: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for log in on_stream["logs"]:
        if log["modelId"] == NOVA:
            nova[log["identity"]["arn"]].append(log)
    # Every call and token counted as live: the usage comparison differs in the cost of Nova's callers only.
    assert {r["person"] for r in report["usage_differences"]} == set(nova)
    assert all(r["differences"].startswith("cost_usd ") and "," not in r["differences"]
               for r in report["usage_differences"])
    assert len(nova) >= 3  # several people called the model
    people = {r["subject"]: r for r in report["repricing"] if r["scope"] == "user"}
    assert set(people) == {e["detail"]["userIdentity"]["arn"] for e in on_stream["events"]
                           if "errorCode" not in e["detail"]}
    for who, row in people.items():
        charged, repriced = hand_cost(nova[who], live), hand_cost(nova[who], doubled)
        # Under-charged by the doubled part of their Nova input tokens; every other model's cost unchanged.
        assert row["overcharged_usd"] == charged - repriced == row["live_cost_usd"] - row["repriced_cost_usd"]
        assert row["verdict"] == ("under-charged" if nova[who] else "same")
        assert row["live_logs"] == row["replay_logs"]
    under = sum((charged - repriced for charged, repriced in
                 ((hand_cost(logs, live), hand_cost(logs, doubled)) for logs in nova.values())), Decimal(0))
    assert report["totals"]["undercharged_usd"] == -under > 0 and report["totals"]["overcharged_usd"] == 0


def _trail_key(when: datetime, n: int) -> str:
    return (f"logs/AWSLogs/{ACCOUNT}/CloudTrail/eu-west-1/{when:%Y/%m/%d}/"
            f"{ACCOUNT}_CloudTrail_eu-west-1_{when:%Y%m%dT%H%M}Z_{n:016x}.json.gz")


def _log_key(when: datetime, n: int) -> str:
    return (f"logs/AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/eu-west-1/{when:%Y/%m/%d/%H}/"
            f"{when:%Y%m%dT%H%M%S}000Z_{n:016x}.json.gz")


def test_an_s3_archive_of_trail_files_and_invocation_logs_replays_equal_to_the_live_record(
        aws: None, mysql: pymysql.connections.Connection, make_consumer: Callable[..., ConsumerParts],
        bedrockctl: Callable[..., tuple[int, dict[str, Any]]]) -> None:
    _resolved_teams(mysql)
    events = list(traffic(CROWD, 90, START, NOW - timedelta(minutes=2) - START, seed=21))
    logs = _logs(events, seed=22)
    consumer = make_consumer()
    consumer.processor.process([InputRecord(orjson.dumps(e), "shardId-000000000000", str(i))
                                for i, e in enumerate(events)])
    consumer.processor.process([InputRecord(subscription_payload(logs[i:i + 10]), "shardId-000000000001", str(i))
                                for i in range(0, len(logs), 10)])
    # The trail's files (its records are the events' `detail`) every ten minutes, Bedrock's log files each
    # holding the logs of the calls of a ten-minute slice, one JSON line each.
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    slices: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        when = datetime.strptime(event["detail"]["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        slices[when.replace(minute=when.minute // 10 * 10, second=0)].append(event)
    by_request = {log["requestId"]: log for log in logs}
    for n, (when, sliced) in enumerate(sorted(slices.items())):
        delivered = when + timedelta(minutes=10)
        trail = {"Records": [e["detail"] for e in sliced]}
        s3.put_object(Bucket=BUCKET, Key=_trail_key(delivered, n), Body=gzip.compress(orjson.dumps(trail)))
        lines = [by_request[e["detail"]["requestID"]] for e in sliced if e["detail"]["requestID"] in by_request]
        if lines:
            s3.put_object(Bucket=BUCKET, Key=_log_key(delivered, n),
                          Body=gzip.compress(b"\n".join(orjson.dumps(line) for line in lines) + b"\n"))

    status, report = bedrockctl("--s3", f"s3://{BUCKET}/logs/")

    assert status == 0, report
    assert report["usage_differences"] == []
    counted = sum(1 for e in events if "errorCode" not in e["detail"])
    assert report["totals"]["requests"] == report["totals"]["requests_live"] == counted
    assert report["totals"]["cost_usd"] == report["totals"]["cost_usd_live"] > 0
    assert f"{len(events)} calls and {len(logs)} invocation logs in the period" in report["notes"][0]
    assert f"from s3 s3://{BUCKET}/logs/" in report["notes"][0]


def test_the_enforcer_down_gives_missed_blocks_and_a_deny_applied_later_a_late_block(
        kinesis: Any, mysql: pymysql.connections.Connection, make_consumer: Callable[..., ConsumerParts],
        bedrockctl: Callable[..., tuple[int, dict[str, Any]]]) -> None:
    alice, bob, carol = CROWD[3], CROWD[4], CROWD[5]  # no team: their own daily limit of 3 only
    at = {m: NOW - timedelta(minutes=m) for m in range(30)}
    events = ([envelope(alice, at[m], seed=100 + m) for m in (20, 18, 16, 5)]  # used up at -16 min
              + [envelope(bob, at[m], seed=200 + m) for m in (15, 14, 12)]  # at -12 min
              + [envelope(carol, at[m], seed=300 + m) for m in (10, 9)])  # 2 of 3: nothing due
    _put(kinesis, events, _logs(events, seed=31))
    # The consumer decided; the enforcer was down: the decisions are recorded, no deny applied.
    decisions = _count_live(make_consumer(DEFAULT_DAILY_REQUEST_LIMIT="3"), kinesis)
    exceeded = {d.subject: d for d in decisions if d.kind.value == "exceeded"}
    assert set(exceeded) == {alice.quota_key, bob.quota_key}

    status, report = bedrockctl("--stream", DEFAULT_DAILY_REQUEST_LIMIT="3")

    assert status == 1
    assert report["usage_differences"] == [] and report["decisions"] == []  # the same decisions, same limits
    assert [(r["principal"], r["quota"], r["crossed_at"], r["live"]) for r in report["missed_blocks"]] == [
        (who.quota_key, "daily_requests", at[m].isoformat(timespec="milliseconds"), "no action recorded")
        for who, m in ((alice, 16), (bob, 12))]
    assert report["late_blocks"] == [] and report["totals"]["missed_blocks"] == 2

    # The enforcer came back 7 minutes after alice's crossing and applied her deny, through its own code.
    iam = boto3.client("iam", region_name="us-east-1")
    for who in (alice, bob, carol):
        iam.create_user(UserName=who.name)
    enforcer = assemble_enforcer(AllSettings.from_env(_env()), registry=CollectorRegistry(), account_id=ACCOUNT,
                                 clock=lambda: at[16] + timedelta(minutes=7))
    try:
        (result,) = enforcer.decisions.handle(exceeded[alice.quota_key])
    finally:
        enforcer.close()
    assert result.principal == alice.quota_key

    status, report = bedrockctl("--stream", "--late-after", "120", DEFAULT_DAILY_REQUEST_LIMIT="3")

    assert status == 1
    (late,) = report["late_blocks"]
    assert (late["principal"], late["delay_seconds"], late["denied_by"]) == (alice.quota_key, 7 * 60, "system")
    assert [r["principal"] for r in report["missed_blocks"]] == [bob.quota_key]
    # Patient enough, alice's block is on time; bob's is still missed.
    status, report = bedrockctl("--stream", "--late-after", "600", DEFAULT_DAILY_REQUEST_LIMIT="3")
    assert status == 1 and report["late_blocks"] == [] and len(report["missed_blocks"]) == 1


def test_quotas_with_lower_limits_show_who_would_have_been_blocked_and_usage_decides_the_status(
        on_stream: dict[str, Any], bedrockctl: Callable[..., tuple[int, dict[str, Any]]], tmp_path: Path) -> None:
    counted: dict[str, int] = defaultdict(int)
    for event in on_stream["events"]:
        if "errorCode" not in event["detail"]:
            counted[event["detail"]["userIdentity"]["arn"]] += 1
    blocked, warned, spared = CROWD[3].quota_key, CROWD[4].quota_key, CROWD[5].quota_key
    assert min(counted[blocked], counted[warned], counted[spared]) >= 5
    # blocked: a limit of 4 (used up at their 4th call); warned: 60 % but not all of it; spared: far from it.
    limit_warned = counted[warned] + 2
    (tmp_path / "quotas.yaml").write_text(f"""
users:
  "{blocked}": {{daily_limit: 4}}
  "{warned}": {{daily_limit: {limit_warned}}}
  "{spared}": {{daily_limit: 1000}}
""")
    assert counted[warned] * 100 >= 60 * limit_warned  # the file's limits: past 60 %, short of 100 %

    status, report = bedrockctl("--stream", "--quotas", str(tmp_path / "quotas.yaml"))

    assert status == 0, report  # usage agrees: the decisions under other limits differ by design
    assert report["differs"] is False and report["usage_differences"] == []
    rows = {(r["principal"], r["quota"]): r for r in report["under_other_limits"]}
    assert {principal for principal, _ in rows} == {blocked, warned}
    assert (rows[blocked, "daily_requests"]["outcome"], rows[blocked, "daily_requests"]["limit"]) == ("blocked", 4)
    assert rows[warned, "daily_requests"]["outcome"] == "warned"
    assert rows[warned, "daily_requests"]["blocked_at"] is None
    # Live never blocked them (the default limits): the replay's blocks show as missed, not counted.
    assert {r["principal"] for r in report["missed_blocks"]} == {blocked}
    assert any(note.startswith("replayed under the limits of") for note in report["notes"])


@pytest.fixture(autouse=True)
def _utc_day_checked() -> Iterator[None]:
    # The window of events is inside the quota day replayed: a broken clock shows here, not as a difference.
    assert START.astimezone(TZ).date().isoformat() == DAY
    yield
