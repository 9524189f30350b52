"""`make demo`: the whole system, end to end, on this machine.

moto stands in for AWS (Kinesis, DynamoDB for the KCL leases, IAM for the people's tags); MariaDB and
Redis are real; the KCL MultiLangDaemon is the real one. Generated Bedrock traffic for a handful of
people — IAM users and Identity Center (SSO) users, several models, some failed calls, some duplicate
deliveries, one malformed record — is delivered into Kinesis the way the EventBridge rule would
deliver it (the rule's own pattern and partition key), while the consumer and the enforcer run. Two
people go over their daily quota: an IAM user (the product's deny policy attached to her) and an SSO
user (his session named in the session deny policy). It shows usage, decisions, who is blocked and the
audit trail; then proves the deny with moto's IAM authorisation switched on (her Bedrock call: 403),
and restores both: her by an admin's `bedrockctl unblock --protect`, him by the reset job at midnight.
The notifier (`bedrockctl notifier run`) sends every message by SES (on moto) meanwhile — warnings,
blocks, restores, admin actions, in each person's language — and the demo ends with what was sent,
the HTML of each written to a file to open in a browser.

The demo keeps its data apart from everything else: database `bedrock_usage_demo`, Redis key prefix
`demo` (both reset at the start), so it can be run again and again.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from prometheus_client import CollectorRegistry

from bedrock_usage import db
from bedrock_usage.localdev import (
    REPO,
    MotoServer,
    Service,
    ensure_stream,
    free_port,
    precreate_leases,
    recreate_database,
    user_keys,
)
from bedrock_usage.redis_state import redis_client
from enforcement.runtime import build as build_enforcer
from producer_config.simulate import Person, bedrock_event, deliver, invocation_log, subscription_payload
from tests.settings import AllSettings

STREAM, APP = "bedrock-usage-demo", "bedrock-usage-demo-consumer"
ACCOUNT = "123456789012"  # moto's account: the enforcer denies only in the account it runs in
CAST = [  # (person, team tag for IAM users or None, share of the traffic)
    (Person("ana.garcia", sso=False, account=ACCOUNT), "data-science", 0.38),
    (Person("li.wei", sso=False, account=ACCOUNT), "platform", 0.22),
    (Person("build-bot", sso=False, account=ACCOUNT), None, 0.05),
    (Person("marta.lopez@example.com", sso=True, account=ACCOUNT), None, 0.20),
    (Person("john.smith@example.com", sso=True, account=ACCOUNT), None, 0.10),
    (Person("sofia.rossi@example.com", sso=True, account=ACCOUNT), None, 0.05),
]
ANA = f"arn:aws:iam::{ACCOUNT}:user/ana.garcia"
LI = f"arn:aws:iam::{ACCOUNT}:user/li.wei"  # long prompts to the dearest model: over his daily cost quota
SENDER = "bedrock-usage@example.com"
JOHN = "sso:john.smith@example.com"
IDENTITY_STORE = "d-9067a1b2c3"
QUOTAS = f"""\
teams:
  data-science: {{monthly_limit: 3000}}
  platform: {{monthly_limit: 2000}}
  research: {{daily_limit: 200, monthly_limit: 4000, admins: [research-lead@example.com]}}
users:
  "sso:marta.lopez@example.com": {{team: research, name: Marta López, email: marta.lopez@example.com, language: es}}
  "sso:john.smith@example.com": {{team: research, daily_limit: 12, name: John Smith, email: john.smith@example.com}}
  "{LI}": {{daily_cost_limit_usd: 2.50}}
identity_center:  # Sofia is in no users: entry: her team comes from her Identity Center groups
  store_id: {IDENTITY_STORE}
  team_from_groups: {{"bedrock-team-*": "{{name}}"}}
"""
TOTAL_CALLS = 150


def step(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def bedrockctl(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([str(Path(sys.executable).parent / "bedrockctl"), *args], env=env, check=True,
                         capture_output=True, text=True)
    return out.stdout


def logs_of(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model invocation log of each call that reached a model (throttled and denied calls have none);
    Li sends long prompts to Claude Sonnet 4.5."""
    rng = random.Random(10)
    logs = []
    for call in calls:
        if call["detail"].get("errorCode"):
            continue
        if call["detail"]["userIdentity"]["arn"] == LI:
            call["detail"]["requestParameters"]["modelId"] = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
            logs.append(invocation_log(call, rng, input_tokens=30_000, output_tokens=3_000))
        else:
            logs.append(invocation_log(call, rng))
    return logs


