"""What applying a quota file changes, against what MySQL holds: `limits apply --dry-run` prints it
instead of applying, and a real apply prints it after.

It reads only, and follows the rules of `limits.apply`: a person's email and name are kept when the
file gives none, and a team the file no longer gives them goes back to being looked up.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pymysql.cursors import Cursor

from bedrock_usage import directory_state
from bedrock_usage.directory_state import IdentityCenterRule
from bedrock_usage.quota import Limits, nanos_of, usd
from bedrock_usage.quota_file import PersonEntry, QuotaFile
from bedrock_usage.teams import TeamSource

_CHUNK = 1000  # keys per `IN (...)` list


class Section(StrEnum):
    """The part of the quota file a change is in (the plan prints the value)."""

    TEAM = "team"
    PERSON = "person"
    IDENTITY_CENTER = "identity_center"


class ChangeAction(StrEnum):
    ADDED = "added"
    CHANGED = "changed"
    CLEARED = "cleared"


_SIGNS = {ChangeAction.ADDED: "+", ChangeAction.CHANGED: "~", ChangeAction.CLEARED: "-"}


@dataclass(frozen=True)
class Change:
    what: Section
    subject: str
    action: ChangeAction
    details: tuple[str, ...]

    def line(self) -> str:
        subject = f" {self.subject}" if self.subject else ""
        return f"{_SIGNS[self.action]} {self.what}{subject}: {', '.join(self.details)}"


def describe(changes: Sequence[Change]) -> list[str]:
    return [c.line() for c in changes] if changes else ["no changes"]


def _dollars(nanos: int | None) -> str | None:
    """A cost limit as the plan shows it: `$12.50`, `$0.1234` (exact: never rounded to cents)."""
    if nanos is None:
        return None
    amount = usd(nanos)
    cents = amount.quantize(Decimal("0.01"))
    return f"${cents if cents == amount else amount.normalize()}"


def _costs(limits: Limits) -> tuple[str | None, str | None]:
    return _dollars(limits.daily_cost), _dollars(limits.monthly_cost)


def _row_costs(daily_usd: Decimal | None, monthly_usd: Decimal | None) -> tuple[str | None, str | None]:
    """The DECIMAL columns, shown as the file's limits are (so that equal amounts compare equal)."""
    def shown(value: Decimal | None) -> str | None:
        return None if value is None else _dollars(nanos_of(value))

    return shown(daily_usd), shown(monthly_usd)


_TEAM_NAMES = ("daily", "monthly", "daily cost", "monthly cost", "admins")
_TEAM_UNSET = ("default", "default", "default", "default", "none")


def _show(value: Any, unset: str = "default") -> str:
    if value is None or value == ():
        return unset
    return ", ".join(value) if isinstance(value, tuple) else str(value)


def _diff(fields: Iterable[tuple[str, Any, Any, str]]) -> tuple[str, ...]:
    """`name old → new` for each (name, old, new, what None means) that differs."""
    return tuple(f"{name} {_show(old, unset)} → {_show(new, unset)}" for name, old, new, unset in fields
                 if old != new)


def _given(fields: Iterable[tuple[str, Any]]) -> tuple[str, ...]:
    return tuple(f"{name} {_show(value)}" for name, value in fields if value is not None and value != ())


def plan(cur: Cursor, quota: QuotaFile) -> list[Change]:
    return _teams(cur, quota) + _people(cur, quota) + _identity_center(cur, quota.identity_center)


def _teams(cur: Cursor, quota: QuotaFile) -> list[Change]:
    cur.execute("SELECT name, daily_request_limit, monthly_request_limit, daily_cost_limit_usd,"
                " monthly_cost_limit_usd, admin_emails FROM teams")
    rows = {str(n): (d, m, *_row_costs(dc, mc), tuple(json.loads(a)) if a else ())
            for n, d, m, dc, mc, a in cur.fetchall()}
    changes = []
    for name, limits in quota.teams.items():
        new = (limits.daily, limits.monthly, *_costs(limits), quota.team_admins.get(name, ()))
        old = rows.get(name)
        if old is None or (not any(old) and any(new)):
            # A row with nothing set is a team seen in a tag, or declared bare: declaring it is news.
            details = _given(zip(_TEAM_NAMES, new, strict=True))
            changes.append(Change(Section.TEAM, name, ChangeAction.ADDED, details or ("no limits of its own",)))
        elif old != new:
            changes.append(Change(Section.TEAM, name, ChangeAction.CHANGED,
                                  _diff(zip(_TEAM_NAMES, old, new, _TEAM_UNSET, strict=True))))
    for name in sorted(set(rows) - set(quota.teams)):
        old = rows[name]
        if any(old):
            changes.append(Change(Section.TEAM, name, ChangeAction.CLEARED, _diff(
                zip(_TEAM_NAMES, old, (None, None, None, None, ()), _TEAM_UNSET, strict=True))))
    return changes


