"""Usage per person for a day: counters from Redis (from MySQL for months Redis no longer holds),
people and limits from MySQL.

Requests and failures, and what calls cost: cost in nano-dollars and tokens by part, per day and month
(the counter hash fields `cost`, `in`, `out`, `cr`, `cw5`, `cw1`; before the Redis horizon, the
`invocation_logs` rows, as requests come from `bedrock_calls`). The state accounts for all four quotas.

What `bedrockctl usage` prints and what later dashboards and the enforcer's reconciler read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pymysql.connections import Connection

from bedrock_usage.identity import IdentityType
from bedrock_usage.keys import Keys
from bedrock_usage.limits import limits_of
from bedrock_usage.periods import first_of_next_month, month_of, redis_horizon
from bedrock_usage.pricing.rates import TOKEN_COLUMNS, Tokens
from bedrock_usage.quota import Limits, Quota, Scope, State, nanos_of, state_of
from bedrock_usage.redis_state import RedisClient, as_counts
from bedrock_usage.settings import SharedSettings
from bedrock_usage.teams import is_team, team_or_default, team_or_default_sql


class TeamStatus(StrEnum):
    """Where a person's calls are charged: a team, no team (DEFAULT_TEAM, which is not a team), or a team
    not known yet (a lookup still being retried; their calls are held for it)."""

    TEAM = "team"
    NONE = "none"
    UNRESOLVED = "unresolved"


# Token fields of the counter hashes (the counting script's names, consumer/counters.lua) → Tokens.
TOKEN_FIELDS = {"in": "input", "out": "output", "cr": "cache_read", "cw5": "cache_write_5m",
                "cw1": "cache_write_1h"}


def tokens_of(counters: Mapping[str, int]) -> Tokens:
    """A day or month counter hash's token fields."""
    return Tokens(**{name: counters.get(key, 0) for key, name in TOKEN_FIELDS.items()})


class _Quotas:
    """Usage and limit of each quota, for code that walks the four of them (the reconciler)."""

    requests: int
    monthly_requests: int
    cost: int
    monthly_cost: int
    daily_limit: int | None
    monthly_limit: int | None
    daily_cost_limit: int | None
    monthly_cost_limit: int | None

    def usage_of(self, quota: Quota) -> int:
        return {Quota.DAILY_REQUESTS: self.requests, Quota.MONTHLY_REQUESTS: self.monthly_requests,
                Quota.DAILY_COST: self.cost, Quota.MONTHLY_COST: self.monthly_cost}[quota]

    def limit_of(self, quota: Quota) -> int | None:
        return Limits(self.daily_limit, self.monthly_limit, self.daily_cost_limit,
                      self.monthly_cost_limit).for_quota(quota)


@dataclass(frozen=True)
class PersonUsage(_Quotas):
    principal: str
    display_name: str | None
    identity_type: IdentityType
    team: str
    team_status: TeamStatus
    date: str
    requests: int
    failed: int
    daily_limit: int | None
    monthly_requests: int
    monthly_limit: int | None
    state: State  # the worst of the four quotas
    cost: int = 0  # nano-dollars, that day
    monthly_cost: int = 0
    daily_cost_limit: int | None = None  # nano-dollars (the override, else the default)
    monthly_cost_limit: int | None = None
    tokens: Tokens = field(default_factory=Tokens)  # that day
    monthly_tokens: Tokens = field(default_factory=Tokens)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TeamUsage(_Quotas):
    team: str
    date: str
    requests: int
    failed: int
    daily_limit: int | None
    monthly_requests: int
    monthly_limit: int | None
    state: State
    members: list[str]  # quota keys counted in the team that day
    cost: int = 0
    monthly_cost: int = 0
    daily_cost_limit: int | None = None
    monthly_cost_limit: int | None = None
    tokens: Tokens = field(default_factory=Tokens)
    monthly_tokens: Tokens = field(default_factory=Tokens)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _worst(*states: State) -> State:
    order = [State.OK, State.WARNING, State.EXCEEDED]
    return max(states, key=order.index)


