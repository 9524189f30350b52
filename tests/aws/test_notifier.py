"""The notifier delivers the enforcer's notifications: SES and SNS read back from moto, SMTP to a real
server (STARTTLS, login) parsed back, Slack and Teams webhooks to a local HTTP server; failures retried,
then dead, then retried by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pymysql
import pytest
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends
from prometheus_client import CollectorRegistry

from bedrock_usage.ids import digest
from bedrock_usage.notifications import Notification, NotificationKind
from devtools.settings import AllSettings
from enforcement import store
from notifier.assembly import NotifierParts, assemble_notifier
from tests.aws.conftest import ACCOUNT
from tests.conftest import DAY, NOW
from tests.conftest import test_env as _env
from tests.servers import smtp_server, webhook_server

ANA = f"arn:aws:iam::{ACCOUNT}:user/ana"


def queue(conn: pymysql.connections.Connection, kind: NotificationKind, principal: str = ANA, *,
          key: str | None = None, **fields: Any) -> None:
    values: dict[str, Any] = {"display_name": "Ana García", "email": "ana@example.com", "team": "data-science",
                              "quota": "daily_requests", "period": DAY, "usage": 40, "limit": 40, "percent": 100,
                              "access_returns_at": NOW + timedelta(hours=3), "actor": "system",
                              "reason": "daily quota exceeded: 40 of 40", **fields}
    scope = "admins" if kind is NotificationKind.ALERT else "user"
    store.enqueue(conn, Notification(key or digest(kind, principal, fields), kind, scope, principal, NOW, **values))
    conn.commit()


@pytest.fixture
def notifier(mysql: pymysql.connections.Connection, aws: None) -> Iterator[Callable[..., NotifierParts]]:
    made: list[NotifierParts] = []
    clock = {"now": datetime.now(UTC)}

    def factory(**env: str) -> NotifierParts:
        settings = AllSettings.from_env(_env(DAILY_SUMMARY_HOUR="", NOTIFY_MAX_ATTEMPTS="3", **env))
        rt = assemble_notifier(settings, registry=CollectorRegistry(), clock=lambda: clock["now"])
        rt.clock = clock  # type: ignore[attr-defined]
        made.append(rt)
        return rt

    yield factory
    for rt in made:
        rt.close()


def _drain(rt: NotifierParts) -> int:
    rt.notifier.plan()
    return rt.notifier.deliver(limit=100)


def _sample(rt: NotifierParts, name: str, **labels: str) -> float:
    for metric in (rt.metrics.sent, rt.metrics.failed, rt.metrics.dead):
        for family in metric.collect():
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
    return 0.0


def test_ses_email_to_the_person_and_a_copy_to_the_team_admins(notifier, mysql) -> None:  # type: ignore[no-untyped-def]
    boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress="bedrock-usage@example.com")
    with mysql.cursor() as cur:
        cur.execute("INSERT INTO teams (name, admin_emails) VALUES ('data-science', %s)", ('["lead@example.com"]',))
        cur.execute("INSERT INTO principals (quota_key, identity_type, language) VALUES (%s, 'iam_user', 'es')", (ANA,))
    mysql.commit()
    rt = notifier(EMAIL_BACKEND="ses")
    queue(mysql, NotificationKind.BLOCKED)

    assert _drain(rt) == 2

    sent = {tuple(m.destinations["ToAddresses"]): m for m in ses_backends[ACCOUNT]["us-east-1"].sent_messages}
    person, lead = sent[("ana@example.com",)], sent[("lead@example.com",)]
    assert person.subject == "Bedrock en pausa: cuota diaria agotada"  # her language
    assert "40 de 40" in person.body and "#B3261E" in person.body  # moto keeps the HTML part
    assert lead.subject == "[Ana García] Bedrock paused: daily quota used up"  # the admins' default language
    assert _sample(rt, "bedrock_usage_notifier_sent_total", kind="blocked", channel="email") == 2
    assert mysql_rows(mysql, "SELECT status FROM notifications") == [("sent",)]
    assert _drain(rt) == 0  # nothing twice


def test_alerts_go_to_sns_and_the_admins(notifier, mysql) -> None:  # type: ignore[no-untyped-def]
    topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="bedrock-alerts")["TopicArn"]
    rt = notifier(EMAIL_BACKEND="none", ALERT_SNS_TOPIC_ARN=topic)
    queue(mysql, NotificationKind.ALERT, reason="could not deny ana alone (unknown_role_id)")
    assert _drain(rt) == 1
    ((_, message, subject, *_),) = sns_backends[ACCOUNT]["us-east-1"].topics[topic].sent_notifications
    assert subject.startswith("[Bedrock Usage Control] Action needed") and "unknown_role_id" in message


def test_smtp_with_starttls_and_login_parsed_back(notifier, mysql, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with smtp_server(tmp_path) as box:
        rt = notifier(**box.env())
        queue(mysql, NotificationKind.WARNING, percent=85, usage=34)
        assert _drain(rt) == 1
    (message,) = box.messages
    assert message["To"] == "ana@example.com" and message["Subject"] == "Bedrock: 85% of your daily quota used"
    assert message["Message-ID"].startswith("<bedrock-usage-")
    parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in message.walk()
             if not part.is_multipart()}
    assert "34 of your 40 daily Bedrock requests" in parts["text/plain"]
    assert "#B25E00" in parts["text/html"] and "34 of your 40" in parts["text/html"]


def test_a_wrong_smtp_password_fails_and_is_retried_not_lost(notifier, mysql, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with smtp_server(tmp_path) as box:
        rt = notifier(**{**box.env(), "SMTP_PASSWORD": "wrong"})
        queue(mysql, NotificationKind.UNBLOCKED)
        assert _drain(rt) == 0
        (row,) = rt.outbox.deliveries(failed_only=True)
        assert row["status"] == "pending" and row["attempts"] == 1 and "Authentication" in row["last_error"]
        assert box.messages == []


def test_slack_and_teams_webhooks_then_failures_retried_dead_and_retried_by_hand(notifier, mysql) -> None:  # type: ignore[no-untyped-def]
    with webhook_server() as slack, webhook_server() as teams:
        rt = notifier(EMAIL_BACKEND="none", SLACK_WEBHOOK_URL=slack.url, TEAMS_WEBHOOK_URL=teams.url)
        queue(mysql, NotificationKind.ADMIN_BLOCKED, actor="finops-admin", reason="runaway notebook")
        assert _drain(rt) == 2
        assert slack.received[0]["text"].startswith("*[Ana García] Bedrock paused by an administrator*")
        assert "runaway notebook" in slack.received[0]["text"]
        card = teams.received[0]
        assert card["@type"] == "MessageCard" and card["themeColor"] == "B3261E" and "finops-admin" in card["text"]

        slack.status = 500
        queue(mysql, NotificationKind.BLOCKED, key="second")
        _drain(rt)  # teams takes it; slack fails
        for _ in range(2):  # due again after its backoff
            rt.clock["now"] += timedelta(hours=2)  # type: ignore[attr-defined]
            rt.notifier.deliver()
        dead = [r for r in rt.outbox.deliveries(failed_only=True) if r["status"] == "dead"]
        assert [(r["channel"], r["attempts"]) for r in dead] == [("slack", 3)]
        assert _sample(rt, "bedrock_usage_notifier_dead_total", kind="blocked", channel="slack") == 1
        assert mysql_rows(mysql, "SELECT status FROM notifications ORDER BY id") == [("sent",), ("dead",)]

        slack.status = 200
        assert rt.outbox.retry(rt.clock["now"]) == 1  # type: ignore[attr-defined]
        assert rt.notifier.deliver() == 1
        assert len(slack.received) == 2
        assert mysql_rows(mysql, "SELECT status FROM notifications ORDER BY id") == [("sent",), ("sent",)]


def test_outbox_depth_and_age_of_the_oldest(notifier, mysql) -> None:  # type: ignore[no-untyped-def]
    rt = notifier(EMAIL_BACKEND="none", SLACK_WEBHOOK_URL="http://127.0.0.1:9/unreachable")
    queue(mysql, NotificationKind.BLOCKED)
    rt.clock["now"] = NOW + timedelta(minutes=10)  # type: ignore[attr-defined]
    rt.notifier.observe()
    assert rt.metrics.outbox_depth._value.get() == 1  # type: ignore[attr-defined]
    assert 590 <= rt.metrics.oldest_pending._value.get() <= 610  # type: ignore[attr-defined]


def mysql_rows(conn: pymysql.connections.Connection, sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = list(cur.fetchall())
    conn.commit()
    return rows