_PERSON_COLUMNS = ("quota_key, team, team_source, email, display_name, daily_request_limit, monthly_request_limit,"
                   " daily_cost_limit_usd, monthly_cost_limit_usd, language, time_zone")


def _people(cur: Cursor, quota: QuotaFile) -> list[Change]:
    cur.execute(f"SELECT {_PERSON_COLUMNS} FROM principals WHERE team_source = 'quota_file'"
                " OR daily_request_limit IS NOT NULL OR monthly_request_limit IS NOT NULL"
                " OR daily_cost_limit_usd IS NOT NULL OR monthly_cost_limit_usd IS NOT NULL")
    rows = {str(r[0]): r[1:] for r in cur.fetchall()}
    keys = sorted(set(quota.people) - set(rows))
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        cur.execute(f"SELECT {_PERSON_COLUMNS} FROM principals WHERE quota_key IN"
                    f" ({', '.join(['%s'] * len(chunk))})", chunk)
        rows.update({str(r[0]): r[1:] for r in cur.fetchall()})
    changes = [c for p in quota.people.values() if (c := _person(p, rows.get(p.key)))]
    for key in sorted(set(rows) - set(quota.people)):
        team, source, _, _, daily, monthly, daily_usd, monthly_usd, *_ = rows[key]
        daily_cost, monthly_cost = _row_costs(daily_usd, monthly_usd)
        details = (f"team {team} (from the file) → looked up again",) if source == TeamSource.QUOTA_FILE else ()
        changes.append(Change(Section.PERSON, key, ChangeAction.CLEARED, details + _diff(
            (("daily", daily, None, "default"), ("monthly", monthly, None, "default"),
             ("daily cost", daily_cost, None, "default"), ("monthly cost", monthly_cost, None, "default")))))
    return changes


def _person(p: PersonEntry, row: Sequence[Any] | None) -> Change | None:
    costs = _costs(p.limits)
    new = (p.team, p.limits.daily, p.limits.monthly, *costs, p.email, p.name, p.language, p.timezone)
    if row is None:
        given = _given(zip(("team", "daily", "monthly", "daily cost", "monthly cost", "email", "name", "language",
                            "timezone"), new, strict=True))
        return Change(Section.PERSON, p.key, ChangeAction.ADDED, given or ("defaults, team looked up",))
    team, source, email, name, daily, monthly, daily_usd, monthly_usd, language, timezone = row
    old_costs = _row_costs(daily_usd, monthly_usd)
    details: list[str] = []
    if p.team and (source != TeamSource.QUOTA_FILE or team != p.team):
        details.append(f"team {_show(team)} → {p.team}")
    elif not p.team and source == TeamSource.QUOTA_FILE:
        details.append(f"team {team} (from the file) → looked up again")
    details += _diff((
        ("daily", daily, p.limits.daily, "default"), ("monthly", monthly, p.limits.monthly, "default"),
        ("daily cost", old_costs[0], costs[0], "default"), ("monthly cost", old_costs[1], costs[1], "default"),
        ("email", email, p.email or email, "none"), ("name", name, p.name or name, "none"),
        ("language", language, p.language, "default"), ("timezone", timezone, p.timezone, "default"),
    ))
    return Change(Section.PERSON, p.key, ChangeAction.CHANGED, tuple(details)) if details else None


def _identity_center(cur: Cursor, rule: IdentityCenterRule | None) -> list[Change]:
    _, old = directory_state.read_state(cur)
    if old == rule:
        return []

    def text(r: IdentityCenterRule) -> str:
        return (f"store {r.store_id}" + (f" in {r.region}" if r.region else "")
                + f", {len(r.team_from_groups)} group rule{'s' if len(r.team_from_groups) != 1 else ''}")

    if rule is None:
        assert old is not None
        return [Change(Section.IDENTITY_CENTER, "", ChangeAction.CLEARED,
                       (f"was {text(old)}", "no Identity Store lookups"))]
    if old is None:
        return [Change(Section.IDENTITY_CENTER, "", ChangeAction.ADDED, (text(rule),))]
    details = [f"was {text(old)}", f"now {text(rule)}"]
    if old.team_from_groups != rule.team_from_groups and len(old.team_from_groups) == len(rule.team_from_groups):
        details.append("group rules changed")
    return [Change(Section.IDENTITY_CENTER, "", ChangeAction.CHANGED, tuple(details))]
