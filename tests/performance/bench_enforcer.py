"""`make bench` (second part): how fast a decision becomes a deny, against moto's IAM over HTTP.

1. decision → deny: exceeded decisions published on the Redis stream at a steady rate (half IAM users,
   half SSO sessions, which take the session-pool read-modify-write), taken by the enforcer's own read /
   handle / ack path; latency = the stream entry's time → the IAM change and its audit row committed.
   The default circuit breaker stays on (MAX_QUOTA_DENIES_PER_HOUR=100 quota denies an hour).
2. a team decision: BENCH_TEAM_SIZE people of one team call, through the consumer's processor core;
   the call that uses up the team's quota makes the consumer publish the team's "exceeded" decision,
   which the enforcer expands to every member and denies in IAM: time from its publication to the last
   member denied, and the denies read back from IAM (target: all within 5 s). Then one more quota deny
   in the same hour, to show what the default breaker does with it.
3. PutRecord → deny, end to end: the real `bedrockctl consumer run` (KCL daemon) and `bedrockctl
   enforcer run`; for each of several people, the records that use up their quota are put on the stream
   and IAM is polled until the deny policy is attached to them.

Targets (issues #3, #12): decision → deny p99 under 1 s; a team of 100 all denied within 5 s; PutRecord
→ deny under 2 s locally. Ends with a `bench-enforcer: summary {json}` line (tests/performance/results.py).
AllSettings: BENCH_DECISIONS (default 100), BENCH_RATE (decisions/s, default 20), BENCH_TEAM_SIZE (100),
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from prometheus_client import CollectorRegistry

from bedrock_usage import db, limits, quota_file
from bedrock_usage.identity import IdentityType
from bedrock_usage.keys import Keys
from bedrock_usage.periods import periods_of
from bedrock_usage.quota import Decision, Kind, Quota, Scope
from bedrock_usage.redis_state import RedisState, redis_client
from consumer.assembly import assemble_consumer
from consumer.records import InputRecord
from devtools.local_stack import Service, free_port, recreate_database
from devtools.moto_server import MotoServer, ensure_stream, precreate_leases
from devtools.settings import AllSettings
from devtools.simulate import Person, bedrock_event
from enforcement.assembly import EnforcerParts, assemble_enforcer
from producer_config.rule import partition_key
from tests.performance.bench import percentile  # the core benchmark's
from tests.performance.results import report

# The default circuit breaker stays on (MAX_QUOTA_DENIES_PER_HOUR=100): the steady run uses the hour's
# allowance, no more; the team run starts a fresh hour (fresh database) — see team_decision().
DECISIONS = int(os.environ.get("BENCH_DECISIONS", "100"))
RATE = float(os.environ.get("BENCH_RATE", "20"))
TEAM_SIZE = int(os.environ.get("BENCH_TEAM_SIZE", "100"))
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
            "TEAM_TAG_LOOKUP": "false", "LOG_LEVEL": "WARNING", **extra}


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


def decision_to_deny(moto: MotoServer) -> list[float]:
    settings = AllSettings.from_env(env(moto))
    fresh_stores(settings)
    os.environ.update(moto.env())
    rt = assemble_enforcer(settings, registry=CollectorRegistry(), account_id=ACCOUNT)
    iam = moto.client("iam")
    try:
        assert rt.iam is not None
        rt.iam.ensure_policies()
        rt.stream.ensure_group()
        people = provision(rt, iam, DECISIONS)
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
        denied = rt.store.quota_denies_since(datetime.now(UTC) - timedelta(hours=1))
        if denied != DECISIONS:
            say(f"  note: {DECISIONS - denied} of the {DECISIONS} decisions were not denied (the breaker's"
                f" default cap is {settings.max_quota_denies_per_hour} quota denies an hour)")
        return steady
    finally:
        rt.close()


@dataclass
class TeamRun:
    seconds: float  # the team's exceeded decision published → the last member denied (IAM + audit committed)
    outcomes: dict[str, int]
    denied_in_iam: int  # IAM users with the deny policy + sessions named in the session deny policies
    next_deny: str  # what the breaker does with one more quota deny in the same hour
    breaker_cap: int


def team_decision(moto: MotoServer, concurrency: int) -> TeamRun:
    """A real team decision: TEAM_SIZE people of one team (half IAM users, half Identity Center sessions)
    each make a call, through the consumer's processor core; the last call uses up the team's daily
    request quota and the consumer publishes the team's "exceeded" decision; the enforcer (default
    breaker) expands it to the people counted in the team today and denies each in IAM, `concurrency` at a
    time (ENFORCER_IAM_CONCURRENCY; 1 is how it was before issue 12: one after another).

    A fresh database: the breaker counts quota denies of the last hour, and the steady run's are a
    different hour's here. One more person's deny is then tried in the same hour, to show the breaker."""
    settings = AllSettings.from_env(env(moto, DEFAULT_TEAM_DAILY_REQUEST_LIMIT=str(TEAM_SIZE),
                                        DEFAULT_DAILY_REQUEST_LIMIT="1000", ENFORCER_IAM_CONCURRENCY=str(concurrency)))
    fresh_stores(settings)
    iam = moto.client("iam")
    run = f"c{concurrency}"  # people of their own in each run: moto keeps the IAM users of the one before
    members = [Person(f"team-bench-{run}-{i:03d}" if i % 2 == 0 else f"team.bench.{run}.{i:03d}@example.com",
                      sso=i % 2 == 1, account=ACCOUNT) for i in range(TEAM_SIZE)]
    for person in members:
        if not person.sso:
            iam.create_user(UserName=person.name)
    lines = ["teams:", "  bench-team: {}", "users:", *(f'  "{p.quota_key}": {{team: bench-team}}' for p in members)]
    conn = db.connect(settings.mysql)
    try:
        limits.apply(conn, RedisState(redis_client(settings), Keys(settings.redis_key_prefix)),
                     quota_file.parse_quota_file("\n".join(lines), default_team=settings.default_team))
    finally:
        conn.close()
    consumer = assemble_consumer(settings, source="bench", registry=CollectorRegistry())
    rt = assemble_enforcer(settings, registry=CollectorRegistry(), account_id=ACCOUNT)
    try:
        assert rt.iam is not None
        rt.iam.ensure_policies()
        rt.stream.ensure_group()
        now = datetime.now(UTC)
        records = [InputRecord(json.dumps(bedrock_event(p, now, random.Random(i))).encode(), "shardId-0", str(i))
                   for i, p in enumerate(members, start=1)]
        result = consumer.processor.process(records)
        team_exceeded = [d for d in result.decisions if d.scope is Scope.TEAM and d.kind is Kind.EXCEEDED]
        if len(team_exceeded) != 1:
            raise RuntimeError(f"expected one team exceeded decision, got {result.decisions}")
        outcomes: dict[str, int] = {}
        seconds = 0.0
        deadline = time.monotonic() + 120
        while not outcomes and time.monotonic() < deadline:
            for entry in rt.stream.read(count=100, block_ms=200):
                decision = entry.decision()
                results = rt.decisions.handle(decision, entry.published_at)
                rt.stream.ack([entry.entry_id])
                if decision.scope is Scope.TEAM and decision.kind is Kind.EXCEEDED:
                    seconds = (datetime.now(UTC) - entry.published_at).total_seconds()
                    for r in results:
                        outcomes[r.outcome.value] = outcomes.get(r.outcome.value, 0) + 1
        denied = denied_in_iam(iam, settings, [p for p in members if not p.sso], [p for p in members if p.sso])
        extra = provision(rt, iam, 1, start=90000 + concurrency)[0]
        [after] = rt.decisions.handle(exceeded(extra, settings), datetime.now(UTC))
        return TeamRun(seconds, outcomes, denied, f"{after.outcome.value}: {after.detail}",
                       settings.max_quota_denies_per_hour)
    finally:
        consumer.close()
        rt.close()


def denied_in_iam(iam: Any, settings: AllSettings, users: list[Person], sessions: list[Person]) -> int:
    """Read back from IAM: users with the deny policy attached, sessions named in the session policies."""
    policy = f"arn:aws:iam::{ACCOUNT}:policy/bedrock-usage-control/{settings.deny_policy_name}"
    attached = {u["UserName"] for page in iam.get_paginator("list_entities_for_policy").paginate(
        PolicyArn=policy, EntityFilter="User") for u in page["PolicyUsers"]}
    text = ""
    for page in iam.get_paginator("list_policies").paginate(Scope="Local", PathPrefix="/bedrock-usage-control/"):
        for p in page["Policies"]:
            version = iam.get_policy_version(PolicyArn=p["Arn"], VersionId=p["DefaultVersionId"])
            text += json.dumps(version["PolicyVersion"]["Document"])
    return sum(u.name in attached for u in users) + sum(s.name.lower() in text.lower() for s in sessions)


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
            " moto IAM over HTTP, real Redis and MariaDB, the default circuit breaker")
        steady = decision_to_deny(moto)
        say(f"  steady: p50 {percentile(steady, 50) * 1000:.0f} ms, p99 {percentile(steady, 99) * 1000:.0f} ms,"
            f" max {max(steady) * 1000:.0f} ms (target p99 < 1000 ms)")
        say(f"team decision: {TEAM_SIZE} people of one team call (half IAM users, half SSO sessions), the consumer"
            " core publishes the team's exceeded decision, the enforcer expands it to the members")
        concurrency = AllSettings.from_env(env(moto)).enforcer_iam_concurrency
        one_by_one = team_decision(moto, 1)
        say(f"  one after another (ENFORCER_IAM_CONCURRENCY=1, as before): {one_by_one.outcomes} in"
            f" {one_by_one.seconds:.2f} s; read back from IAM: {one_by_one.denied_in_iam} denied")
        team = team_decision(moto, concurrency)
        say(f"  {concurrency} at a time (ENFORCER_IAM_CONCURRENCY={concurrency}, the default): all {TEAM_SIZE}"
            f" members {team.outcomes} in {team.seconds:.2f} s from the decision's publication"
            f" ({TEAM_SIZE / team.seconds:.0f} denies/s, {one_by_one.seconds / team.seconds:.1f}x faster);"
            f" read back from IAM: {team.denied_in_iam} denied (target: all within 5 s)")
        say(f"  breaker (MAX_QUOTA_DENIES_PER_HOUR={team.breaker_cap}, the default): one more quota deny in the"
            f" same hour -> {team.next_deny}")
        say(f"PutRecord → deny, end to end (KCL daemon + enforcer processes), {E2E_PEOPLE} people")
        e2e = put_record_to_deny(moto, work)
        say(f"  p50 {statistics.median(e2e) * 1000:.0f} ms, max {max(e2e) * 1000:.0f} ms (target < 2000 ms)")
        team_ok = team.denied_in_iam == TEAM_SIZE and team.seconds < 5.0
        ok = percentile(steady, 99) < 1.0 and max(e2e) < 2.0 and team_ok
        say(f"decision→deny p99 {percentile(steady, 99) * 1000:.0f} ms (target < 1000 ms); team of {TEAM_SIZE}"
            f" all denied in {team.seconds:.2f} s (target < 5 s); PutRecord→deny max {max(e2e) * 1000:.0f} ms"
            f" (target < 2000 ms): {'targets met' if ok else 'TARGET MISSED'}")
        report("bench-enforcer", {
            "decision_to_deny_p50_s": percentile(steady, 50), "decision_to_deny_p99_s": percentile(steady, 99),
            "team_size": TEAM_SIZE, "team_all_denied_s": team.seconds, "team_concurrency": concurrency,
            "team_one_by_one_s": one_by_one.seconds, "team_denied_in_iam": team.denied_in_iam,
            "team_outcomes": team.outcomes, "breaker_cap": team.breaker_cap, "breaker_next_deny": team.next_deny,
            "put_record_to_deny_p50_s": statistics.median(e2e), "put_record_to_deny_max_s": max(e2e),
            "targets": {"decision_to_deny_p99_s": 1.0, "team_all_denied_s": 5.0, "put_record_to_deny_s": 2.0}})
        return 0 if ok else 1
    finally:
        moto.stop()


if __name__ == "__main__":
    sys.exit(main())
