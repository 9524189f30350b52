"""`make demo`: the whole streaming core, end to end, on this machine.

moto stands in for AWS (Kinesis, DynamoDB for the KCL leases, IAM for the people's tags); MariaDB and
Redis are real; the KCL MultiLangDaemon is the real one. Generated Bedrock traffic for a handful of
people — IAM users and Identity Center (SSO) users, several models, some failed calls, some duplicate
deliveries, one malformed record — is delivered into Kinesis the way the EventBridge rule would
deliver it (the rule's own pattern and partition key), while the consumer runs. It ends with a summary:
usage per person and team, who crossed which threshold, what was decided.

The demo keeps its data apart from everything else: database `bedrock_usage_demo`, Redis key prefix
`demo` (both reset at the start), so it can be run again and again.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymysql

from bedrock_usage import db
from bedrock_usage.localdev import REPO, Consumer, MotoServer, ensure_stream, free_port, precreate_leases
from bedrock_usage.migrate import migrate
from bedrock_usage.redis_state import redis_client
from bedrock_usage.settings import Settings
from producer_config.simulate import Person, bedrock_event, deliver

STREAM, APP = "bedrock-usage-demo", "bedrock-usage-demo-consumer"
CAST = [  # (person, team tag for IAM users or None, share of the traffic)
    (Person("ana.garcia", sso=False), "data-science", 0.38),
    (Person("li.wei", sso=False), "platform", 0.22),
    (Person("build-bot", sso=False), None, 0.05),
    (Person("marta.lopez@example.com", sso=True), None, 0.20),
    (Person("john.smith@example.com", sso=True), None, 0.10),
    (Person("sofia.rossi@example.com", sso=True), None, 0.05),
]
QUOTAS = """\
teams:
  data-science: {monthly_limit: 3000}
  platform: {monthly_limit: 2000}
  research: {daily_limit: 200, monthly_limit: 4000}
users:
  "sso:marta.lopez@example.com": {team: research, name: Marta López, email: marta.lopez@example.com}
  "sso:john.smith@example.com": {team: research, daily_limit: 30, name: John Smith}
  "sso:sofia.rossi@example.com": {team: platform, name: Sofia Rossi}
