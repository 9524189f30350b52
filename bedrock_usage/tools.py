"""Usage split by tool: which tool made each call, decided when a report is read, from what the call carries.

CloudTrail names the caller, never the tool, and for a Bedrock API key's call it names the key's IAM user,
never the key. What a call does carry, in order of trust:

1. `bearer_token` (additionalEventData.callWithBearerToken): made with one of the user's API keys. When the
   keys of that user live at the call's time (`bedrock_api_keys`: created, not yet revoked or expired) were
   all made for one tool (`bedrockctl user create-key --tool`), the call is that tool's: basis `api-key`.
   With keys for several tools live at once, the call's `app/` ID (below) picks among them, else 2-4 do.
2. The AWS SDKs' application ID: a tool that sets `AWS_SDK_UA_APP_ID` (or `sdk_ua_app_id` in its profile)
   has `app/<id>` in every call's user agent: basis `app-id`.
3. The caller's `Tool` tag (`bedrockctl user create --tool`, as the seed system tagged a user per tool):
   basis `user-tag`.
4. The user agent's first product name (`Boto3`, `aws-sdk-js`, `litellm`…): basis `user-agent`, else
   `(unknown)`.

Decided at read time, not by the consumer: a key recorded after its first calls, or revoked, changes the
report of past calls without rewriting rows, and the consumer's path stays as it was.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from pymysql.connections import Connection

from bedrock_usage.teams import team_or_default, team_or_default_sql

UNKNOWN = "(unknown)"
_APP_ID = re.compile(r"(?:^|\s)app/([^\s]+)")
_PRODUCT = re.compile(r"^\s*([A-Za-z][\w.+-]*)/")
_MAX_NAME = 128


class Basis(StrEnum):
    """How the tool of a call was known."""

    API_KEY = "api-key"
    APP_ID = "app-id"
    USER_TAG = "user-tag"
    USER_AGENT = "user-agent"
    UNKNOWN = "unknown"


def tool_of(bearer_token: bool, key_tools: Sequence[str], user_agent: str | None,
            tool_tag: str | None = None) -> tuple[str, Basis]:
    """The tool of one call: `key_tools` are the tools of the caller's API keys live at the call, `tool_tag`
    the caller's Tool tag."""
    app = _APP_ID.search(user_agent or "")
    app_id = app.group(1)[:_MAX_NAME] if app else None
    if bearer_token and key_tools:
        if len(set(key_tools)) == 1:
            return key_tools[0], Basis.API_KEY
        if app_id is not None and app_id in key_tools:
            return app_id, Basis.API_KEY
    if app_id:
        return app_id, Basis.APP_ID
    if tool_tag:
        return tool_tag[:_MAX_NAME], Basis.USER_TAG
    product = _PRODUCT.match(user_agent or "")
    if product:
        return product.group(1)[:_MAX_NAME], Basis.USER_AGENT
    return UNKNOWN, Basis.UNKNOWN


@dataclass(frozen=True, slots=True)
class ToolUsage:
    """One person's calls with one tool over the report's days."""

    principal: str
    display_name: str | None
    team: str
    tool: str
    basis: Basis
    requests: int  # succeeded
    failed: int
    api_key_requests: int  # of all the calls (succeeded or not), those made with an API key
    cost_usd: Decimal  # the calls' logged cost (a call whose log has not come yet adds nothing)


@dataclass(slots=True)
class _Sums:
    requests: int = 0
    failed: int = 0
    api_key: int = 0
    cost: Decimal = Decimal(0)

    def add(self, requests: int, failed: int, api_key: int, cost: Decimal) -> None:
        self.requests += requests
        self.failed += failed
        self.api_key += api_key
        self.cost += cost


