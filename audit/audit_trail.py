"""The decisions and the enforcer's audit trail as an audit reads them back: decision rows (the live record's
or a replay's), the people a team decision covers, and when each person was denied.

A deny is in force from a block action that reached IAM (outcome applied, unchanged — the deny was already
there — or shadow: recorded as if it were) until its `blocked_until` or an unblock that reached IAM, which
ever comes first. A refused lift ends nothing: the deny stayed in IAM. This is read from
`enforcement_actions` alone, so that it says what happened at the time, not what `blocks` holds now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from bedrock_usage.db import from_db, to_db
from bedrock_usage.periods import first_of_next_month
from bedrock_usage.quota import Quota, usd

# The enforcer's outcomes (enforcement.model.Outcome) after which a deny stands (or, in shadow mode, would).
DENY_OUTCOMES = frozenset({"applied", "unchanged", "shadow"})


@dataclass(frozen=True)
class DecisionRow:
    """One row of a `decisions` table: one crossing of one threshold."""

    decision_id: str
    kind: str  # warning | exceeded
    scope: str  # user | team
    subject: str  # the person's quota key, or the team
    quota: str
    period: str  # YYYY-MM-DD or YYYY-MM
    percent: int
    usage: int
    limit: int
    event_id: str  # the call (or log) that crossed it
    event_time: datetime

    @property
    def amounts(self) -> tuple[int | Decimal, int | Decimal]:
        """Usage and limit as a report shows them: requests, or dollars (exact) for a cost quota."""
        if Quota(self.quota).cost:
            return usd(self.usage), usd(self.limit)
        return self.usage, self.limit

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        """What makes two decisions the same crossing, whatever the limit or the call."""
        return (self.scope, self.subject, self.quota, self.period, self.percent)


@dataclass(frozen=True)
class ActionRow:
    """One row of `enforcement_actions`."""

    id: int
    at: datetime
    actor: str
    action: str  # warn | block | unblock
    outcome: str
    principal: str
    scope: str | None
    quota: str | None
    period: str | None
    decision_id: str | None
    blocked_until: datetime | None
    reason: str

    @property
    def denies(self) -> bool:
        return self.action == "block" and self.outcome in DENY_OUTCOMES


def read_decisions(conn: Any, start: datetime, end: datetime) -> list[DecisionRow]:
    """The decisions whose crossing call falls in [start, end), in time order."""
    with conn.cursor() as cur:
        cur.execute("SELECT decision_id, kind, scope, subject, quota, period, percent, usage_count, limit_count,"
                    " event_id, event_time FROM decisions WHERE event_time >= %s AND event_time < %s"
                    " ORDER BY event_time, id", (to_db(start), to_db(end)))
        rows = cur.fetchall()
    conn.commit()
    return [DecisionRow(str(d), str(k), str(s), str(subj), str(q), str(p), int(pc), int(u), int(lim), str(e),
                        from_db(t) or start) for d, k, s, subj, q, p, pc, u, lim, e, t in rows]


def read_actions(conn: Any, start: datetime, end: datetime) -> list[ActionRow]:
    """The audit trail's actions in [start, end), in the order they were taken."""
    with conn.cursor() as cur:
        cur.execute("SELECT id, at, actor, action, outcome, principal, scope, quota, period, decision_id,"
                    " blocked_until, reason FROM enforcement_actions WHERE at >= %s AND at < %s ORDER BY at, id",
                    (to_db(start), to_db(end)))
        rows = cur.fetchall()
    conn.commit()
    return [ActionRow(int(i), from_db(at) or start, str(actor), str(action), str(outcome), str(principal),
                      scope, quota, period, decision_id, from_db(until), str(reason))
            for i, at, actor, action, outcome, principal, scope, quota, period, decision_id, until, reason in rows]


class TeamMembers:
    """The people a team's decision covers, read from one database's rows: those with a counted call or a
    metered log in the team in the quota period (as the counting script's members sets hold them), each
    with the time they were first counted there — a person counted after the crossing is due a block
    from their first call on (the reconciler's job live), not from the crossing."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._known: dict[tuple[str, str], dict[str, datetime]] = {}

    def of(self, team: str, period: str) -> dict[str, datetime]:
        if (team, period) not in self._known:
            self._known[team, period] = self._read(team, period)
        return self._known[team, period]

    def _read(self, team: str, period: str) -> dict[str, datetime]:
        monthly = len(period) == 7
        first = date.fromisoformat(period + "-01" if monthly else period)
        end = first_of_next_month(first) if monthly else first + timedelta(days=1)
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT p.quota_key, MIN(u.t) FROM ("
                " SELECT principal_id, event_time AS t FROM bedrock_calls WHERE team = %s AND event_date >= %s"
                "  AND event_date < %s AND error_code IS NULL"
                " UNION ALL SELECT principal_id, event_time FROM invocation_logs WHERE team = %s"
                "  AND event_date >= %s AND event_date < %s"
                ") u JOIN principals p ON p.id = u.principal_id GROUP BY p.quota_key", (team, first, end) * 2)
            rows = cur.fetchall()
        self._conn.commit()
        return {str(key): from_db(t) or datetime.min for key, t in rows}


@dataclass(frozen=True)
class Deny:
    """A span during which a person was denied, and the action that began it."""

    start: datetime
    end: datetime | None  # None: still in force (indefinite, or past what was read)
    opened_by: ActionRow

    def covers(self, instant: datetime) -> bool:
        return self.start <= instant and (self.end is None or instant < self.end)


class DenyTimeline:
    """Each person's denies, from the audit trail's actions (read over a window wide enough to hold the
    blocks in force at its start: a monthly block lasts up to a month)."""

    def __init__(self, actions: Iterable[ActionRow]) -> None:
        self._spans: dict[str, list[Deny]] = {}
        current: dict[str, tuple[datetime, datetime | None, ActionRow]] = {}
        for act in actions:  # in time order
            now = current.get(act.principal)
            if now is not None and now[1] is not None and now[1] <= act.at:  # it ran out by itself
                self._close(act.principal, now, now[1])
                now = None
                del current[act.principal]
            if act.denies:
                if now is None:
                    current[act.principal] = (act.at, act.blocked_until, act)
                else:  # extended: the later end stands (None, indefinite, is the latest)
                    until = None if now[1] is None or act.blocked_until is None else max(now[1], act.blocked_until)
                    current[act.principal] = (now[0], until, now[2])
            elif act.action == "unblock" and act.outcome in DENY_OUTCOMES and now is not None:
                self._close(act.principal, now, act.at)
                del current[act.principal]
        for principal, now in current.items():
            self._close(principal, now, now[1])

    def _close(self, principal: str, span: tuple[datetime, datetime | None, ActionRow], end: datetime | None) -> None:
        self._spans.setdefault(principal, []).append(Deny(span[0], end, span[2]))

    def denied(self, principal: str, due: datetime, deadline: datetime) -> tuple[datetime, Deny] | None:
        """When `principal` was first denied at or after `due` and before `deadline` (the instant itself if
        a deny was already in force at `due`), and that deny; None if never."""
        for deny in self._spans.get(principal, []):
            if deny.covers(due):
                return due, deny
            if due < deny.start < deadline:
                return deny.start, deny
        return None
