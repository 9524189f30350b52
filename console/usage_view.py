"""People and teams with today's and the month's usage, from the counters (Redis; MySQL for months Redis
no longer holds) through the same reader as `bedrockctl usage`, so that the console and the command line
never disagree. Every person's counters are read in one pipeline and kept for a few seconds: sorting,
filtering and paging 10,000 people is then a matter of microseconds per request."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pymysql.connections import Connection

from bedrock_usage import db
from bedrock_usage.printing import dollars
from bedrock_usage.quota import Quota, usd
from bedrock_usage.redis_state import RedisClient, redis_client
from bedrock_usage.settings import SharedSettings
from bedrock_usage.usage import PersonUsage, TeamUsage, UsageReader
from console.errors import BadInput, NotReady

log = logging.getLogger("console.usage")


@dataclass(frozen=True)
class PersonRow:
    principal: str
    display_name: str | None
    team: str
    team_status: str
    requests: int
    failed: int
    monthly_requests: int
    cost_usd: Decimal
    monthly_cost_usd: Decimal
    daily_limit: int | None
    monthly_limit: int | None
    daily_cost_limit_usd: Decimal | None
    monthly_cost_limit_usd: Decimal | None
    percent_of_strictest: int  # the highest of usage / limit over the four quotas, in %
    strictest_quota: str | None
    state: str  # ok | warning | exceeded (the counters' view)
    blocked: bool  # denied now (the enforcer's view)
    active_today: bool
    active_month: bool


@dataclass(frozen=True)
class TeamRow:
    team: str
    requests: int
    failed: int
    monthly_requests: int
    cost_usd: Decimal
    monthly_cost_usd: Decimal
    daily_limit: int | None
    monthly_limit: int | None
    daily_cost_limit_usd: Decimal | None
    monthly_cost_limit_usd: Decimal | None
    percent_of_strictest: int
    strictest_quota: str | None
    state: str
    people_today: int
    people: int  # members now (principals whose team it is)
    blocked_people: int


def _strictest(u: PersonUsage | TeamUsage) -> tuple[int, str | None]:
    best, which = 0, None
    for quota in Quota:
        limit = u.limit_of(quota)
        if limit:
            percent = int(u.usage_of(quota) * 100 // limit)
            if which is None or percent > best:
                best, which = percent, quota.value
    return best, which


@dataclass(frozen=True)
class Snapshot:
    day: date
    people: list[PersonRow]
    teams: list[TeamRow]
    taken_at: datetime


class UsageSnapshots:
    """Everyone's usage today, read again in a background thread every `every_seconds`: reading 10,000
    people's counters and limits is seconds of work, which no page waits for (a page shows the latest
    snapshot, at most that old; the first page after start waits for the first). A past day is read for the
    one person or team asked about."""

    def __init__(self, connect: Callable[[], Connection], redis: RedisClient, settings: SharedSettings, *,
                 every_seconds: float = 10.0) -> None:
        self._connect, self._redis, self._settings, self._every = connect, redis, settings, every_seconds
        self._worker: ProcessPoolExecutor | None = None
        self._current: Snapshot | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        self.read_seconds = 0.0  # how long the last snapshot took to read (a metric)
        self.last_error = ""

    def today(self) -> date:
        return datetime.now(self._settings.quota_timezone).date()

    def _read_in_worker(self, day: date) -> Snapshot:
        """Everyone's usage read by a worker process: seconds of Python work that would otherwise hold the GIL
        against the threads answering pages (their time would grow while it runs)."""
        if self._worker is None:
            self._worker = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                               initializer=_start_worker, initargs=(self._settings,))
        try:
            return self._worker.submit(_read_everyone, day).result(timeout=300)
        except BrokenProcessPool:
            self._worker = None  # the worker died (killed, out of memory): a new one next round
            raise

    def _loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                snapshot = self._read_in_worker(self.today())
                with self._lock:
                    self._current, self.last_error = snapshot, ""
                self._ready.set()
                self.read_seconds = time.monotonic() - started
            except Exception as error:  # Redis or MySQL away: the last snapshot stays, the next round retries
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("usage snapshot not read: %s", self.last_error)
            time.sleep(max(self._every - (time.monotonic() - started), 1.0))

    def of(self) -> Snapshot:
        """Today's snapshot (the latest read)."""
        with self._lock:
            if not self._started:
                self._started = True
                threading.Thread(target=self._loop, name="usage-snapshots", daemon=True).start()
        if not self._ready.wait(timeout=120):
            raise NotReady(f"usage not read yet: {self.last_error or 'still reading'}")
        with self._lock:
            assert self._current is not None
            return self._current

    def of_person(self, key: str, day: date) -> PersonRow | None:
        """One person on a day: from today's snapshot, else read for them alone (an old day's counters may
        come from MySQL: never everyone's)."""
        found = self.of().people if day == self.today() else self._read(day, user=key).people
        return next((p for p in found if p.principal == key), None)

    def of_team(self, name: str, day: date) -> tuple[TeamRow | None, list[PersonRow]]:
        """A team and its people on a day (today's snapshot, else read for that team alone)."""
        snap = self.of() if day == self.today() else self._read(day, team=name)
        row = next((t for t in snap.teams if t.team == name), None)
        return row, [p for p in snap.people if p.team == name]

    def _read(self, day: date, *, user: str | None = None, team: str | None = None) -> Snapshot:
        conn = self._connect()
        try:
            now = datetime.now(UTC)
            reader = UsageReader.for_settings(conn, self._redis, self._settings, now)
            people = reader.people(day, user=user, team=team, include_idle=True)
            teams = [] if user else reader.teams(day, [team] if team else None)
            with conn.cursor() as cur:
                only = " AND principal = %s" if user else ""
                cur.execute("SELECT principal FROM blocks WHERE blocked = 1 AND (blocked_until IS NULL"
                            f" OR blocked_until > UTC_TIMESTAMP(3)){only}", (user,) if user else ())
                blocked = {str(p) for (p,) in cur.fetchall()}
                sizes: dict[str, int] = {}
                if not user:  # a team's size: the whole table's grouping only when teams are shown
                    cur.execute("SELECT team, COUNT(*) FROM principals WHERE team IS NOT NULL"
                                + (" AND team = %s" if team else "") + " GROUP BY team", (team,) if team else ())
                    sizes = {str(t): int(n) for t, n in cur.fetchall()}
            conn.commit()
        finally:
            conn.close()
        person_rows = [self._person(p, p.principal in blocked) for p in people]
        blocked_by_team: dict[str, int] = {}
        for row in person_rows:
            if row.blocked:
                blocked_by_team[row.team] = blocked_by_team.get(row.team, 0) + 1
        team_rows = [self._team(t, sizes.get(t.team, 0), blocked_by_team.get(t.team, 0)) for t in teams]
        return Snapshot(day, person_rows, team_rows, datetime.now(UTC))

    @staticmethod
    def _person(p: PersonUsage, blocked: bool) -> PersonRow:
        percent, quota = _strictest(p)
        return PersonRow(
            principal=p.principal, display_name=p.display_name, team=p.team, team_status=p.team_status.value,
            requests=p.requests, failed=p.failed, monthly_requests=p.monthly_requests,
            cost_usd=usd(p.cost), monthly_cost_usd=usd(p.monthly_cost), daily_limit=p.daily_limit,
            monthly_limit=p.monthly_limit, daily_cost_limit_usd=dollars(p.daily_cost_limit),
            monthly_cost_limit_usd=dollars(p.monthly_cost_limit), percent_of_strictest=percent,
            strictest_quota=quota, state=p.state.value, blocked=blocked,
            active_today=bool(p.requests or p.failed or p.cost),
            active_month=bool(p.requests or p.failed or p.cost or p.monthly_requests or p.monthly_cost))

    @staticmethod
    def _team(t: TeamUsage, size: int, blocked: int) -> TeamRow:
        percent, quota = _strictest(t)
        return TeamRow(
            team=t.team, requests=t.requests, failed=t.failed, monthly_requests=t.monthly_requests,
            cost_usd=usd(t.cost), monthly_cost_usd=usd(t.monthly_cost), daily_limit=t.daily_limit,
            monthly_limit=t.monthly_limit, daily_cost_limit_usd=dollars(t.daily_cost_limit),
            monthly_cost_limit_usd=dollars(t.monthly_cost_limit), percent_of_strictest=percent,
            strictest_quota=quota, state=t.state.value, people_today=len(t.members), people=size,
            blocked_people=blocked)


