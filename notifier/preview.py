"""`bedrockctl notify preview`: a message of any kind, for a real person, with their real numbers now —
to read before going live. Nothing is queued or sent."""

from __future__ import annotations

from datetime import datetime

from pymysql.connections import Connection

from bedrock_usage.notifications import NotificationKind, NotificationScope
from bedrock_usage.periods import periods_of
from bedrock_usage.quota import Quota
from bedrock_usage.teams import team_or_default_sql
from bedrock_usage.usage import UsageReader
from notifier import summary
from notifier.outbox import LANGUAGE_SQL, TIME_ZONE_SQL
from notifier.render import KINDS, Note
from notifier.settings import NotifierSettings


def preview_note(conn: Connection, reader: UsageReader, settings: NotifierSettings, kind: str, principal: str, *,
                 now: datetime, actor: str) -> Note:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    return _preview(conn, reader, settings, NotificationKind(kind), principal, now=now, actor=actor)


def _preview(conn: Connection, reader: UsageReader, settings: NotifierSettings, kind: NotificationKind,
             principal: str, *, now: datetime, actor: str) -> Note:
    periods = periods_of(now, settings.quota_timezone)
    if kind is NotificationKind.SUMMARY:
        return Note("preview", kind, NotificationScope.ADMINS, "admins", now,
                    payload=summary.build(conn, reader, periods.day, settings))
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT p.quota_key, p.display_name, p.email, {team_or_default_sql('p.team')}, {LANGUAGE_SQL},"
            f" {TIME_ZONE_SQL}"
            " FROM principals p WHERE p.quota_key = %s", (settings.default_team, principal))
        row = cur.fetchone()
    conn.commit()
    if row is None:
        raise ValueError(f"{principal!r} is not a known principal (see `bedrockctl usage`)")
    key, name, email, team, language, zone = row
    (usage,) = reader.people(periods.day, user=principal)
    limit = usage.daily_limit or 0
    percent = min(settings.warning_thresholds or (100,))
    blocked = kind in (NotificationKind.BLOCKED, NotificationKind.ADMIN_BLOCKED)
    by_admin = kind in (NotificationKind.ADMIN_BLOCKED, NotificationKind.ADMIN_UNBLOCKED)
    return Note(
        "preview", kind, NotificationScope.USER, key, now, display_name=name, email=email, team=team,
        quota=Quota.DAILY_REQUESTS,
        period=periods.day_id, percent=100 if kind is NotificationKind.BLOCKED else percent,
        usage=usage.requests if kind is not NotificationKind.BLOCKED else max(usage.requests, limit), limit=limit,
        access_returns_at=periods.day_ends_at if blocked else None,
        protected_until=periods.day_ends_at if kind is NotificationKind.ADMIN_UNBLOCKED else None,
        actor=actor if by_admin else "system",
        reason=("preview: could not deny this person alone (role ID unknown)" if kind is NotificationKind.ALERT
                else "preview" if by_admin else None),
        language=(language or "").lower() or None, time_zone=zone)


