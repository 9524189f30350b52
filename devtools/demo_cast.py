"""Who takes part in `make demo` and what they send: the people, their quotas, the day's Bedrock calls
(with duplicate deliveries and failures) and the invocation logs of the calls that reached a model."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from devtools.moto_server import user_keys
from devtools.simulate import Person, bedrock_event, invocation_log, subscription_payload

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


def demo_credentials(iam: Any) -> dict[str, dict[str, str]]:
    """Access keys for the moment moto's IAM authorisation is switched on: the services' own user (may do
    anything, as their roles would in AWS) and Ana (may invoke Bedrock)."""
    return {"bedrock-usage-control": user_keys(iam, "bedrock-usage-control", "*"),
            "ana.garcia": user_keys(iam, "ana.garcia", "bedrock:InvokeModel", create=False)}
