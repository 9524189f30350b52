"""`bedrockctl notifier run` killed mid-delivery and restarted: every message is delivered, and none twice
but the one in flight when it died (its lease expires and it is sent again, with the same Message-ID)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pymysql

from bedrock_usage.ids import digest
from bedrock_usage.notifications import Notification, NotificationKind
from devtools.local_stack import Service, free_port
from enforcement import store
from tests.conftest import DAY, NOW
from tests.conftest import test_env as _env
from tests.servers import smtp_server

MESSAGES = 12


def _sent(conn: pymysql.connections.Connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'")
        (count,) = cur.fetchone()  # type: ignore[misc]
    conn.commit()
    return int(count)


def test_killed_mid_delivery_and_restarted_delivers_everything_once(
        mysql: pymysql.connections.Connection, tmp_path: Path) -> None:
    for i in range(MESSAGES):
        store.enqueue(mysql, Notification(
            digest("crash", i), NotificationKind.WARNING, "user", f"sso:person{i}@example.com", NOW,
            display_name=f"Person {i}", email=f"person{i}@example.com", team="t", quota="daily_requests",
            period=DAY, percent=60, usage=6, limit=10))
    mysql.commit()
    with smtp_server(tmp_path) as box:
        box.delay = 0.25  # each message takes a while: the kill lands during one
        env = {**_env(**box.env()), "NOTIFY_LEASE_SECONDS": "2", "DAILY_SUMMARY_HOUR": "",
               "NOTIFIER_METRICS_PORT": str(free_port())}
        first = Service(env, tmp_path / "notifier-1.log", command=("notifier", "run")).start()
        deadline = time.monotonic() + 30
        while len(box.messages) < 4:
            assert time.monotonic() < deadline, (tmp_path / "notifier-1.log").read_text()[-2000:]
            time.sleep(0.02)
        time.sleep(0.1)  # into the next message's DATA
        first.kill()
        delivered_before_restart = len(box.messages)
        assert delivered_before_restart < MESSAGES

        second = Service(env, tmp_path / "notifier-2.log", command=("notifier", "run")).start()
        deadline = time.monotonic() + 60
        while _sent(mysql) < MESSAGES:
            assert time.monotonic() < deadline, (tmp_path / "notifier-2.log").read_text()[-2000:]
            time.sleep(0.1)
        assert second.stop() == 0  # SIGTERM: a clean exit

    ids = Counter(m["Message-ID"] for m in box.messages)
    recipients = {m["To"] for m in box.messages}
    assert recipients == {f"person{i}@example.com" for i in range(MESSAGES)}  # every one delivered
    assert len(ids) == MESSAGES
    assert sum(ids.values()) - MESSAGES <= 1  # at most the one in flight was sent twice
    assert all(count <= 2 for count in ids.values())