def put_logs(kinesis: Any, logs: list[dict[str, Any]]) -> None:
    """As the log group's subscription does: CloudWatch Logs payloads of several records each, gzip'd."""
    for i in range(0, len(logs), 8):
        kinesis.put_record(StreamName=STREAM, Data=subscription_payload(logs[i:i + 8]), PartitionKey=f"logs-{i}")


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
    metrics_port, enforcer_port, notifier_port = free_port(), free_port(), free_port()
    env = {
        **os.environ, **moto.env(),
        "MYSQL_URL": os.environ.get("DEMO_MYSQL_URL", "mysql://root@127.0.0.1:3306/bedrock_usage_demo"),
        "REDIS_KEY_PREFIX": "demo", "STREAM_NAME": STREAM, "KCL_APPLICATION_NAME": APP,
        "KCL_FAILOVER_MS": "3000", "METRICS_PORT": str(metrics_port),
        "DEFAULT_DAILY_REQUEST_LIMIT": "40", "DEFAULT_MONTHLY_REQUEST_LIMIT": "1000",
        "ENFORCER_METRICS_PORT": str(enforcer_port), "ENFORCEMENT_MODE": "enforce",
        "PROTECTED_PRINCIPALS": f"arn:aws:iam::{ACCOUNT}:user/breakglass-*",
        "NOTIFIER_METRICS_PORT": str(notifier_port), "EMAIL_BACKEND": "ses", "EMAIL_FROM": SENDER,
        "ADMIN_EMAILS": "finops@example.com", "NOTIFY_LANGUAGE": "en", "DAILY_SUMMARY_HOUR": "",
    }
    settings = AllSettings.from_env(env)
    consumer = Service(env, work / "consumer.log")
    enforcer = Service(env, work / "enforcer.log", command=("enforcer", "run"))
    try:
        kinesis = moto.client("kinesis")
        ensure_stream(kinesis, STREAM, shards=2)
        precreate_leases(moto.client("dynamodb"), kinesis, APP, STREAM)
        iam = moto.client("iam")
        for person, team, _ in CAST:
            if not person.sso:
                tags = [{"Key": "Person", "Value": person.name.replace(".", " ").title()},
                        {"Key": "Email", "Value": f"{person.name}@example.com"}]
                tags += [{"Key": "Team", "Value": team}] if team else []
                iam.create_user(UserName=person.name, Tags=tags)
        # Sofia, an Identity Center user: her name, email and groups live in the Identity Store.
        store = moto.client("identitystore")
        sofia = store.create_user(IdentityStoreId=IDENTITY_STORE, UserName="sofia.rossi@example.com",
                                  DisplayName="Sofia Rossi", Name={"GivenName": "Sofia", "FamilyName": "Rossi"},
                                  Emails=[{"Value": "sofia.rossi@example.com", "Primary": True}],
                                  PreferredLanguage="it-IT")["UserId"]
        for group in ("Everyone", "bedrock-team-platform"):
            group_id = store.create_group(IdentityStoreId=IDENTITY_STORE, DisplayName=group)["GroupId"]
            store.create_group_membership(IdentityStoreId=IDENTITY_STORE, GroupId=group_id,
                                          MemberId={"UserId": sofia})
        keys = demo_credentials(iam)
        moto.client("ses").verify_email_identity(EmailAddress=SENDER)
        # The notifier runs to the end, through the moment moto's IAM authorisation is on: its own keys.
        notifier = Service({**env, **keys["bedrock-usage-control"]}, work / "notifier.log",
                           command=("notifier", "run"))
        print(f"moto at {moto.url}; stream {STREAM} (2 shards); IAM users tagged with Team/Person; Sofia in the"
              f" Identity Store {IDENTITY_STORE}, group bedrock-team-platform")

        step("Schema and quotas: bedrockctl db migrate; bedrockctl limits apply quotas.yaml")
        recreate_database(settings.mysql)
        client = redis_client(settings)
        for key in client.scan_iter(match="demo:*", count=1000):
            client.delete(key)
        (work / "quotas.yaml").write_text(QUOTAS)
        print(QUOTAS.rstrip())
        print(bedrockctl(env, "limits", "apply", str(work / "quotas.yaml")).rstrip())
        print("defaults for this demo: 40 requests/person/day, 1000/month, $50/day, $500/month; warnings at 60 %"
              " and 85 %")
        print(bedrockctl(env, "prices", "show").rstrip().split("\n", 1)[0] + " … (the shipped price file, loaded"
              " by db migrate: bedrockctl prices show)")

        step("The KCL consumer (bedrockctl consumer run: the real MultiLangDaemon, one processor per shard)"
             " and the enforcer (bedrockctl enforcer run)")
        consumer.start()
        enforcer.start()
        notifier.start()
        deliveries, distinct = traffic(datetime.now(UTC))
        logs = logs_of([e for e in {e["detail"]["eventID"]: e for e in deliveries}.values()])
        # Each person's first call: the consumer provisions them and resolves their team before counting
        # it (quota file, Identity Store, IAM tags), so even the first call is charged to the right team.
        firsts = list({e["detail"]["userIdentity"]["arn"]: e for e in reversed(deliveries)}.values())
        rest = [e for e in deliveries if e not in firsts]
        t0 = time.monotonic()
        deliver(kinesis, STREAM, firsts)
        wait_for_rows(settings, len(firsts), timeout=60)
        print(f"first call of each of {len(firsts)} people recorded {time.monotonic() - t0:.1f} s after"
              " delivery (includes the daemon's start-up), each charged to the team looked up first")
        time.sleep(2)
        print(f"delivering {len(rest)} more events ({distinct - len(firsts)} calls +"
              f" {len(deliveries) - distinct} duplicate deliveries) in 3 waves, plus 1 malformed record")
        t0 = time.monotonic()
        print(f"and the {len(logs)} calls' model invocation logs (tokens, in CloudWatch Logs payloads), some"
              " before their CloudTrail events, some after")
        for wave in range(3):
            deliver(kinesis, STREAM, rest[wave * len(rest) // 3:(wave + 1) * len(rest) // 3])
            put_logs(kinesis, logs[wave * len(logs) // 3:(wave + 1) * len(logs) // 3])
            time.sleep(1)
        kinesis.put_record(StreamName=STREAM, Data=b'{"detail-type": "AWS API Call via CloudTrail", "detail": 42}',
                           PartitionKey="broken")
        rows = wait_for_rows(settings, distinct, timeout=90)
        print(f"{rows} calls recorded in MySQL, the last {time.monotonic() - t0 - 3:.1f} s after the last wave")
        metered = wait_for_logs(settings, len(logs), timeout=60)
        blocked = wait_for_blocks(settings, {ANA, JOHN, LI}, timeout=30)
        metrics, enforcer_metrics = scrape(metrics_port), scrape(enforcer_port)
        code = consumer.stop()
        enforcer_code = enforcer.stop()
        print(f"consumer stopped (exit {code}), enforcer stopped (exit {enforcer_code});"
              f" logs: {work / 'consumer.log'}, {work / 'enforcer.log'}")
        report(env, settings, metrics, enforcer_metrics)
        balanced = teams_add_up(env)
        restored = enforcement_story(env, settings, moto, iam, keys)
        sent = mail_story(settings, moto, notifier, work, notifier_port)
        step("The admins' daily summary, as it will read tomorrow morning: bedrockctl notify preview summary")
        print(bedrockctl(env, "notify", "preview", "summary").rstrip())
    finally:
        consumer.stop()
        enforcer.stop()
        notifier.stop()
        moto.stop()
    print(f"\nDone. Data kept in {settings.mysql.database} (MySQL) and Redis keys demo:*; work dir {work}.")
    return 0 if rows == distinct and metered and blocked and restored and sent and balanced else 1


def report(env: dict[str, str], settings: AllSettings, metrics: str, enforcer_metrics: str) -> None:
    step("Usage today: bedrockctl usage")
    print(bedrockctl(env, "usage").rstrip())
    step("What it cost, from the invocation logs: bedrockctl cost --by person")
    print(bedrockctl(env, "cost", "--by", "person").rstrip())
    step("Decisions (threshold crossings, each exactly once, consumed by the enforcer)")
    print(bedrockctl(env, "decisions").rstrip())
    step("Dead letters (records that would not decode, kept with their reason)")
    print(bedrockctl(env, "dead-letters").rstrip())
    step("Consumer metrics (Prometheus /metrics, aggregated over the shard processors)")
    for line in metrics.splitlines():
        if line.startswith(("bedrock_usage_events_total", "bedrock_usage_dead_letters_total",
                            "bedrock_usage_invocation_logs_total", "bedrock_usage_cost_usd_total",
                            "bedrock_usage_decisions_total", "bedrock_usage_records_total")):
            print(line)
    mean, count = histogram_mean(metrics, "bedrock_usage_arrival_to_decision_seconds")
    if count:
        print(f"mean time from a record's arrival in Kinesis to its decision: {mean * 1000:.0f} ms"
              f" over {count:.0f} decisions (polling every 250 ms)")
    step("Enforcer metrics")
    for line in enforcer_metrics.splitlines():
        if line.startswith(("bedrock_usage_enforcer_actions_total", "bedrock_usage_enforcer_denied_people")):
            print(line)
    mean, count = histogram_mean(enforcer_metrics, "bedrock_usage_enforcer_decision_to_deny_seconds")
    if count:
        print(f"mean time from a decision to its deny in IAM: {mean * 1000:.0f} ms over {count:.0f} denies")


def teams_add_up(env: dict[str, str]) -> bool:
    """Every team's total is the sum of its members' (each call charged to one team, from the first)."""
    step("Who pays: each team's total against the sum of its members' (bedrockctl usage --teams --json)")
    people = json.loads(bedrockctl(env, "usage", "--json"))
    teams = json.loads(bedrockctl(env, "usage", "--teams", "--json"))
    ok = True
    for team in teams:
        members = [p for p in people if p["principal"] in team["members"]]
        total = sum(p["requests"] for p in members)
        ok = ok and total == team["requests"]
        print(f"{team['team']:<14} {team['requests']:>4} requests = {' + '.join(str(p['requests']) for p in members)}"
              f" ({', '.join(p['display_name'] or p['principal'] for p in members)})"
              f"{'' if total == team['requests'] else '  MISMATCH'}")
    sofia = next(p for p in people if p["principal"] == "sso:sofia.rossi@example.com")
    print(f"Sofia Rossi's team, from her Identity Store groups: {sofia['team']}")
    without = [p["principal"] for p in people if p["team_status"] != "team"]
    print(f"without a team (counted for themselves, never blocked as a team): {', '.join(without) or 'nobody'}")
    return ok and sofia["team"] == "platform"


def histogram_mean(metrics: str, name: str) -> tuple[float, float]:
    """(mean, count) of a histogram in a /metrics text; (0, 0) when it has no observations."""
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
              if line.startswith(f"{name}_sum") or line.startswith(f"{name}_count")}
    count = values.get(f"{name}_count", 0.0)
    return (values[f"{name}_sum"] / count if count else 0.0), count


def wait_for_rows(settings: AllSettings, expected: int, timeout: float) -> int:
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



def demo_credentials(iam: Any) -> dict[str, dict[str, str]]:
    """Access keys for the moment moto's IAM authorisation is switched on: the services' own user (may do
    anything, as their roles would in AWS) and Ana (may invoke Bedrock)."""
    return {"bedrock-usage-control": user_keys(iam, "bedrock-usage-control", "*"),
            "ana.garcia": user_keys(iam, "ana.garcia", "bedrock:InvokeModel", create=False)}


def wait_for_logs(settings: AllSettings, expected: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = db.connect(settings.mysql)
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT COUNT(*) FROM invocation_logs),"
                        " (SELECT COUNT(*) FROM bedrock_calls WHERE input_tokens IS NOT NULL)")
            found, joined = (int(n) for n in cur.fetchone())  # type: ignore[union-attr]
        conn.close()
        if found >= expected and joined >= expected:
            print(f"{found} invocation logs metered; {joined} calls hold their log's tokens and cost")
            return True
        time.sleep(0.25)
    print(f"timed out waiting for {expected} invocation logs")
    return False


def wait_for_blocks(settings: AllSettings, expected: set[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = db.connect(settings.mysql)
        with conn.cursor() as cur:
            cur.execute("SELECT principal FROM blocks WHERE blocked = 1 AND iam_state = 'applied'")
            found = {str(r[0]) for r in cur.fetchall()}
        conn.close()
        if expected <= found:
            return True
        time.sleep(0.25)
    print(f"timed out waiting for {sorted(expected)} to be blocked")
    return False


def _ana_invokes(moto: MotoServer, keys: dict[str, str]) -> str:
    runtime = boto3.client("bedrock-runtime", endpoint_url=moto.url, region_name="us-east-1",
                           aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"])
    try:
        runtime.invoke_model(modelId="amazon.titan-text-express-v1", body=json.dumps({"inputText": "hi"}))
        return "200 OK"
    except ClientError as error:
        denied = "AccessDenied" in str(error)
        return f"{error.response['ResponseMetadata']['HTTPStatusCode']} {'AccessDenied (IAM)' if denied else error}"


def enforcement_story(env: dict[str, str], settings: AllSettings, moto: MotoServer, iam: Any,
                      keys: dict[str, dict[str, str]]) -> bool:
    step("Who is blocked: bedrockctl status")
    print(bedrockctl(env, "status").rstrip())
    step("What IAM holds: the deny policy on Ana; John's session in the session deny policy")
    policy = f"arn:aws:iam::{ACCOUNT}:policy/bedrock-usage-control/{settings.deny_policy_name}"
    users = iam.list_entities_for_policy(PolicyArn=policy)["PolicyUsers"]
    print(f"{settings.deny_policy_name} attached to: {', '.join(u['UserName'] for u in users)}")
    pool = f"{policy}Sessions1"
    version = iam.get_policy(PolicyArn=pool)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=pool, VersionId=version)["PolicyVersion"]["Document"]
    print(f"{settings.deny_policy_name}Sessions1 ({version}): "
          f"{json.dumps(document if isinstance(document, dict) else json.loads(document))}")

    step("The deny at work: moto's IAM authorisation on, Ana calls bedrock-runtime InvokeModel")
    moto.reset_auth("0")
    admin_env = {**env, **keys["bedrock-usage-control"]}
    try:
        denied = _ana_invokes(moto, keys["ana.garcia"])
        print(f"Ana, over her quota: {denied}")
        step("An admin restores Ana: bedrockctl unblock --protect (quotas leave her alone until midnight)")
        print(bedrockctl(admin_env, "unblock", ANA, "--protect", "--reason", "deadline today, approved by her lead",
                         "--by", "finops-admin").rstrip())
        allowed = _ana_invokes(moto, keys["ana.garcia"])
        print(f"Ana, after the unblock: {allowed}")
    finally:
        moto.reset_auth("inf")

    step("Midnight: the reset job lifts John's block (run here with the clock at the period's end)")
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    midnight = datetime.now(settings.quota_timezone).replace(hour=0, minute=0, second=0, microsecond=0) \
        + timedelta(days=1, seconds=1)
    runtime = build_enforcer(settings, registry=CollectorRegistry(), clock=lambda: midnight.astimezone(UTC))
    try:
        lifted = runtime.enforcer.expire_due()
    finally:
        runtime.close()
    for result in lifted:
        print(f"unblocked {result.principal}: {result.outcome} ({result.detail})")
    step("The audit trail: bedrockctl audit")
    print(bedrockctl(env, "audit").rstrip())
    return denied.startswith("403") and allowed.startswith("200") and any(r.principal == JOHN for r in lifted)



def mail_story(settings: AllSettings, moto: MotoServer, notifier: Service, work: Path, port: int) -> bool:
    """Wait for the notifier to deliver everything, then show what SES (moto) received."""
    step("The notifier: every message delivered (SES on moto), each in its person's language")
    deadline = time.monotonic() + 60
    pending = -1
    while time.monotonic() < deadline:
        conn = db.connect(settings.mysql)
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT COUNT(*) FROM notifications WHERE status = 'pending')"
                        " + (SELECT COUNT(*) FROM deliveries WHERE status = 'pending')")
            pending = int(cur.fetchone()[0])  # type: ignore[index]
        conn.close()
        if pending == 0:
            break
        time.sleep(0.25)
    metrics = scrape(port)
    print(f"notifier stopped (exit {notifier.stop()}); log: {work / 'notifier.log'}")
    data = json.loads(urllib.request.urlopen(f"{moto.url}/moto-api/data.json", timeout=10).read())
    messages = data.get("ses", {}).get("Message", [])
    mail = work / "mail"
    mail.mkdir(exist_ok=True)
    for index, message in enumerate(messages, 1):
        to = ",".join(message["destinations"]["ToAddresses"])
        (mail / f"{index:02d}-{to.split('@')[0]}.html").write_text(message["body"], encoding="utf-8")
        print(f"{index:>2}. to {to:<34} {message['subject']}")
    print(f"\nOpen the HTML of each in a browser: {mail}/")
    for message in messages:  # Li's block, for his daily cost quota: in dollars
        if "li.wei@example.com" in message["destinations"]["ToAddresses"] and "paused" in message["subject"]:
            text = re.sub(r"<[^>]+>", " ", message["body"])
            print("Li Wei's message: " + " ".join(line.strip() for line in text.split("\n")
                                                 if "$" in line)[:300])
            break
    for line in metrics.splitlines():
        if line.startswith(("bedrock_usage_notifier_sent_total", "bedrock_usage_notifier_outbox_depth")):
            print(line)
    return pending == 0 and len(messages) > 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
