"""`make bench` (second part): how fast a decision becomes a deny, against moto's IAM over HTTP.

1. decision → deny: exceeded decisions published on the Redis stream at a steady rate (half IAM users,
   half SSO sessions, which take the session-pool read-modify-write), taken by the enforcer's own read /
   handle / ack path; latency = the stream entry's time → the IAM change and its audit row committed.
   Then a burst (a team over its quota at once): time until the last of them is denied.
2. PutRecord → deny, end to end: the real `bedrockctl consumer run` (KCL daemon) and `bedrockctl
   enforcer run`; for each of several people, the records that use up their quota are put on the stream
   and IAM is polled until the deny policy is attached to them.

Targets (issue #3): decision → deny p99 under 1 s; PutRecord → deny under 2 s locally.
AllSettings: BENCH_DECISIONS (default 200), BENCH_RATE (decisions/s, default 20), BENCH_BURST (100),
BENCH_E2E_PEOPLE (10), BENCH_MYSQL_URL_ENFORCER, BENCH_REDIS_URL (db flushed).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from prometheus_client import CollectorRegistry

from bedrock_usage.identity import IdentityType
from bedrock_usage.periods import periods_of
from bedrock_usage.quota import Decision, Kind, Quota, Scope
from devtools.local_stack import Service, free_port, recreate_database
from devtools.moto_server import MotoServer, ensure_stream, precreate_leases
from devtools.settings import AllSettings
from devtools.simulate import Person, bedrock_event
from enforcement.assembly import EnforcerParts, assemble_enforcer
from producer_config.rule import partition_key
from tests.performance.bench import percentile  # the core benchmark's

DECISIONS = int(os.environ.get("BENCH_DECISIONS", "200"))
RATE = float(os.environ.get("BENCH_RATE", "20"))
BURST = int(os.environ.get("BENCH_BURST", "100"))
E2E_PEOPLE = int(os.environ.get("BENCH_E2E_PEOPLE", "10"))
MYSQL_URL = os.environ.get("BENCH_MYSQL_URL_ENFORCER", "mysql://root@127.0.0.1:3306/bedrock_usage_bench_enforcer")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
ACCOUNT = "123456789012"
SSO_ROLE = "AWSReservedSSO_BedrockUsers_0123456789abcdef"
SSO_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/{SSO_ROLE}"


def say(text: str) -> None:
    print(text, flush=True)


def env(moto: MotoServer, **extra: str) -> dict[str, str]:
    return {**moto.env(), "MYSQL_URL": MYSQL_URL, "REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": "benchenf",
            "TEAM_TAG_LOOKUP": "false", "LOG_LEVEL": "WARNING",
            "MAX_QUOTA_DENIES_PER_HOUR": "0", **extra}


def fresh_stores(settings: AllSettings) -> None:
    recreate_database(settings.mysql)
    redis.Redis.from_url(settings.redis_url).flushdb()


def provision(rt: EnforcerParts, iam: Any, count: int, start: int = 0) -> list[str]:
    """`count` people, alternately IAM users (created in IAM) and SSO users; returns their quota keys."""
    keys = []
    with rt.session.conn.cursor() as cur:
        for i in range(start, start + count):
            if i % 2 == 0:
                name = f"bench-user-{i:05d}"
                iam.create_user(UserName=name)
                key = f"arn:aws:iam::{ACCOUNT}:user/{name}"
                cur.execute("INSERT INTO principals (quota_key, identity_type, arn, account_id, team)"
                            " VALUES (%s, %s, %s, %s, 'bench')", (key, IdentityType.IAM_USER.value, key, ACCOUNT))
            else:
                session = f"bench.person.{i:05d}@example.com"
                key = f"sso:{session}"
                cur.execute("INSERT INTO principals (quota_key, identity_type, account_id, team, role_arn, role_id,"
                            " session_name) VALUES (%s, %s, %s, 'bench', %s, 'AROAEXAMPLESSOROLE01', %s)",
                            (key, IdentityType.SSO_USER.value, ACCOUNT, SSO_ROLE_ARN, session))
            keys.append(key)
    rt.session.conn.commit()
    return keys


def exceeded(key: str, settings: AllSettings) -> Decision:
    day = periods_of(datetime.now(UTC), settings.quota_timezone).day_id
    return Decision(Kind.EXCEEDED, Scope.USER, key, Quota.DAILY_REQUESTS, day, 100, 250, 250,
                    f"bench-{key}", datetime.now(UTC).isoformat(), key, "bench")


def drain(rt: EnforcerParts, expected: int, latencies: list[float], timeout: float = 120) -> None:
    """The enforcer's own path (read, handle, ack), timing each decision from its stream entry."""
    deadline = time.monotonic() + timeout
    while len(latencies) < expected and time.monotonic() < deadline:
        for entry in rt.stream.read(count=100, block_ms=200):
            rt.decisions.handle(entry.decision(), entry.published_at)
            rt.stream.ack([entry.entry_id])
            latencies.append((datetime.now(UTC) - entry.published_at).total_seconds())


