"""What was decided and done: decisions, blocks, the audit trail and the messages sent, from MySQL through
their indexes (decided_at; principal, at; principal, created_at), filtered to the teams a viewer sees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pymysql.connections import Connection

from bedrock_usage.quota import Quota, usd
from console.sql import iso, team_filter


def _amount(quota: str | None, value: int | None) -> int | Decimal | None:
    """A cost quota's usage and limit are nano-dollars in the tables: shown in dollars."""
    if value is None or quota is None:
        return value
    try:
        return usd(int(value)) if Quota(quota).cost else int(value)
    except ValueError:
        return int(value)


@dataclass(frozen=True)
class DecisionRow:
    decided_at: str
    kind: str
    scope: str
    subject: str
    quota: str
    period: str
    percent: int
    usage: int | Decimal | None
    limit: int | Decimal | None
    principal: str
    team: str


def decisions(conn: Connection, *, since: datetime, scope: frozenset[str] | None, principal: str | None = None,
              team: str | None = None, limit: int = 200) -> list[DecisionRow]:
    where = " WHERE decided_at >= %s"
    params: list[Any] = [since.astimezone(UTC).replace(tzinfo=None)]
    extra, extra_params = team_filter(scope, "team")
    where += extra
    params += extra_params
    if principal:
        where += " AND principal = %s"
        params.append(principal)
    if team:
        where += " AND team = %s"
        params.append(team)
    with conn.cursor() as cur:
        cur.execute("SELECT decided_at, kind, scope, subject, quota, period, percent, usage_count, limit_count,"
                    f" principal, team FROM decisions{where} ORDER BY decided_at DESC, id DESC LIMIT %s",
                    [*params, limit])
        rows = cur.fetchall()
    conn.commit()
    return [DecisionRow(iso(at) or "", kind, sc, subject, quota, period, int(pct), _amount(quota, used),
                        _amount(quota, lim), principal_, team_)
            for at, kind, sc, subject, quota, period, pct, used, lim, principal_, team_ in rows]


@dataclass(frozen=True)
class BlockRow:
    principal: str
    display_name: str | None
    team: str | None
    origin: str
    reason: str
    actor: str
    quota: str | None
    period: str | None
    blocked_at: str | None
    blocked_until: str | None  # None: until an admin unblocks
    iam_state: str
    shadow: bool


def blocked_now(conn: Connection, scope: frozenset[str] | None, *, principal: str | None = None) -> list[BlockRow]:
    where = " WHERE b.blocked = 1 AND (b.blocked_until IS NULL OR b.blocked_until > UTC_TIMESTAMP(3))"
    extra, params = team_filter(scope, "p.team")
    where += extra
    if principal:
        where += " AND b.principal = %s"
        params.append(principal)
    with conn.cursor() as cur:
        cur.execute("SELECT b.principal, p.display_name, p.team, b.origin, b.reason, b.actor, b.quota, b.period,"
                    " b.blocked_at, b.blocked_until, b.iam_state, b.shadow FROM blocks b"
                    f" LEFT JOIN principals p ON p.quota_key = b.principal{where} ORDER BY b.blocked_at DESC", params)
        rows = cur.fetchall()
    conn.commit()
    return [BlockRow(key, name, team, origin, reason, actor, quota, period, iso(at), iso(until), iam, bool(shadow))
            for key, name, team, origin, reason, actor, quota, period, at, until, iam, shadow in rows]


@dataclass(frozen=True)
class ActionRow:
    at: str
    actor: str
    action: str
    outcome: str
    principal: str
    team: str | None
    quota: str | None
    period: str | None
    usage: int | Decimal | None
    limit: int | Decimal | None
    blocked_until: str | None
    reason: str
    iam_change: str | None
    shadow: bool


@dataclass(frozen=True)
class AuditQuery:
    principal: str = ""
    actor: str = ""
    action: str = ""
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200


def audit(conn: Connection, query: AuditQuery, scope: frozenset[str] | None) -> list[ActionRow]:
    """The audit trail, newest first (through the (principal, at) or (at) index)."""
    where, params = " WHERE 1 = 1", []
    extra, extra_params = team_filter(scope, "p.team")
    where += extra
    params += extra_params
    for column, value in (("a.principal", query.principal), ("a.actor", query.actor), ("a.action", query.action)):
        if value:
            where += f" AND {column} = %s"
            params.append(value)
    if query.since:
        where += " AND a.at >= %s"
        params.append(query.since.astimezone(UTC).replace(tzinfo=None))
    if query.until:
        where += " AND a.at < %s"
        params.append(query.until.astimezone(UTC).replace(tzinfo=None))
    with conn.cursor() as cur:
        cur.execute("SELECT a.at, a.actor, a.action, a.outcome, a.principal, p.team, a.quota, a.period,"
                    " a.usage_count, a.limit_count, a.blocked_until, a.reason, a.iam_change, a.shadow"
                    " FROM enforcement_actions a LEFT JOIN principals p ON p.quota_key = a.principal"
                    f"{where} ORDER BY a.at DESC, a.id DESC LIMIT %s", [*params, query.limit])
        rows = cur.fetchall()
    conn.commit()
    return [ActionRow(iso(at) or "", actor, action, outcome, principal, team, quota, period, _amount(quota, used),
                      _amount(quota, lim), iso(until), reason, change, bool(shadow))
            for at, actor, action, outcome, principal, team, quota, period, used, lim, until, reason, change, shadow
            in rows]


@dataclass(frozen=True)
class MessageRow:
    created_at: str
    kind: str
    email: str | None
    quota: str | None
    percent: int | None
    status: str
    sent_at: str | None
    attempts: int


def messages(conn: Connection, principal: str, *, limit: int = 50) -> list[MessageRow]:
    with conn.cursor() as cur:
        cur.execute("SELECT created_at, kind, email, quota, percent, status, sent_at, attempts FROM notifications"
                    " WHERE principal = %s ORDER BY created_at DESC LIMIT %s", (principal, limit))
        rows = cur.fetchall()
    conn.commit()
    return [MessageRow(iso(at) or "", kind, email, quota, pct, status, iso(sent), int(attempts))
            for at, kind, email, quota, pct, status, sent, attempts in rows]


def counts(conn: Connection) -> dict[str, int]:
    """Small numbers the overview and health pages show: unpriced models, dead letters, the outbox."""
    with conn.cursor() as cur:
        cur.execute("SELECT (SELECT COUNT(*) FROM unpriced_models),"
                    " (SELECT COUNT(*) FROM dead_letters WHERE received_at >= UTC_TIMESTAMP() - INTERVAL 1 DAY),"
                    " (SELECT COUNT(*) FROM notifications WHERE status = 'pending'),"
                    " (SELECT COUNT(*) FROM enforcement_actions WHERE outcome = 'refused'"
                    "  AND at >= UTC_TIMESTAMP() - INTERVAL 1 DAY)")
        unpriced, dead, outbox, refused = cur.fetchone() or (0, 0, 0, 0)
    conn.commit()
    return {"unpriced_models": int(unpriced), "dead_letters_24h": int(dead), "outbox_pending": int(outbox),
            "refusals_24h": int(refused)}