# -- the worker process that reads everyone's usage ------------------------------------------------------

_WORKER: dict[str, UsageSnapshots] = {}


def _start_worker(settings: SharedSettings) -> None:
    _WORKER["reader"] = UsageSnapshots(lambda: db.connect(settings.mysql), redis_client(settings), settings)


def _read_everyone(day: date) -> Snapshot:
    return _WORKER["reader"]._read(day)


def in_scope(rows: Iterable[PersonRow], scope: frozenset[str] | None) -> list[PersonRow]:
    return list(rows) if scope is None else [r for r in rows if r.team in scope]


def teams_in_scope(rows: Iterable[TeamRow], scope: frozenset[str] | None) -> list[TeamRow]:
    return list(rows) if scope is None else [r for r in rows if r.team in scope]


# -- the people table: search, filter, sort, page ---------------------------------------------------

SORTS: dict[str, Callable[[PersonRow], Any]] = {
    "principal": lambda r: r.principal.lower(),
    "name": lambda r: (r.display_name or r.principal).lower(),
    "team": lambda r: (r.team.lower(), r.principal.lower()),
    "requests": lambda r: r.requests,
    "monthly_requests": lambda r: r.monthly_requests,
    "cost": lambda r: r.cost_usd,
    "monthly_cost": lambda r: r.monthly_cost_usd,
    "percent": lambda r: r.percent_of_strictest,
    "state": lambda r: (r.blocked, ("ok", "warning", "exceeded").index(r.state), r.percent_of_strictest),
}
STATES = ("ok", "warning", "exceeded", "blocked")
ACTIVITY = ("month", "today", "all")