def decision_to_deny(moto: MotoServer) -> tuple[list[float], float, list[float]]:
    settings = AllSettings.from_env(env(moto))
    fresh_stores(settings)
    os.environ.update(moto.env())
    rt = assemble_enforcer(settings, registry=CollectorRegistry(), account_id=ACCOUNT)
    iam = moto.client("iam")
    try:
        assert rt.iam is not None
        rt.iam.ensure_policies()
        rt.stream.ensure_group()
        people = provision(rt, iam, DECISIONS + BURST)
        client = redis.Redis.from_url(settings.redis_url)

        steady: list[float] = []

        def publish_steadily() -> None:
            for key in people[:DECISIONS]:
                client.xadd(rt.stream._key, exceeded(key, settings).to_fields())  # type: ignore[arg-type]
                time.sleep(1 / RATE)

        publisher = threading.Thread(target=publish_steadily)
        publisher.start()
        drain(rt, DECISIONS, steady)
        publisher.join()

        burst: list[float] = []
        pipe = client.pipeline(transaction=False)
        for key in people[DECISIONS:]:
            pipe.xadd(rt.stream._key, exceeded(key, settings).to_fields())  # type: ignore[arg-type]
        started = time.monotonic()
        pipe.execute()
        drain(rt, BURST, burst)
        return steady, time.monotonic() - started, burst
    finally:
        rt.close()


def put_record_to_deny(moto: MotoServer, work: Path) -> list[float]:
    stream, app = "bench-enforcer-stream", "bench-enforcer-consumer"
    limit = 3
    variables = env(moto, STREAM_NAME=stream, KCL_APPLICATION_NAME=app, KCL_FAILOVER_MS="3000",
                    METRICS_PORT=str(free_port()), ENFORCER_METRICS_PORT=str(free_port()),
                    DEFAULT_DAILY_REQUEST_LIMIT=str(limit), RECONCILE_INTERVAL_SECONDS="3600")
    settings = AllSettings.from_env(variables)
    fresh_stores(settings)
    kinesis, iam = moto.client("kinesis"), moto.client("iam")
    ensure_stream(kinesis, stream, shards=2)
    precreate_leases(moto.client("dynamodb"), kinesis, app, stream)
    policy = f"arn:aws:iam::{ACCOUNT}:policy/bedrock-usage-control/{settings.deny_policy_name}"
    consumer = Service(variables, work / "consumer.log").start()
    enforcer = Service(variables, work / "enforcer.log", command=("enforcer", "run")).start()
    latencies = []
    try:
        people = [Person(f"e2e-bench-{i:03d}", sso=False, account=ACCOUNT) for i in range(E2E_PEOPLE + 1)]
        for person in people:
            iam.create_user(UserName=person.name)
        for index, person in enumerate(people):  # the first one warms up the daemon (start-up not timed)
            events = [bedrock_event(person, datetime.now(UTC), random.Random(j)) for j in range(limit)]
            started = time.monotonic()
            kinesis.put_records(StreamName=stream, Records=[
                {"Data": json.dumps(e).encode(), "PartitionKey": partition_key(e)} for e in events])
            deadline = started + (90 if index == 0 else 30)
            while not any(p["PolicyArn"] == policy for p in iam.list_attached_user_policies(
                    UserName=person.name).get("AttachedPolicies", [])):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{person.name} was not denied; see {work}")
                time.sleep(0.02)
            if index:
                latencies.append(time.monotonic() - started)
    finally:
        consumer.stop()
        enforcer.stop()
    return latencies


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bedrock-bench-enforcer-"))
    moto = MotoServer(log_path=work / "moto.log").start()
    try:
        say(f"decision → deny: {DECISIONS} decisions at {RATE:g}/s (half IAM users, half SSO sessions),"
            " moto IAM over HTTP, real Redis and MariaDB")
        steady, burst_seconds, burst = decision_to_deny(moto)
        say(f"  steady: p50 {percentile(steady, 50) * 1000:.0f} ms, p99 {percentile(steady, 99) * 1000:.0f} ms,"
            f" max {max(steady) * 1000:.0f} ms (target p99 < 1000 ms)")
        say(f"  burst of {BURST}: all denied in {burst_seconds:.2f} s ({BURST / burst_seconds:.0f} denies/s),"
            f" p50 {percentile(burst, 50) * 1000:.0f} ms, p99 {percentile(burst, 99) * 1000:.0f} ms")
        say(f"PutRecord → deny, end to end (KCL daemon + enforcer processes), {E2E_PEOPLE} people")
        e2e = put_record_to_deny(moto, work)
        say(f"  p50 {statistics.median(e2e) * 1000:.0f} ms, max {max(e2e) * 1000:.0f} ms (target < 2000 ms)")
        ok = percentile(steady, 99) < 1.0 and max(e2e) < 2.0
        say(f"decision→deny p99 {percentile(steady, 99) * 1000:.0f} ms; PutRecord→deny max {max(e2e) * 1000:.0f} ms:"
            f" {'targets met' if ok else 'TARGET MISSED'}")
        return 0 if ok else 1
    finally:
        moto.stop()


if __name__ == "__main__":
    sys.exit(main())
