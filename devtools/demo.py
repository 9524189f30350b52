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

Run from the repository root as `python -m devtools.demo` (what `make demo` does). This module is the
scenario; the people and their traffic are in demo_cast, the printing and waiting in demo_console, and
what it shows once the traffic is counted in demo_stories.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bedrock_usage.redis_state import redis_client
from devtools import demo_web
from devtools.demo_cast import (
    ACCOUNT,
    ANA,
    APP,
    CAST,
    IDENTITY_STORE,
    JOHN,
    LI,
    QUOTAS,
    SENDER,
    STREAM,
    demo_credentials,
    logs_of,
    put_logs,
    traffic,
)
from devtools.demo_console import bedrockctl, scrape, step, wait_for_blocks, wait_for_logs, wait_for_rows
from devtools.demo_stories import enforcement_story, mail_story, replay_agrees, report, teams_add_up
from devtools.local_stack import Service, free_port, recreate_database
from devtools.moto_server import MotoServer, ensure_stream, precreate_leases
from devtools.settings import AllSettings
from devtools.simulate import deliver


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
    web: Service | None = None
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
        agreed = replay_agrees(env, work, deliveries, logs)
        web, shown = demo_web.story({**env, **keys["bedrock-usage-control"]}, work)
    finally:
        if web is not None:
            web.stop(timeout=10)
        consumer.stop()
        enforcer.stop()
        notifier.stop()
        moto.stop()
    print(f"\nDone. Data kept in {settings.mysql.database} (MySQL) and Redis keys demo:*; work dir {work}.")
    return 0 if rows == distinct and metered and blocked and restored and sent and balanced and agreed and shown else 1


if __name__ == "__main__":
    sys.exit(main())