@dataclass(frozen=True)
class PeopleQuery:
    q: str = ""
    team: str = ""
    state: str = ""
    active: str = "month"  # people counted this month (what `bedrockctl usage` lists), today, or everyone
    sort: str = "monthly_cost"
    order: str = "desc"
    page: int = 1
    page_size: int = 50

    def checked(self) -> PeopleQuery:
        problems = []
        if self.sort not in SORTS:
            problems.append(f"sort must be one of {', '.join(SORTS)}")
        if self.order not in ("asc", "desc"):
            problems.append("order must be asc or desc")
        if self.state and self.state not in STATES:
            problems.append(f"state must be one of {', '.join(STATES)}")
        if self.active not in ACTIVITY:
            problems.append(f"active must be one of {', '.join(ACTIVITY)}")
        if not 1 <= self.page_size <= 1000 or self.page < 1:
            problems.append("page must be >= 1 and page_size between 1 and 1000")
        if problems:
            raise BadInput("; ".join(problems))
        return self


def select_people(rows: Sequence[PersonRow], query: PeopleQuery) -> list[PersonRow]:
    """Every row matching the query, sorted (all pages): what the CSV export writes."""
    needle = query.q.strip().lower()

    def keep(r: PersonRow) -> bool:
        if (query.active == "month" and not r.active_month) or (query.active == "today" and not r.active_today):
            return False
        if query.team and r.team != query.team:
            return False
        if query.state == "blocked":
            if not r.blocked:
                return False
        elif query.state and r.state != query.state:
            return False
        return not needle or needle in r.principal.lower() or needle in (r.display_name or "").lower()

    # Ties broken by the key, so that pages never overlap or skip.
    chosen = sorted((r for r in rows if keep(r)), key=lambda r: r.principal)
    return sorted(chosen, key=SORTS[query.sort], reverse=query.order == "desc")


def page_of(rows: Sequence[PersonRow], query: PeopleQuery) -> list[PersonRow]:
    start = (query.page - 1) * query.page_size
    return list(rows[start:start + query.page_size])