def _active(day: Mapping[str, int], month: Mapping[str, int]) -> bool:
    """Called that day (counted, failed, or charged for a log), or counted that month."""
    return any(day.get(f) for f in ("req", "err", "cost", *TOKEN_FIELDS)) or bool(month.get("req") or month.get("cost"))


def _state(day: Mapping[str, int], month: Mapping[str, int], limits: Limits, percents: Sequence[int]) -> State:
    return _worst(*(state_of((month if q.monthly else day).get(q.counter, 0), limits.for_quota(q), percents)
                    for q in Quota))


class UsageReader:
    def __init__(
        self, conn: Connection, client: RedisClient, keys: Keys, *, user_defaults: Limits,
        team_defaults: Limits, default_team: str, warning_percents: Sequence[int], horizon: date,
    ) -> None:
        self._conn, self._redis, self._keys = conn, client, keys
        self._user_defaults, self._team_defaults = user_defaults, team_defaults
        self._default_team = default_team
        self._percents = tuple(warning_percents)
        self._horizon = horizon

    @classmethod
    def for_settings(cls, conn: Connection, client: RedisClient, settings: SharedSettings,
                     now: datetime) -> UsageReader:
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
        """The counters as MySQL records them: requests from `bedrock_calls`, cost and tokens from
        `invocation_logs` (a log is charged whether or not its CloudTrail event came)."""
        if not subjects:
            return []
        column = "p.quota_key" if scope is Scope.USER else "c.team"
        month = day.replace(day=1)
        span = [month, first_of_next_month(month), *subjects]
        within = f" WHERE c.event_date >= %s AND c.event_date < %s AND {column} IN ({','.join(['%s'] * len(subjects))})"
        with self._conn.cursor() as cur:
            cur.execute(
                f"SELECT {column}, SUM(c.event_date = %s AND c.error_code IS NULL),"
                " SUM(c.event_date = %s AND c.error_code IS NOT NULL), SUM(c.error_code IS NULL),"
                " SUM(c.error_code IS NOT NULL) FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id"
                + within + f" GROUP BY {column}", [day, day, *span])
            calls = {str(key): tuple(int(v or 0) for v in values) for key, *values in cur.fetchall()}
            parts = ("cost_usd", *TOKEN_COLUMNS)
            cur.execute(
                f"SELECT {column}, " + ", ".join(f"SUM(IF(c.event_date = %s, c.{p}, 0)), SUM(c.{p})" for p in parts)
                + " FROM invocation_logs c JOIN principals p ON p.id = c.principal_id" + within
                + f" GROUP BY {column}", [*[day] * len(parts), *span])
            logs = {str(key): values for key, *values in cur.fetchall()}
        self._conn.commit()

        def counts(pairs: Sequence[tuple[str, int]]) -> dict[str, int]:
            return {name: n for name, n in pairs if n}

        out = []
        for subject in subjects:
            req, err, month_req, month_err = calls.get(subject, (0, 0, 0, 0))
            sums = logs.get(subject, [0] * 2 * len(parts))
            cost, month_cost = nanos_of(sums[0] or 0), nanos_of(sums[1] or 0)
            tokens = [int(v or 0) for v in sums[2:]]
            day_tokens = list(zip(TOKEN_FIELDS, tokens[0::2], strict=True))
            month_tokens = list(zip(TOKEN_FIELDS, tokens[1::2], strict=True))
            out.append((counts([("req", req), ("err", err), ("cost", cost), *day_tokens]),
                        counts([("req", month_req), ("err", month_err), ("cost", month_cost), *month_tokens])))
        return out

    def people(self, day: date, *, user: str | None = None, team: str | None = None,
               include_idle: bool = False) -> list[PersonUsage]:
        sql = ("SELECT quota_key, display_name, identity_type, team, daily_request_limit, monthly_request_limit,"
               " daily_cost_limit_usd, monthly_cost_limit_usd,"
               " resolved_at IS NOT NULL OR team_source = 'quota_file' FROM principals")
        where, params = [], []
        if user:
            where.append("quota_key = %s")
            params.append(user)
        if team:
            where.append(f"{team_or_default_sql('team')} = %s")
            params += [self._default_team, team]
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._conn.cursor() as cur:
            cur.execute(sql + " ORDER BY quota_key", params)
            rows = cur.fetchall()
        self._conn.commit()
        counters = self._counters(Scope.USER, [str(r[0]) for r in rows], day)
        result = []
        for (key, name, kind, row_team, *limits, resolved), (day_c, month_c) in zip(rows, counters, strict=True):
            if not (include_idle or user or _active(day_c, month_c)):
                continue
            effective = limits_of(*limits).or_defaults(self._user_defaults)
            result.append(PersonUsage(
                principal=str(key), display_name=name, identity_type=IdentityType(kind),
                team=team_or_default(row_team, self._default_team),
                team_status=(TeamStatus.TEAM if row_team else TeamStatus.NONE if resolved else TeamStatus.UNRESOLVED),
                date=day.isoformat(),
                requests=day_c.get("req", 0), failed=day_c.get("err", 0), daily_limit=effective.daily,
                monthly_requests=month_c.get("req", 0), monthly_limit=effective.monthly,
                state=_state(day_c, month_c, effective, self._percents),
                **self._money(day_c, month_c, effective),
            ))
        return result

    @staticmethod
    def _money(day_c: Mapping[str, int], month_c: Mapping[str, int], effective: Limits) -> dict[str, Any]:
        """The cost and token fields of PersonUsage and TeamUsage."""
        return {"cost": day_c.get("cost", 0), "monthly_cost": month_c.get("cost", 0),
                "daily_cost_limit": effective.daily_cost, "monthly_cost_limit": effective.monthly_cost,
                "tokens": tokens_of(day_c), "monthly_tokens": tokens_of(month_c)}

    def teams(self, day: date, names: Sequence[str] | None = None) -> list[TeamUsage]:
        """Usage of teams on a day: those named, else every team declared or counted that month.
        DEFAULT_TEAM is not a team: it is never among them."""
        if names is None:
            names = self.team_names()
        names = sorted({n for n in names if is_team(n, self._default_team)})
        overrides: dict[str, Limits] = {}
        if names:
            with self._conn.cursor() as cur:
                cur.execute(
                    "SELECT name, daily_request_limit, monthly_request_limit, daily_cost_limit_usd,"
                    " monthly_cost_limit_usd FROM teams WHERE name IN (" + ",".join(["%s"] * len(names)) + ")", names)
                overrides = {str(n): limits_of(*limits) for n, *limits in cur.fetchall()}
            self._conn.commit()
        members = self.members_of(names, day.isoformat())
        result = []
        for name, (day_c, month_c) in zip(names, self._counters(Scope.TEAM, names, day), strict=True):
            effective = overrides.get(name, Limits(None, None)).or_defaults(self._team_defaults)
            result.append(TeamUsage(
                name, day.isoformat(), day_c.get("req", 0), day_c.get("err", 0), effective.daily,
                month_c.get("req", 0), effective.monthly, _state(day_c, month_c, effective, self._percents),
                members.get(name, []), **self._money(day_c, month_c, effective)))
        return result

    def team_names(self) -> list[str]:
        """Teams declared in the quota file or someone's team now (not DEFAULT_TEAM)."""
        with self._conn.cursor() as cur:
            # Two small tables, not a month of calls: this runs at every reconciliation.
            cur.execute("SELECT name FROM teams UNION SELECT DISTINCT team FROM principals WHERE team IS NOT NULL")
            found = {str(n) for (n,) in cur.fetchall()}
        self._conn.commit()
        return sorted(n for n in found if is_team(n, self._default_team))

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
