"""What `make demo` shows once the traffic is counted: the usage and metrics report, the teams' totals,
the deny at work in IAM (and its lifting), and the messages the notifier sent."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from prometheus_client import CollectorRegistry

from bedrock_usage import db
from devtools.demo_cast import ACCOUNT, ANA, JOHN
from devtools.demo_console import bedrockctl, histogram_mean, scrape, step
from devtools.local_stack import Service
from devtools.moto_server import MotoServer
from devtools.settings import AllSettings
from enforcement.assembly import assemble_enforcer


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


def replay_agrees(env: dict[str, str], work: Path, deliveries: list[dict[str, Any]],
                  logs: list[dict[str, Any]]) -> bool:
    """The demo's own traffic, written to files, replayed into an isolated namespace: it agrees with the record."""
    step("The audit: the same events replayed from files into an isolated namespace, beside the record"
         " (bedrockctl replay --files …)")
    (work / "events.jsonl").write_bytes(b"\n".join(json.dumps(e).encode() for e in deliveries) + b"\n")
    (work / "logs.jsonl").write_bytes(b"\n".join(json.dumps(e).encode() for e in logs) + b"\n")
    times = sorted(e["detail"]["eventTime"] for e in deliveries)
    # The demo's calls are stamped over the minutes before they were fed, all at once: measured from its own
    # time, every deny would be "late" by that much. The audit is asked about lateness beyond it.
    fed_after = datetime.now(UTC) - datetime.fromisoformat(times[0].replace("Z", "+00:00"))
    late_after = int(fed_after.total_seconds()) + 60
    print(f"(the calls were stamped up to {fed_after.total_seconds() / 60:.0f} minutes before the demo fed them:"
          f" --late-after {late_after})")
    out = subprocess.run([str(Path(sys.executable).parent / "bedrockctl"), "replay", "--from", times[0], "--to",
                          times[-1], "--files", str(work / "events.jsonl"), str(work / "logs.jsonl"),
                          "--late-after", str(late_after)],
                         env=env, capture_output=True, text=True, check=False)
    report_lines = out.stdout.rstrip().splitlines()
    print("\n".join([report_lines[0], *[ln for ln in report_lines if ln.startswith(("totals:", "note:"))],
                     report_lines[-1]]) if report_lines else out.stderr.rstrip())
    print(f"exit status {out.returncode} (0: the replay and the record agree)")
    return out.returncode == 0


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
    parts = assemble_enforcer(settings, registry=CollectorRegistry(), clock=lambda: midnight.astimezone(UTC))
    try:
        lifted = parts.enforcer.expire_due()
    finally:
        parts.close()
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