"""
TOTAL_CALLS = 150


def step(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def bedrockctl(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([str(Path(sys.executable).parent / "bedrockctl"), *args], env=env, check=True,
                         capture_output=True, text=True)
    return out.stdout


def traffic(now: datetime) -> tuple[list[dict[str, Any]], int]:
    """The day's calls in time order, ~3 % failed; returns (deliveries incl. duplicates, distinct calls)."""
    rng = random.Random(2026)
    people = [p for p, _, _ in CAST]
    weights = [w for _, _, w in CAST]
    start = now - timedelta(minutes=20)
    calls = []
    for i in range(TOTAL_CALLS):
        person = rng.choices(people, weights)[0]
        roll = rng.random()
        error = "ThrottlingException" if roll < 0.025 else "AccessDenied" if roll < 0.035 else None
        calls.append(bedrock_event(person, start + timedelta(seconds=8 * i), rng, error))
    # EventBridge delivers at least once: some events arrive twice.
    deliveries = list(calls)
    for dup in rng.sample(calls, 9):
        deliveries.insert(deliveries.index(dup) + 1, dup)
    return deliveries, len(calls)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bedrock-demo-"))
    step("Local stack: moto (Kinesis, DynamoDB, IAM) on hypercorn; MariaDB and Redis; Java for the KCL")
    moto = MotoServer(log_path=work / "moto.log").start()
    metrics_port = free_port()
    env = {
        **os.environ, **moto.env(),
        "MYSQL_URL": os.environ.get("DEMO_MYSQL_URL", "mysql://root@127.0.0.1:3306/bedrock_usage_demo"),
        "REDIS_KEY_PREFIX": "demo", "STREAM_NAME": STREAM, "KCL_APPLICATION_NAME": APP,
        "KCL_FAILOVER_MS": "3000", "METRICS_PORT": str(metrics_port),
        "DEFAULT_DAILY_REQUEST_LIMIT": "40", "DEFAULT_MONTHLY_REQUEST_LIMIT": "1000",
    }
    settings = Settings.from_env(env)
    consumer = Consumer(env, work / "consumer.log")
    try:
        kinesis = moto.client("kinesis")
        ensure_stream(kinesis, STREAM, shards=2)
        precreate_leases(moto.client("dynamodb"), kinesis, APP, STREAM)
        iam = moto.client("iam")
        for person, team, _ in CAST:
            if not person.sso:
                tags = [{"Key": "Person", "Value": person.name.replace(".", " ").title()}]
                tags += [{"Key": "Team", "Value": team}] if team else []
                iam.create_user(UserName=person.name, Tags=tags)
        print(f"moto at {moto.url}; stream {STREAM} (2 shards); IAM users tagged with Team/Person")

        step("Schema and quotas: bedrockctl db migrate; bedrockctl limits apply quotas.yaml")
        conn = pymysql.connect(host=settings.mysql.host, port=settings.mysql.port, user=settings.mysql.user,
                               password=settings.mysql.password)
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{settings.mysql.database}`")
        conn.close()
        migrate(settings.mysql)
        client = redis_client(settings)
        for key in client.scan_iter(match="demo:*", count=1000):
            client.delete(key)
        (work / "quotas.yaml").write_text(QUOTAS)
        print(QUOTAS.rstrip())
        print(bedrockctl(env, "limits", "apply", str(work / "quotas.yaml")).rstrip())
        print("defaults for this demo: 40 requests/person/day, 1000/month; warnings at 60 % and 85 %")

        step("The KCL consumer: bedrockctl consumer run (real MultiLangDaemon, one processor per shard)")
        consumer.start()
        deliveries, distinct = traffic(datetime.now(UTC))
        # Each person's first call: the consumer provisions them and looks up their IAM tags (Team,
        # Person) off the hot path; calls counted before the lookup lands stay with the team known then.
        firsts = list({e["detail"]["userIdentity"]["arn"]: e for e in reversed(deliveries)}.values())
        rest = [e for e in deliveries if e not in firsts]
        t0 = time.monotonic()
        deliver(kinesis, STREAM, firsts)
        wait_for_rows(settings, len(firsts), timeout=60)
        print(f"first call of each of {len(firsts)} people recorded {time.monotonic() - t0:.1f} s after"
              " delivery (includes the daemon's start-up); their IAM tags are looked up meanwhile")
        time.sleep(2)
        print(f"delivering {len(rest)} more events ({distinct - len(firsts)} calls +"
              f" {len(deliveries) - distinct} duplicate deliveries) in 3 waves, plus 1 malformed record")
        t0 = time.monotonic()
        for wave in range(3):
            deliver(kinesis, STREAM, rest[wave * len(rest) // 3:(wave + 1) * len(rest) // 3])
            time.sleep(1)
        kinesis.put_record(StreamName=STREAM, Data=b'{"detail-type": "AWS API Call via CloudTrail", "detail": 42}',
                           PartitionKey="broken")
        rows = wait_for_rows(settings, distinct, timeout=90)
        print(f"{rows} calls recorded in MySQL, the last {time.monotonic() - t0 - 3:.1f} s after the last wave")
        metrics = scrape(metrics_port)
    finally:
        code = consumer.stop()
        moto.stop()
    print(f"consumer stopped (exit {code}); logs: {work / 'consumer.log'}")

    step("Usage today: bedrockctl usage")
    print(bedrockctl(env, "usage").rstrip())
    step("Decisions (threshold crossings, each exactly once; the enforcer consumes them next)")
    print(bedrockctl(env, "decisions").rstrip())
    step("Dead letters (records that would not decode, kept with their reason)")
    print(bedrockctl(env, "dead-letters").rstrip())
    step("Consumer metrics (Prometheus /metrics, aggregated over the shard processors)")
    for line in metrics.splitlines():
        if line.startswith(("bedrock_usage_events_total", "bedrock_usage_dead_letters_total",
                            "bedrock_usage_decisions_total", "bedrock_usage_records_total")):
            print(line)
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
              if line.startswith("bedrock_usage_arrival_to_decision_seconds_")}
    count = values.get("bedrock_usage_arrival_to_decision_seconds_count", 0)
    if count:
        mean = values["bedrock_usage_arrival_to_decision_seconds_sum"] / count
        print(f"mean time from a record's arrival in Kinesis to its decision: {mean * 1000:.0f} ms"
              f" over {count:.0f} decisions (polling every 250 ms)")
    print(f"\nDone. Data kept in {settings.mysql.database} (MySQL) and Redis keys demo:*; work dir {work}.")
    return 0 if rows == distinct else 1


def wait_for_rows(settings: Settings, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    rows = 0
    while time.monotonic() < deadline:
        conn = db.connect(settings.mysql)
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM bedrock_calls")
            rows = int(cur.fetchone()[0])  # type: ignore[index]
        conn.close()
        if rows >= expected:
            time.sleep(1)  # let the last batch's dead letter land too
            return rows
        time.sleep(0.5)
    print(f"timed out waiting for {expected} rows (have {rows})")
    return rows


def scrape(port: int) -> str:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError as error:
        return f"# metrics unavailable: {error}"


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
