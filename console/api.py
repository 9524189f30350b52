"""The JSON API under /api/: what each page shows, the same objects (views.py), for scripts and other
tools; described by the OpenAPI document at /api/openapi.json. Read-only: blocking is done on the
person's page, with its confirmation, or with `bedrockctl block`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from bedrock_usage.quota_file import normalise_key
from console import history, trail
from console.deps import Read, Signed
from console.history import parse_day
from console.params import audit_query, range_of, zone_of
from console.usage_view import PeopleQuery, TeamRow
from console.views import BlocksPage, HealthPage, Overview, PeoplePage, PersonPage, TeamPage

router = APIRouter(prefix="/api", tags=["console"])
From = Annotated[str, Query(alias="from", description="first quota day, YYYY-MM-DD")]
To = Annotated[str, Query(alias="to", description="last quota day, YYYY-MM-DD (default: today)")]


@router.get("/overview")
def overview(viewer: Signed, read: Read) -> Overview:
    """Today and this month: totals, spend by team, the top ten spenders, the last hour's decisions."""
    return read.overview(viewer)


@router.get("/people")
def people(viewer: Signed, read: Read, q: str = "", team: str = "", state: str = "", active: str = "month",
           sort: str = "monthly_cost", order: str = "desc", page: int = 1, page_size: int = 50) -> PeoplePage:
    """People with today's and the month's usage: search (`q`), filter, sort and page as the People page."""
    return read.people(viewer, PeopleQuery(q, team, state, active, sort, order, page, page_size).checked())


@router.get("/person")
def person(viewer: Signed, read: Read, key: str, day: str = "") -> PersonPage:
    """One person: the hours of `day`, calls by model, recent calls, decisions, block state, audit, messages."""
    return read.person(viewer, normalise_key(key), parse_day(day, read.snapshots.today()))


@router.get("/teams")
def teams(viewer: Signed, read: Read) -> list[TeamRow]:
    return read.teams(viewer)


@router.get("/team")
def team(viewer: Signed, read: Read, name: str, day: str = "") -> TeamPage:
    return read.team(viewer, name, parse_day(day, read.snapshots.today()))


@router.get("/cost")
def cost(viewer: Signed, read: Read, first: From = "", last: To = "", team: str = "") -> history.CostAnalysis:
    """Spend by model, team and day over quota days [from, to] (default: this month)."""
    start, end = range_of(read, first, last, 0)
    return read.cost(viewer, start, end, team)


@router.get("/hourly")
def hourly(viewer: Signed, read: Read, first: From = "", last: To = "", team: str = "",
           tz: Annotated[str, Query(description="IANA time zone of the hours (default: QUOTA_TIMEZONE)")] = ""
           ) -> history.HeatMap:
    """Requests and cost by hour of day and day (default: the last 14 days)."""
    start, end = range_of(read, first, last, 14)
    return read.hourly(viewer, start, end, zone_of(tz, read), team)


@router.get("/blocks")
def blocks(viewer: Signed, read: Read, principal: str = "", actor: str = "", action: str = "", since: str = "",
           until: str = "") -> BlocksPage:
    """Who is blocked now, and the audit trail (filters: person, actor, action, quota days since/until)."""
    query = audit_query(read, principal=principal, actor=actor, action=action, since=since, until=until)
    return read.blocks(viewer, query)


@router.get("/decisions")
def decisions(viewer: Signed, read: Read, hours: Annotated[int, Query(ge=1, le=24 * 40)] = 1
              ) -> list[trail.DecisionRow]:
    """The decisions of the last `hours` hours, newest first."""
    return read.decisions(viewer, timedelta(hours=hours))


@router.get("/health")
def health(viewer: Signed, read: Read) -> HealthPage:
    """The services' own health and figures, dead letters, the outbox, refusals (admins only)."""
    return read.service_health(viewer)
