"""The replay's decisions beside the record: the decisions recorded live and the enforcer's audit trail.

What an auditor asks of the blocks, answered from the two databases:
- **decisions** taken on one side and not the other (the same scope, subject, quota, period and percent),
  or taken on both under different limits;
- **missed blocks**: a quota used up in the replay (an exceeded crossing) with no deny applied live for the
  person — for a team's quota, for each person counted in the team — before the quota period ended;
- **late blocks**: applied, but more than `late_after` after the crossing (for a team member first counted
  after the crossing, after their first call): the delay is from the crossing call's time to the time the
  deny was applied in the audit trail (zero when a deny was already in force);
- **blocks with no crossing behind them**: a quota deny applied live with no exceeded crossing of that
  quota and period covering the person in the replay (or only a later one).
Admin blocks are not quota blocks: listed apart, never findings. Nor are crossings the enforcer left alone
by design (a protected principal, an admin's `unblock --protect` shield). Usage and limits are requests,
or exact dollars for a cost quota.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from audit.audit_trail import ActionRow, DecisionRow, DenyTimeline, TeamMembers, read_actions, read_decisions
from audit.output import Section
from audit.period import Period
from bedrock_usage.periods import period_end

DEFAULT_LATE_AFTER = timedelta(seconds=60)
# A monthly block in force when the period starts began at most a month before it: the trail is read from
# there, so that a crossing under a deny already standing is not taken for a missed block.
_LOOKBACK = timedelta(days=32)
_EXEMPT = frozenset({"protected", "shielded"})  # outcomes of a block the enforcer rightly did not apply
_ADMIN_ACTORS = frozenset({"system", "reconciler"})  # enforcement.model.ActorKind: any other actor is an admin

_CROSSING = ("principal", "scope", "subject", "quota", "period", "usage", "limit", "crossed_at", "crossing_event")


@dataclass(frozen=True)
class Due:
    """One person's block that an exceeded crossing of the replay calls for."""

    decision: DecisionRow
    principal: str
    due: datetime  # the crossing call's time, or the member's first call in the team if later
    deadline: datetime  # the quota period's end: a deny after it is no block at all

    def cells(self) -> list[Any]:
        d = self.decision
        return [self.principal, d.scope, d.subject, d.quota, d.period, *d.amounts, _iso(self.due), d.event_id]


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat(timespec="milliseconds") if instant is not None else None


def _seconds(delay: timedelta) -> int:
    return int(delay.total_seconds())


def audit_decisions(live_conn: Any, replay_conn: Any, period: Period, *,
                    late_after: timedelta = DEFAULT_LATE_AFTER) -> tuple[list[Section], bool]:
    """The decision sections of the replay's report, and whether any of them holds a finding."""
    live = read_decisions(live_conn, period.start, period.end)
    replay = read_decisions(replay_conn, period.start, period.end)
    members = TeamMembers(replay_conn)
    dues = list(_dues(replay, members, period))
    until = max([period.end, *(d.deadline for d in dues)])
    actions = read_actions(live_conn, period.start - _LOOKBACK, until)
    timeline = DenyTimeline(actions)

    decisions, other_call = _compare(live, replay)
    missed, late, exempt = _blocks_due(dues, actions, timeline, late_after)
    unfounded, admin = _blocks_applied(actions, period, dues)
    sections = [decisions, other_call, missed, late, unfounded, admin, exempt]
    finding = any(s.rows for s in (decisions, missed, late, unfounded))
    return sections, finding


def _dues(replay: list[DecisionRow], members: TeamMembers, period: Period) -> Iterator[Due]:
    for d in replay:
        if d.kind != "exceeded":
            continue
        deadline = period_end(d.quota, d.period, period.tz)
        if d.scope == "user":
            yield Due(d, d.subject, d.event_time, deadline)
            continue
        for key, first in sorted(members.of(d.subject, d.period).items()):
            if first < deadline:
                yield Due(d, key, max(d.event_time, first), deadline)