# The calls summed per person, team, API key or not, user agent and UTC hour, with the person's name and Tool
# tag and the agent's text joined after the grouping (grouping on the TEXT column would compare only its
# first max_sort_length bytes). A plain GROUP BY: ~1 s for a million calls where a key lookup per call took
# ~14 s (measured side by side, MariaDB 10.11). Which keys were live is decided per hour in Python below.
_GROUPED = """
SELECT g.principal_id, p.quota_key, p.display_name, JSON_UNQUOTE(JSON_EXTRACT(p.tags, '$.Tool')), g.team,
       g.bearer, g.utc_day, g.utc_hour, ua.user_agent, g.ok, g.failed, g.cost
FROM (
  SELECT c.principal_id, c.team, COALESCE(c.bearer_token, 0) AS bearer, DATE(c.event_time) AS utc_day,
         HOUR(c.event_time) AS utc_hour, c.user_agent_ref, SUM(c.error_code IS NULL) AS ok,
         SUM(c.error_code IS NOT NULL) AS failed, COALESCE(SUM(c.cost_usd), 0) AS cost
  FROM bedrock_calls c
  WHERE c.event_date >= %s AND c.event_date < %s{where}
  GROUP BY c.principal_id, c.team, bearer, utc_day, utc_hour, c.user_agent_ref
) g
JOIN principals p ON p.id = g.principal_id
LEFT JOIN user_agents ua ON ua.id = g.user_agent_ref
"""
# One person's API-key calls of one hour in which one of their keys was made, revoked or expired: call by call.
_ONE_HOUR = """
SELECT c.event_time, c.team, ua.user_agent, c.error_code IS NULL, COALESCE(c.cost_usd, 0)
FROM bedrock_calls c LEFT JOIN user_agents ua ON ua.id = c.user_agent_ref
WHERE c.event_date >= %s AND c.event_date < %s AND c.principal_id = %s AND c.bearer_token = 1
  AND c.event_time >= %s AND c.event_time < %s{where}
"""
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class _Key:
    tool: str
    starts: datetime  # naive UTC, as the table holds it
    ends: datetime | None  # revoked or expired, whichever came first

    def live(self, at: datetime) -> bool:
        return self.starts <= at and (self.ends is None or at < self.ends)

    def changes_within(self, start: datetime, end: datetime) -> bool:
        return start < self.starts < end or (self.ends is not None and start < self.ends < end)


def _keys(conn: Connection, user: str | None) -> dict[str, list[_Key]]:
    """Every recorded key by its user's quota key (a small table: a few keys a person)."""
    with conn.cursor() as cur:
        cur.execute("SELECT quota_key, tool, created_at, revoked_at, expires_at FROM bedrock_api_keys"
                    + (" WHERE quota_key = %s" if user else ""), [user] if user else [])
        found: dict[str, list[_Key]] = {}
        for key, tool, created, revoked, expires in cur.fetchall():
            ends = min((t for t in (revoked, expires) if t is not None), default=None)
            found.setdefault(str(key), []).append(_Key(str(tool), created, ends))
    return found


class _Totals:
    """The report's sums by (person, team, tool, basis)."""

    def __init__(self, default_team: str) -> None:
        self._default_team = default_team
        self._sums: dict[tuple[str, str, str, Basis], _Sums] = {}
        self.names: dict[str, str | None] = {}

    def add(self, key: str, team: object, tool: tuple[str, Basis], *, bearer: bool, ok: int, failed: int,
            cost: Decimal) -> None:
        sums = self._sums.setdefault((key, team_or_default(team, self._default_team), *tool), _Sums())
        sums.add(ok, failed, (ok + failed) if bearer else 0, cost)

    def usage(self) -> list[ToolUsage]:
        found = [ToolUsage(key, self.names[key], team, tool, basis, s.requests, s.failed, s.api_key, s.cost)
                 for (key, team, tool, basis), s in self._sums.items()]
        return sorted(found, key=lambda u: (u.principal, -(u.requests + u.failed), u.tool))


def tool_usage(conn: Connection, first: date, end: date, default_team: str, *, user: str | None = None,
               team: str | None = None) -> list[ToolUsage]:
    """Everyone's (or one person's, or one team's) calls of the days [first, end) by tool: by person, each
    person's most used tool first. A person's team is the one each call was charged to."""
    where, params = "", list[object]()
    if user:
        where += " AND c.principal_id IN (SELECT id FROM principals WHERE quota_key = %s)"
        params.append(user)
    if team:
        where += f" AND {team_or_default_sql('c.team')} = %s"
        params += [default_team, team]
    keys = _keys(conn, user)
    totals = _Totals(default_team)
    split: dict[tuple[int, datetime], tuple[str, str | None]] = {}  # (person, hour) to redo call by call
    with conn.cursor() as cur:
        cur.execute(_GROUPED.format(where=where), [first, end, *params])
        for pid, quota_key, name, tool_tag, row_team, bearer, day, hour, agent, ok, failed, cost in cur.fetchall():
            key, tag = str(quota_key), str(tool_tag) if tool_tag else None
            totals.names[key] = name
            held = keys.get(key, []) if bearer else []
            start = datetime.combine(day, time(hour))
            if any(k.changes_within(start, start + _HOUR) for k in held):
                split[(int(pid), start)] = (key, tag)
                continue
            totals.add(key, row_team, tool_of(bool(bearer), [k.tool for k in held if k.live(start)], agent, tag),
                       bearer=bool(bearer), ok=int(ok), failed=int(failed), cost=Decimal(cost))
        for (pid, start), (key, tag) in split.items():
            cur.execute(_ONE_HOUR.format(where=where), [first, end, pid, start, start + _HOUR, *params])
            for at, row_team, agent, ok, cost in cur.fetchall():
                totals.add(key, row_team, tool_of(True, [k.tool for k in keys[key] if k.live(at)], agent, tag),
                           bearer=True, ok=int(ok), failed=1 - int(ok), cost=Decimal(cost))
    conn.commit()
    return totals.usage()
