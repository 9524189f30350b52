"""Usage per person for a day: counters from Redis (from MySQL for months Redis no longer holds),
people and limits from MySQL.

What `bedrockctl usage` prints and what later dashboards and the enforcer's reconciler read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

import redis
from pymysql.connections import Connection

from bedrock_usage.keys import Keys
from bedrock_usage.periods import first_of_next_month, month_of, redis_horizon
from bedrock_usage.quota import Limits, Scope, State, state_of
from bedrock_usage.redis_state import as_counts
from bedrock_usage.settings import Settings


class TeamStatus(StrEnum):
    """Where a person's calls are charged: a team, no team (DEFAULT_TEAM, which is not a team), or a team
    not known yet (a lookup still being retried; their calls are held for it)."""

    TEAM = "team"
    NONE = "none"
    UNRESOLVED = "unresolved"


@dataclass(frozen=True)
class PersonUsage:
    principal: str
    display_name: str | None
    identity_type: str
    team: str
    team_status: str  # TeamStatus
    date: str
    requests: int
    failed: int
    daily_limit: int | None
    monthly_requests: int
    monthly_limit: int | None
    state: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TeamUsage:
    team: str
    date: str
    requests: int
    failed: int
    daily_limit: int | None
    monthly_requests: int
    monthly_limit: int | None
    state: str
    members: list[str]  # quota keys counted in the team that day

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _worst(*states: State) -> State:
    order = [State.OK, State.WARNING, State.EXCEEDED]
    return max(states, key=order.index)


class UsageReader:
    def __init__(
        self, conn: Connection, client: redis.Redis, keys: Keys, *, user_defaults: Limits,
        team_defaults: Limits, default_team: str, warning_percents: Sequence[int], horizon: date,
    ) -> None:
        self._conn, self._redis, self._keys = conn, client, keys
        self._user_defaults, self._team_defaults = user_defaults, team_defaults
        self._default_team = default_team
        self._percents = tuple(warning_percents)
        self._horizon = horizon

    @classmethod
    def for_settings(cls, conn: Connection, client: redis.Redis, settings: Settings, now: datetime) -> UsageReader:
        """The reader every process uses: the settings' defaults, and the Redis horizon as of `now`."""
        return cls(
            conn, client, Keys(settings.redis_key_prefix),
            user_defaults=settings.user_defaults,
            team_defaults=settings.team_defaults,
            default_team=settings.default_team, warning_percents=settings.warning_thresholds,
            horizon=redis_horizon(now, settings.quota_timezone, settings.counter_grace_days),
        )

    def _counters(self, scope: Scope, subjects: list[str], day: date) -> list[tuple[dict[str, int], dict[str, int]]]:
        """Day and month counters of each subject: Redis while it holds the month, MySQL before that."""
        if day < self._horizon:
            return self._recorded(scope, subjects, day)
        pipe = self._redis.pipeline(transaction=False)
        for subject in subjects:
            pipe.hgetall(self._keys.counter(scope, subject, day.isoformat()))
            pipe.hgetall(self._keys.counter(scope, subject, month_of(day)))
        replies = pipe.execute()
        return [(as_counts(replies[i]), as_counts(replies[i + 1])) for i in range(0, len(replies), 2)]

    def _recorded(self, scope: Scope, subjects: list[str], day: date) -> list[tuple[dict[str, int], dict[str, int]]]:
        if not subjects:
            return []
        column = "p.quota_key" if scope is Scope.USER else "c.team"
        month = day.replace(day=1)
        with self._conn.cursor() as cur:
            cur.execute(
                f"SELECT {column}, SUM(c.event_date = %s AND c.error_code IS NULL),"
                " SUM(c.event_date = %s AND c.error_code IS NOT NULL), SUM(c.error_code IS NULL),"
                " SUM(c.error_code IS NOT NULL) FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id"
                f" WHERE c.event_date >= %s AND c.event_date < %s AND {column} IN ("
                + ",".join(["%s"] * len(subjects)) + f") GROUP BY {column}",
                [day, day, month, first_of_next_month(month), *subjects])
            found = {str(key): tuple(int(v or 0) for v in values) for key, *values in cur.fetchall()}
        self._conn.commit()

        def counts(req: int, err: int) -> dict[str, int]:
            return {name: n for name, n in (("req", req), ("err", err)) if n}

        return [(counts(*found[s][:2]), counts(*found[s][2:])) if s in found else ({}, {}) for s in subjects]

    def people(self, day: date, *, user: str | None = None, team: str | None = None,
               include_idle: bool = False) -> list[PersonUsage]:
        sql = ("SELECT quota_key, display_name, identity_type, team, daily_request_limit, monthly_request_limit,"
               " resolved_at IS NOT NULL OR team_source = 'quota_file' FROM principals")
        where, params = [], []
        if user:
            where.append("quota_key = %s")
            params.append(user)
        if team:
            where.append("COALESCE(team, %s) = %s")
            params += [self._default_team, team]
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._conn.cursor() as cur:
            cur.execute(sql + " ORDER BY quota_key", params)
            rows = cur.fetchall()
        self._conn.commit()
        counters = self._counters(Scope.USER, [str(r[0]) for r in rows], day)
        result = []
        for (key, name, kind, row_team, daily, monthly, resolved), (day_c, month_c) in zip(rows, counters, strict=True):
            daily_limit = daily if daily is not None else self._user_defaults.daily
            monthly_limit = monthly if monthly is not None else self._user_defaults.monthly
            requests, monthly_requests = day_c.get("req", 0), month_c.get("req", 0)
            if not (include_idle or user or requests or monthly_requests or day_c.get("err")):
                continue
            state = _worst(state_of(requests, daily_limit, self._percents),
                           state_of(monthly_requests, monthly_limit, self._percents))
            result.append(PersonUsage(
                principal=str(key), display_name=name, identity_type=str(kind),
                team=str(row_team) if row_team else self._default_team,
                team_status=(TeamStatus.TEAM if row_team else TeamStatus.NONE if resolved else TeamStatus.UNRESOLVED),
                date=day.isoformat(),
                requests=requests, failed=day_c.get("err", 0), daily_limit=daily_limit,
                monthly_requests=monthly_requests, monthly_limit=monthly_limit, state=state.value,
            ))
        return result

    def teams(self, day: date, names: Sequence[str] | None = None) -> list[TeamUsage]:
        """Usage of teams on a day: those named, else every team declared or counted that month.
        DEFAULT_TEAM is not a team: it is never among them."""
        if names is None:
            names = self.team_names()
        names = sorted(set(names) - {self._default_team, ""})
        overrides: dict[str, tuple[int | None, int | None]] = {}
        if names:
            with self._conn.cursor() as cur:
                cur.execute(
                    "SELECT name, daily_request_limit, monthly_request_limit FROM teams WHERE name IN ("
                    + ",".join(["%s"] * len(names)) + ")", names)
                overrides = {str(n): (d, m) for n, d, m in cur.fetchall()}
            self._conn.commit()
        members = self.members_of(names, day.isoformat())
        result = []
        for name, (day_c, month_c) in zip(names, self._counters(Scope.TEAM, names, day), strict=True):
            d_override, m_override = overrides.get(name, (None, None))
            daily = d_override if d_override is not None else self._team_defaults.daily
            monthly = m_override if m_override is not None else self._team_defaults.monthly
            requests, monthly_requests = day_c.get("req", 0), month_c.get("req", 0)
            state = _worst(state_of(requests, daily, self._percents),
                           state_of(monthly_requests, monthly, self._percents))
            result.append(TeamUsage(name, day.isoformat(), requests, day_c.get("err", 0), daily, monthly_requests,
                                    monthly, state.value, members.get(name, [])))
        return result

    def team_names(self) -> list[str]:
        """Teams declared in the quota file or someone's team now (not DEFAULT_TEAM)."""
        with self._conn.cursor() as cur:
            # Two small tables, not a month of calls: this runs at every reconciliation.
            cur.execute("SELECT name FROM teams UNION SELECT DISTINCT team FROM principals WHERE team IS NOT NULL")
            found = {str(n) for (n,) in cur.fetchall()}
        self._conn.commit()
        return sorted(found - {self._default_team, ""})

    def members_of(self, teams: Sequence[str], period_id: str) -> dict[str, list[str]]:
        """The people counted in each team in a period (a day `YYYY-MM-DD` or a month `YYYY-MM`): whom a
        team block covers. Redis while it holds the period, MySQL before that."""
        teams = sorted(set(teams))
        if not teams:
            return {}
        monthly = len(period_id) == 7
        first = date.fromisoformat(period_id + "-01" if monthly else period_id)
        if first >= self._horizon:
            pipe = self._redis.pipeline(transaction=False)
            for team in teams:
                pipe.smembers(self._keys.members(team, period_id))
            return {team: sorted(m.decode() if isinstance(m, bytes) else str(m) for m in found)
                    for team, found in zip(teams, pipe.execute(), strict=True)}
        end = first_of_next_month(first) if monthly else first + timedelta(days=1)
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT DISTINCT c.team, p.quota_key FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id"
                " WHERE c.event_date >= %s AND c.event_date < %s AND c.error_code IS NULL AND c.team IN ("
                + ",".join(["%s"] * len(teams)) + ")", [first, end, *teams])
            rows = cur.fetchall()
        self._conn.commit()
        out: dict[str, list[str]] = {team: [] for team in teams}
        for team, key in rows:
            out[str(team)].append(str(key))
        return {team: sorted(keys) for team, keys in out.items()}