def _compare(live: list[DecisionRow], replay: list[DecisionRow]) -> tuple[Section, Section]:
    """Decisions on one side only, or under another limit (findings); and the same crossing reached on
    another call (not a finding: concurrent calls of a team, counted in another order)."""
    live_by, replay_by = {d.key: d for d in live}, {d.key: d for d in replay}
    columns = ("difference", "scope", "subject", "quota", "period", "percent", "live_usage", "live_limit",
               "live_crossed_at", "replay_usage", "replay_limit", "replay_crossed_at")
    differ = Section("decisions", columns)
    other = Section("decisions_crossed_on_another_call", columns)
    for key in sorted(live_by.keys() | replay_by.keys(), key=lambda k: (k[3], k[0], k[1], k[2], k[4])):
        was, now = live_by.get(key), replay_by.get(key)
        if was is not None and now is not None and was.limit == now.limit and was.event_id == now.event_id:
            continue
        if was is None:
            label, target = "replay only", differ
        elif now is None:
            label, target = "live only", differ
        elif was.limit != now.limit:
            label, target = "limit differs", differ
        else:
            label, target = "another call", other
        target.rows.append([label, *key,
                            *(_side(was) if was else [None] * 3), *(_side(now) if now else [None] * 3)])
    return differ, other


def _side(d: DecisionRow) -> list[Any]:
    return [*d.amounts, _iso(d.event_time)]


def _blocks_due(dues: list[Due], actions: list[ActionRow], timeline: DenyTimeline,
                late_after: timedelta) -> tuple[Section, Section, Section]:
    """Each block the replay calls for: applied live in time, late, never (missed) or rightly not at all."""
    linked: dict[tuple[str, str], list[ActionRow]] = {}
    for act in actions:
        if act.action == "block" and act.decision_id:
            linked.setdefault((act.decision_id, act.principal), []).append(act)
    missed = Section("missed_blocks", (*_CROSSING, "live"))
    late = Section("late_blocks", (*_CROSSING, "denied_at", "delay_seconds", "denied_by", "deny_reason"))
    exempt = Section("blocks_not_applied_by_design", (*_CROSSING, "live"))
    for due in dues:
        recorded = linked.get((due.decision.decision_id, due.principal), [])
        if any(a.outcome in _EXEMPT for a in recorded):
            exempt.rows.append([*due.cells(), _what(recorded)])
            continue
        found = timeline.denied(due.principal, due.due, due.deadline)
        if found is None:
            missed.rows.append([*due.cells(), _what(recorded)])
            continue
        at, deny = found
        if at - due.due > late_after:
            late.rows.append([*due.cells(), _iso(at), _seconds(at - due.due), deny.opened_by.actor,
                              deny.opened_by.reason])
    return missed, late, exempt


def _what(recorded: list[ActionRow]) -> str:
    """What the audit trail says of the crossing's block, when it holds no deny for it."""
    if not recorded:
        return "no action recorded"
    return "; ".join(f"{a.outcome} at {_iso(a.at)} by {a.actor}" for a in recorded)


def _blocks_applied(actions: list[ActionRow], period: Period, dues: list[Due]) -> tuple[Section, Section]:
    """The denies applied live in the period: quota blocks with no crossing behind them in the replay
    (findings), and admin blocks (listed, not findings)."""
    by_quota: dict[tuple[str, str, str, str], list[Due]] = {}
    for due in dues:
        d = due.decision
        by_quota.setdefault((due.principal, d.scope, d.quota, d.period), []).append(due)
    unfounded = Section("blocks_without_crossing", (
        "principal", "scope", "quota", "period", "blocked_at", "actor", "outcome", "decision_id", "reason",
        "finding"))
    admin = Section("admin_blocks", ("principal", "blocked_at", "actor", "outcome", "blocked_until", "reason"))
    for act in actions:
        if not act.denies or act.at not in period:
            continue
        if act.scope is None or act.quota is None or act.period is None:
            if act.actor not in _ADMIN_ACTORS:
                admin.rows.append([act.principal, _iso(act.at), act.actor, act.outcome, _iso(act.blocked_until),
                                   act.reason])
            continue  # else the reconciler's repair of a role's policies: no one's block
        crossings = by_quota.get((act.principal, act.scope, act.quota, act.period), [])
        if any(c.due <= act.at for c in crossings):
            continue
        finding = (f"the replay crosses it later, at {_iso(min(c.due for c in crossings))}" if crossings
                   else "no exceeded crossing in the replay")
        unfounded.rows.append([act.principal, act.scope, act.quota, act.period, _iso(act.at), act.actor,
                               act.outcome, act.decision_id, act.reason, finding])
    return unfounded, admin
