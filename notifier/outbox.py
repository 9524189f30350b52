"""The outbox in MySQL: notifications (written by the enforcer) fan out to deliveries, which are leased,
sent, and marked — at least once, each retried with backoff until it is sent or dead.

A delivery is leased (lease_owner, lease_until) before it is sent and marked right after, in its own
commit: several notifier tasks never take the same delivery, and a task killed mid-send leaves at most
the message in flight to be sent again once its lease expires.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymysql.connections import Connection

from bedrock_usage.db import from_db, to_db
from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.notifications import NotificationKind, NotificationScope
from bedrock_usage.quota import Quota, Scope
from bedrock_usage.retry import backoff_delay
from notifier.recipients import Route
from notifier.render import Note

BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 3600.0


# A person's language and time zone: the quota file's, else their IAM tags' (`p` is their principals row).
LANGUAGE_SQL = "COALESCE(p.language, JSON_UNQUOTE(JSON_EXTRACT(p.tags, '$.Language')))"
TIME_ZONE_SQL = "COALESCE(p.time_zone, JSON_UNQUOTE(JSON_EXTRACT(p.tags, '$.TimeZone')))"

# The note, with the person's language, time zone and latest email (a tag lookup may have landed since).
_NOTE_SELECT = (
    "SELECT n.id, n.dedupe_key, n.created_at, n.kind, n.scope, n.principal, COALESCE(n.display_name, p.display_name),"
    " COALESCE(n.email, p.email), n.team, n.quota, n.quota_scope, n.period, n.percent, n.usage_count, n.limit_count,"
    " n.access_returns_at, n.protected_until, n.actor, n.reason, n.shadow, n.payload,"
    f" {LANGUAGE_SQL}, {TIME_ZONE_SQL}, t.admin_emails"
    " FROM notifications n LEFT JOIN principals p ON p.quota_key = n.principal"
    " LEFT JOIN teams t ON t.name = n.team"
)


def _note(row: Sequence[Any]) -> tuple[Note, list[str]]:
    (id_, dedupe_key, created_at, kind, scope, principal, name, email, team, quota, quota_scope, period, percent,
     usage, limit, returns, protected, actor, reason, shadow, payload, language, zone, admins) = row
    note = Note(
        dedupe_key=str(dedupe_key), kind=NotificationKind(kind), scope=NotificationScope(scope),
        principal=str(principal), created_at=from_db(created_at) or datetime.now(UTC), display_name=name, email=email,
        team=team, quota=Quota(quota) if quota else None, quota_scope=Scope(quota_scope) if quota_scope else None,
        period=period, percent=percent, usage=usage, limit=limit, access_returns_at=from_db(returns),
        protected_until=from_db(protected), actor=actor, reason=reason, shadow=bool(shadow), id=int(id_),
        payload=json.loads(payload) if payload else {}, language=(language or "").lower() or None,
        time_zone=zone or None)
    return note, [str(a) for a in json.loads(admins)] if admins else []


@dataclass(frozen=True)
class Leased:
    delivery_id: int
    channel: str
    recipient: str
    attempts: int
    note: Note
    token: str  # the lease: marking the delivery needs it still to be ours

    @property
    def key(self) -> str:
        return f"bedrock-usage-{self.note.id}-{self.delivery_id}"


class Outbox:
    def __init__(self, session: MySQLSession, *, max_attempts: int, lease_seconds: float) -> None:
        self._session, self._max_attempts, self._lease = session, max_attempts, lease_seconds

    @property
    def conn(self) -> Connection:
        return self._session.conn

    def has(self, dedupe_key: str) -> bool:
        with self.conn.cursor() as cur:
            cur.execute("SELECT 1 FROM notifications WHERE dedupe_key = %s", (dedupe_key,))
            found = cur.fetchone() is not None
        self.conn.commit()
        return found

    # -- planning ---------------------------------------------------------------------------------

    def unplanned(self, limit: int = 100) -> list[tuple[Note, list[str]]]:
        with self.conn.cursor() as cur:
            cur.execute(_NOTE_SELECT + " WHERE n.status = 'pending' ORDER BY n.id LIMIT %s", (limit,))
            rows = [_note(r) for r in cur.fetchall()]
        self.conn.commit()
        return rows

    def plan(self, note: Note, routes: Sequence[Route], now: datetime) -> int:
        """Record the note's deliveries (idempotent) and mark it planned; no route: it is done."""
        with self.conn.cursor() as cur:
            if routes:
                cur.executemany(
                    "INSERT IGNORE INTO deliveries (notification_id, channel, recipient, next_attempt_at, created_at)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    [(note.id, r.channel.value, r.recipient, to_db(now), to_db(now)) for r in routes])
            cur.execute("UPDATE notifications SET status = %s WHERE id = %s AND status = 'pending'",
                        ("planned" if routes else "unrouted", note.id))
        self.conn.commit()
        return len(routes)

    # -- delivering -------------------------------------------------------------------------------

    def lease(self, owner: str, now: datetime, limit: int = 20) -> list[Leased]:
        until = to_db(now + timedelta(seconds=self._lease))
        token = f"{owner}:{uuid.uuid4().hex[:12]}"  # this lease alone, whatever the clock's precision
        with self.conn.cursor() as cur:
            cur.execute(
                "UPDATE deliveries SET lease_owner = %s, lease_until = %s WHERE status = 'pending'"
                " AND next_attempt_at <= %s AND (lease_until IS NULL OR lease_until < %s)"
                " ORDER BY next_attempt_at, id LIMIT %s", (token, until, to_db(now), to_db(now), limit))
            cur.execute(
                _NOTE_SELECT.replace("SELECT ", "SELECT d.id, d.channel, d.recipient, d.attempts, ", 1)
                .replace(" FROM notifications n", " FROM deliveries d JOIN notifications n ON n.id = d.notification_id")
                + " WHERE d.lease_owner = %s AND d.status = 'pending' ORDER BY d.id", (token,))
            leased = [Leased(int(r[0]), str(r[1]), str(r[2]), int(r[3]), _note(r[4:])[0], token)
                      for r in cur.fetchall()]
        self.conn.commit()
        return leased

    def sent(self, delivery: Leased, message_id: str, now: datetime) -> None:
        with self.conn.cursor() as cur:
            # Sent is sent, even if the lease ran out meanwhile (another task may be sending it again:
            # at least once); only the lease holder may record a failure (below).
            cur.execute("UPDATE deliveries SET status = 'sent', sent_at = %s, message_id = %s,"
                        " attempts = attempts + 1, lease_owner = NULL, lease_until = NULL, last_error = NULL"
                        " WHERE id = %s AND status = 'pending'", (to_db(now), message_id[:255], delivery.delivery_id))
            self._settle(cur, delivery.note.id, now)
        self.conn.commit()

    def failed(self, delivery: Leased, error: str, now: datetime) -> bool:
        """Record a failed attempt; True when it was the last (the delivery is dead)."""
        attempts = delivery.attempts + 1
        dead = attempts >= self._max_attempts
        retry_at = now + timedelta(seconds=backoff_delay(attempts, base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS))
        with self.conn.cursor() as cur:
            changed = cur.execute(
                "UPDATE deliveries SET status = %s, attempts = %s, next_attempt_at = %s, last_error = %s,"
                " lease_owner = NULL, lease_until = NULL WHERE id = %s AND lease_owner = %s AND status = 'pending'",
                ("dead" if dead else "pending", attempts, to_db(retry_at), error[:1024], delivery.delivery_id,
                 delivery.token))
            if dead and changed:
                self._settle(cur, delivery.note.id, now)
        self.conn.commit()
        return dead and bool(changed)

    @staticmethod
    def _settle(cur: Any, notification_id: int, now: datetime) -> None:
        """A notification is sent when every delivery is; dead when none is left to try and one died."""
        cur.execute(
            "UPDATE notifications n SET n.status = IF(EXISTS (SELECT 1 FROM deliveries d WHERE"
            " d.notification_id = n.id AND d.status = 'dead'), 'dead', 'sent'), n.sent_at = %s"
            " WHERE n.id = %s AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id"
            " AND d.status = 'pending')", (to_db(now), notification_id))

    # -- operating --------------------------------------------------------------------------------

    def deliveries(self, *, failed_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
        where = " WHERE d.status = 'dead' OR (d.status = 'pending' AND d.attempts > 0)" if failed_only else ""
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT d.id, n.id, n.kind, n.principal, d.channel, d.recipient, d.status, d.attempts,"
                " d.next_attempt_at, d.sent_at, d.last_error, n.created_at FROM deliveries d"
                f" JOIN notifications n ON n.id = d.notification_id{where} ORDER BY d.id DESC LIMIT %s", (limit,))
            names = ("delivery", "notification", "kind", "principal", "channel", "recipient", "status", "attempts",
                     "next_attempt_at", "sent_at", "last_error", "created_at")
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        self.conn.commit()
        return rows[::-1]

    def retry(self, now: datetime, delivery_ids: Sequence[int] = ()) -> int:
        """Dead deliveries (all, or the given ones) back to pending, due now, with fresh attempts."""
        where = "status = 'dead'"
        params: list[Any] = [to_db(now)]
        if delivery_ids:
            where += " AND id IN (" + ",".join(["%s"] * len(delivery_ids)) + ")"
            params += list(delivery_ids)
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT DISTINCT notification_id FROM deliveries WHERE {where}", params[1:])
            notes = [int(r[0]) for r in cur.fetchall()]
            count = cur.execute(f"UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = %s,"
                                f" last_error = NULL WHERE {where}", params)
            if notes:
                cur.execute("UPDATE notifications SET status = 'planned', sent_at = NULL WHERE id IN ("
                            + ",".join(["%s"] * len(notes)) + ")", notes)
        self.conn.commit()
        return int(count)

    def depth(self, now: datetime) -> tuple[int, float]:
        """Messages not yet delivered (unplanned notifications + pending deliveries), and the age in seconds
        of the oldest of them."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT COUNT(*), MIN(created_at) FROM notifications WHERE status = 'pending'")
            unplanned, oldest_note = cur.fetchone() or (0, None)
            cur.execute("SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE status = 'pending'")
            pending, oldest_delivery = cur.fetchone() or (0, None)
        self.conn.commit()
        oldest = from_db(min((t for t in (oldest_note, oldest_delivery) if t is not None), default=None))
        age = (now - oldest).total_seconds() if oldest else 0.0
        return int(unplanned) + int(pending), max(0.0, age)

    def enqueue_summary(self, date: str, payload: dict[str, Any], now: datetime, dedupe_key: str) -> bool:
        with self.conn.cursor() as cur:
            inserted = cur.execute(
                "INSERT IGNORE INTO notifications (dedupe_key, kind, scope, principal, period, payload, created_at,"
                " next_attempt_at) VALUES (%s, 'summary', 'admins', 'admins', %s, %s, %s, %s)",
                (dedupe_key, date[:10], json.dumps(payload, default=str), to_db(now), to_db(now)))
        self.conn.commit()
        return bool(inserted)
