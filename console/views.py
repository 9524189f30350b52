"""What each page shows, as data: the pages render it, the JSON API returns it (the same objects), so the
two never disagree. Every view takes the viewer and shows only the teams they may see."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pymysql.connections import Connection

from bedrock_usage.tools import ToolUsage, tool_usage
from console import history, trail
from console.access import Forbidden, Viewer
from console.errors import NotFound
from console.health import HealthBoard, ServiceHealth
from console.settings import ConsoleSettings
from console.usage_view import (
    PeopleQuery,
    PersonRow,
    Snapshot,
    TeamRow,
    UsageSnapshots,
    in_scope,
    page_of,
    select_people,
    teams_in_scope,
)
from enforcement.targets import is_protected

ZERO = Decimal(0)
Database = Callable[[], AbstractContextManager[Connection]]


@dataclass(frozen=True)
class Totals:
    requests_today: int
    failed_today: int
    cost_today_usd: Decimal
    requests_month: int
    cost_month_usd: Decimal
    active_today: int
    active_month: int
    blocked_now: int


@dataclass(frozen=True)
class TeamSpend:
    team: str
    cost_today_usd: Decimal
    cost_month_usd: Decimal
    requests_month: int


@dataclass(frozen=True)
class Overview:
    day: str
    month: str
    quota_timezone: str
    totals: Totals
    spend_by_team: list[TeamSpend]
    top_spenders: list[PersonRow]
    decisions_last_hour: list[trail.DecisionRow]
    unpriced_models: int
    unmetered_calls_24h: int | None  # the enforcer's count (None: not reachable)


@dataclass(frozen=True)
class PeoplePage:
    day: str
    total: int  # rows matching, over every page
    page: int
    pages: int
    page_size: int
    rows: list[PersonRow]
    teams: list[str]  # the filter's choices


@dataclass(frozen=True)
class BlockState:
    blocked: bool
    indefinite: bool
    blocked_until: str | None
    reason: str | None
    origin: str | None
    actor: str | None
    protected_until: str | None
    protected_principal: bool
    iam_state: str


@dataclass(frozen=True)
class PersonPage:
    day: str
    usage: PersonRow
    hours: list[history.HourPoint]
    models_today: list[history.ModelRow]
    models_month: list[history.ModelRow]
    tools_today: list[ToolUsage]  # the day's calls by tool (bedrock_usage/tools.py)
    recent_calls: list[history.CallRow]
    decisions: list[trail.DecisionRow]
    block: BlockState
    audit: list[trail.ActionRow]
    messages: list[trail.MessageRow]


@dataclass(frozen=True)
class TeamPage:
    day: str
    usage: TeamRow
    members: list[PersonRow]
    hours: list[history.HourPoint]
    models_month: list[history.ModelRow]
    decisions: list[trail.DecisionRow]
    blocked: list[trail.BlockRow]


@dataclass(frozen=True)
class BlocksPage:
    blocked: list[trail.BlockRow]
    audit: list[trail.ActionRow]


@dataclass(frozen=True)
class HealthPage:
    services: list[ServiceHealth]
    counts: dict[str, int]
    checked_at: str
    notes: list[str] = field(default_factory=list)


class Views:
    def __init__(self, settings: ConsoleSettings, db: Database, snapshots: UsageSnapshots,
                 health: HealthBoard) -> None:
        self.settings, self._db, self.snapshots, self.health = settings, db, snapshots, health

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.quota_timezone

    def _snapshot(self) -> Snapshot:
        return self.snapshots.of()

    # -- overview ------------------------------------------------------------------------------------

    def overview(self, viewer: Viewer) -> Overview:
        snap = self._snapshot()
        people = in_scope(snap.people, viewer.scope)
        teams = teams_in_scope(snap.teams, viewer.scope)
        # Everyone's counters for an admin (people with no team included); a team admin's teams' own counters
        # (what their quotas count: a person who changed team this month is counted in each for its part).
        counted: list[PersonRow] | list[TeamRow] = people if viewer.scope is None else teams
        totals = Totals(
            requests_today=sum(c.requests for c in counted), failed_today=sum(c.failed for c in counted),
            cost_today_usd=sum((c.cost_usd for c in counted), ZERO),
            requests_month=sum(c.monthly_requests for c in counted),
            cost_month_usd=sum((c.monthly_cost_usd for c in counted), ZERO),
            active_today=sum(p.active_today for p in people), active_month=sum(p.active_month for p in people),
            blocked_now=sum(p.blocked for p in people))
        spend = sorted((TeamSpend(t.team, t.cost_usd, t.monthly_cost_usd, t.monthly_requests) for t in teams
                        if t.monthly_cost_usd or t.monthly_requests), key=lambda t: (-t.cost_month_usd, t.team))
        top = sorted((p for p in people if p.monthly_cost_usd), key=lambda p: (-p.monthly_cost_usd, p.principal))[:10]
        with self._db() as conn:
            decided = trail.decisions(conn, since=datetime.now(UTC) - timedelta(hours=1), scope=viewer.scope)
            counts = trail.counts(conn)
        unmetered = self.health.figure("bedrock_usage_unmetered_calls")
        return Overview(snap.day.isoformat(), snap.day.strftime("%Y-%m"), self.tz.key, totals, spend, top, decided,
                        counts["unpriced_models"], None if unmetered is None else int(unmetered))

    # -- people --------------------------------------------------------------------------------------

    def people(self, viewer: Viewer, query: PeopleQuery, *, every_page: bool = False) -> PeoplePage:
        if query.team:
            viewer.require_team(query.team)
        snap = self._snapshot()
        chosen = select_people(in_scope(snap.people, viewer.scope), query)
        rows = chosen if every_page else page_of(chosen, query)
        teams = sorted({p.team for p in in_scope(snap.people, viewer.scope)})
        pages = max(1, -(-len(chosen) // query.page_size))
        return PeoplePage(snap.day.isoformat(), len(chosen), query.page, pages, query.page_size, rows, teams)

    def _person_row(self, viewer: Viewer, key: str, day: date) -> PersonRow:
        row = self.snapshots.of_person(key, day)
        if row is not None and viewer.may_see_team(row.team):
            return row
        if viewer.admin:
            raise NotFound(f"no person {key!r}")
        # The same answer whether the person exists or not: a team admin learns nothing of other teams.
        raise Forbidden(f"{key} is not one of your teams' people")

    def require_person(self, viewer: Viewer, key: str) -> PersonRow:
        """The person, if the viewer may see (and so act on) them: their team now is one of the viewer's."""
        return self._person_row(viewer, key, self.snapshots.today())

    def require_actionable(self, viewer: Viewer, key: str) -> PersonRow:
        """The person, if the viewer may block or unblock them: not themselves (an admin lifting their own
        block and shielding it would escape their quotas; another admin, or `bedrockctl`, may)."""
        row = self.require_person(viewer, key)
        with self._db() as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT email FROM principals WHERE quota_key = %s", (key,))
                (email,) = cur.fetchone() or (None,)
            conn.commit()
        if key.lower() == f"sso:{viewer.email}" or (email and str(email).strip().lower() == viewer.email):
            raise Forbidden("you cannot block or unblock yourself: another admin can")
        return row

    def person(self, viewer: Viewer, key: str, day: date | None = None) -> PersonPage:
        today = self.snapshots.today()
        day = day or today
        row = self._person_row(viewer, key, day)
        with self._db() as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM principals WHERE quota_key = %s", (key,))
                (pid,) = cur.fetchone() or (None,)
            conn.commit()
            hours = history.day_hours(conn, "principal_id", pid, day, self.tz)
            models_today = history.by_model(conn, "principal_id", pid, day, day)
            models_month = history.by_model(conn, "principal_id", pid, day.replace(day=1), day)
            tools = tool_usage(conn, day, day + timedelta(days=1), self.settings.default_team, user=key)
            recent = history.recent_calls(conn, "principal_id", pid, today)
            decided = trail.decisions(conn, since=datetime.now(UTC) - timedelta(days=40), scope=None, principal=key,
                                      limit=50)
            audit = trail.audit(conn, trail.AuditQuery(principal=key, limit=50), None)
            messages = trail.messages(conn, key)
            block = self._block_state(conn, key)
        return PersonPage(day.isoformat(), row, hours, models_today, models_month, tools, recent, decided, block,
                          audit, messages)

    def _block_state(self, conn: Connection, key: str) -> BlockState:
        with conn.cursor() as cur:
            cur.execute("SELECT blocked, blocked_until, reason, origin, actor, protected_until, iam_state FROM blocks"
                        " WHERE principal = %s", (key,))
            found = cur.fetchone()
        conn.commit()
        now = datetime.now(UTC).replace(tzinfo=None)
        protected = is_protected(key, self.settings.protected_principals)
        if not found:
            return BlockState(False, False, None, None, None, None, None, protected, "none")
        blocked, until, reason, origin, actor, shield, iam = found
        active = bool(blocked) and (until is None or until > now)

        def iso(value: Any) -> str | None:
            return value.replace(tzinfo=UTC).isoformat() if value is not None else None

        return BlockState(active, active and until is None, iso(until) if active else None,
                          reason if active else None, origin if active else None, actor if active else None,
                          iso(shield) if shield is not None and shield > now else None, protected, str(iam))

    # -- teams ---------------------------------------------------------------------------------------

    def teams(self, viewer: Viewer) -> list[TeamRow]:
        return sorted(teams_in_scope(self._snapshot().teams, viewer.scope), key=lambda t: (-t.monthly_cost_usd, t.team))

    def team(self, viewer: Viewer, name: str, day: date | None = None) -> TeamPage:
        viewer.require_team(name)
        day = day or self.snapshots.today()
        row, people = self.snapshots.of_team(name, day)
        if row is None:
            raise NotFound(f"no team {name!r}")
        members = sorted(people, key=lambda p: (-p.monthly_cost_usd, p.principal))
        with self._db() as conn:
            hours = history.day_hours(conn, "team", name, day, self.tz)
            models = history.team_models(conn, name, day.replace(day=1), day)
            decided = trail.decisions(conn, since=datetime.now(UTC) - timedelta(days=40), scope=None, team=name,
                                      limit=50)
            blocked = trail.blocked_now(conn, frozenset({name}))
        return TeamPage(day.isoformat(), row, members, hours, models, decided, blocked)

    # -- the organisation over time ------------------------------------------------------------------

    def cost(self, viewer: Viewer, first: date, last: date, team: str = "") -> history.CostAnalysis:
        history.check_range(first, last)
        if team:
            viewer.require_team(team)
        with self._db() as conn:
            return history.cost_analysis(conn, first, last, viewer.scope, team or None)

    def hourly(self, viewer: Viewer, first: date, last: date, tz: ZoneInfo, team: str = "") -> history.HeatMap:
        history.check_range(first, last, max_days=92)
        if team:
            viewer.require_team(team)
        with self._db() as conn:
            return history.heat_map(conn, first, last, tz, scope=viewer.scope, team=team or None)

    def decisions(self, viewer: Viewer, within: timedelta) -> list[trail.DecisionRow]:
        with self._db() as conn:
            return trail.decisions(conn, since=datetime.now(UTC) - within, scope=viewer.scope)

    # -- blocks, audit, health -----------------------------------------------------------------------

    def blocks(self, viewer: Viewer, query: trail.AuditQuery) -> BlocksPage:
        with self._db() as conn:
            return BlocksPage(trail.blocked_now(conn, viewer.scope), trail.audit(conn, query, viewer.scope))

    def service_health(self, viewer: Viewer) -> HealthPage:
        viewer.require_admin()
        with self._db() as conn:
            counts = trail.counts(conn)
        notes = []
        if not self.settings.console_service_urls:
            notes.append("CONSOLE_SERVICE_URLS is empty: the services' own health is not read.")
        return HealthPage(self.health.services(), counts, datetime.now(UTC).isoformat(), notes)
