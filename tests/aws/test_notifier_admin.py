"""The admins' daily summary, `bedrockctl notify preview` with a person's real data, and the outbox commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pymysql
import pytest
import redis
from prometheus_client import CollectorRegistry

from bedrock_usage.keys import Keys
from bedrock_usage.quota import Scope
from bedrockctl.main import main
from devtools.settings import AllSettings
from notifier.assembly import assemble_notifier
from tests.aws.conftest import ACCOUNT
from tests.conftest import DAY, MONTH, NOW
from tests.conftest import test_env as _env

ANA = f"arn:aws:iam::{ACCOUNT}:user/ana"
LI = f"arn:aws:iam::{ACCOUNT}:user/li"


@pytest.fixture
def people(mysql: pymysql.connections.Connection, redis_client: redis.Redis) -> pymysql.connections.Connection:
    with mysql.cursor() as cur:
        cur.executemany(
            "INSERT INTO principals (quota_key, identity_type, display_name, email, team, language, tags)"
            " VALUES (%s, 'iam_user', %s, %s, %s, %s, %s)",
            [(ANA, "Ana García", "ana@example.com", "data-science", "es", None),
             (LI, "Li Wei", None, "platform", None,
              json.dumps({"Email": "li@example.com", "TimeZone": "Asia/Shanghai"}))])
        cur.execute("INSERT INTO enforcement_actions (action_key, at, actor, action, outcome, principal, reason,"
                    " blocked_until) VALUES ('k1', %s, 'system', 'block', 'applied', %s, 'daily quota exceeded', %s)",
                    (NOW.replace(tzinfo=None), ANA, (NOW + timedelta(hours=3)).replace(tzinfo=None)))
    mysql.commit()
    keys = Keys("test")
    for key, today, month in ((ANA, 40, 400), (LI, 12, 120)):
        redis_client.hset(keys.counter(Scope.USER, key, DAY), "req", today)
        redis_client.hset(keys.counter(Scope.USER, key, MONTH), "req", month)
    redis_client.hset(keys.counter(Scope.TEAM, "data-science", DAY), "req", 40)
    redis_client.hset(keys.counter(Scope.TEAM, "data-science", MONTH), "req", 400)
    return mysql


def test_the_daily_summary_is_built_from_real_usage_and_queued_once(people: Any) -> None:
    settings = AllSettings.from_env(_env(DAILY_SUMMARY_HOUR="0", DEFAULT_TEAM_MONTHLY_REQUEST_LIMIT="1000",
                                      ADMIN_EMAILS="ops@example.com", EMAIL_BACKEND="none"))
    tomorrow = NOW + timedelta(days=1)  # the summary is of the day before
    rt = assemble_notifier(settings, registry=CollectorRegistry(), clock=lambda: tomorrow, channels={})
    try:
        assert rt.notifier.queue_summary(rt.usage_reader) is True
        assert rt.notifier.queue_summary(rt.usage_reader) is False  # once a day, however many tasks ask
        ((note, _),) = rt.outbox.unplanned()
        payload = note.payload
        assert payload["date"] == DAY
        assert [(t["team"], t["requests"], t["monthly_requests"], t["monthly_limit"]) for t in payload["teams"]] == [
            ("data-science", 40, 400, 1000), ("platform", 0, 0, 1000)]
        assert [(u["name"], u["requests"]) for u in payload["top"]] == [("Ana García", 40), ("Li Wei", 12)]
        assert [b["principal"] for b in payload["blocked"]] == [ANA]
        text = rt.notifier.renderer.render(note, "en").text
        assert f"Bedrock usage on {DAY}" in text and "400 / 1000" in text
        assert "Ana García  |  data-science  |  40" in text
    finally:
        rt.close()


def test_preview_renders_a_persons_message_with_their_language_and_numbers(people: Any, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    for name, value in _env(DEFAULT_DAILY_REQUEST_LIMIT="40", EMAIL_BACKEND="none").items():
        monkeypatch.setenv(name, value)
    assert main(["notify", "preview", "blocked", "--principal", ANA]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Subject: Bedrock en pausa: cuota diaria agotada") and "40 de 40" in out  # her language
    assert main(["notify", "preview", "warning", "--principal", LI, "--lang", "en", "--format", "html"]) == 0
    html = capsys.readouterr().out
    assert "12 of your 40 daily" in html and "Asia/Shanghai" in html and "#B25E00" in html  # his time zone
    assert main(["notify", "preview", "warning", "--principal", "arn:aws:iam::1:user/nobody"]) == 2


def test_outbox_and_retry_commands(people: Any, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    for name, value in _env(EMAIL_BACKEND="none", SLACK_WEBHOOK_URL="http://127.0.0.1:9/down",
                            NOTIFY_MAX_ATTEMPTS="1").items():
        monkeypatch.setenv(name, value)
    settings = AllSettings.from_env()
    rt = assemble_notifier(settings, registry=CollectorRegistry())
    try:
        from bedrock_usage.notifications import Notification, NotificationKind  # noqa: PLC0415
        from enforcement import store  # noqa: PLC0415

        store.enqueue(rt.session.conn, Notification("n1", NotificationKind.BLOCKED, "user", ANA, datetime.now(UTC)))
        rt.session.conn.commit()
        rt.notifier.plan()
        rt.notifier.deliver()  # connection refused: one attempt allowed, so dead
    finally:
        rt.close()
    assert main(["notify", "outbox", "--failed"]) == 0
    out = capsys.readouterr().out
    assert "slack" in out and "dead" in out and "URLError" in out
    assert main(["notify", "retry"]) == 0
    assert "1 dead deliveries queued again" in capsys.readouterr().out
    assert main(["notify", "outbox", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "pending" and row["attempts"] == 0
