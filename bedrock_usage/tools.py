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
from typing import Any

from pymysql.connections import Connection
from pymysql.cursors import Cursor

from bedrock_usage.teams import team_or_default, team_or_default_sql

UNKNOWN = "(unknown)"
_APP_ID = re.compile(r"(?:^|\s)app/([^\s]+)")
_PRODUCT = re.compile(r"^\s*([A-Za-z][\w.+-]*)/")
_MAX_NAME = 128
_LETTERS = re.compile(r"[^A-Za-z0-9]+")


class Basis(StrEnum):
    """How the tool of a call was known."""

    API_KEY = "api-key"
    APP_ID = "app-id"
    USER_TAG = "user-tag"
    USER_AGENT = "user-agent"
    UNKNOWN = "unknown"


def same_name(tool: str, app_id: str) -> bool:
    """Whether an `app/` ID names a tool: the SDKs replace characters a user agent cannot hold (spaces, `/`,
    `:`…), so "Claude Code" arrives as `app/Claude-Code` or `app/Claude_Code`; letters and digits decide."""
    return _LETTERS.sub("", tool).lower() == _LETTERS.sub("", app_id).lower()


def app_id_for(tool: str) -> str:
    """What to set AWS_SDK_UA_APP_ID to for a tool's calls to name it (kept within the SDKs' 50 characters)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tool).strip("-")[:50]


def tool_of(bearer_token: bool, key_tools: Sequence[str], user_agent: str | None,
            tool_tag: str | None = None) -> tuple[str, Basis]:
    """The tool of one call: `key_tools` are the tools of the caller's API keys live at the call, `tool_tag`
    the caller's Tool tag."""
    app = _APP_ID.search(user_agent or "")
    app_id = app.group(1)[:_MAX_NAME] if app else None
    if bearer_token and key_tools:
        if len(set(key_tools)) == 1:
            return key_tools[0], Basis.API_KEY
        named = [t for t in key_tools if app_id is not None and same_name(t, app_id)]
        if len(set(named)) == 1:
            return named[0], Basis.API_KEY
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


# The calls summed per person, team, API key or not and user agent; {segment}: NULL, or the stretch of the
# person's keys each call fell in (below). Names, tags and agents are read after, by ID: a join here let
# MariaDB choose to group person by person through ix_calls_principal_day (a "lateral derived" plan), 15x
# slower on a million calls. The agents' TEXT is never grouped on (only its first max_sort_length bytes count).
_GROUPED = """
SELECT c.principal_id, c.team, COALESCE(c.bearer_token, 0) AS bearer, {segment} AS segment, c.user_agent_ref,
       SUM(c.error_code IS NULL), SUM(c.error_code IS NOT NULL), COALESCE(SUM(c.cost_usd), 0)
FROM bedrock_calls c{join}
WHERE c.event_date >= %s AND c.event_date < %s{where}
GROUP BY c.principal_id, c.team, bearer, segment, c.user_agent_ref
"""
# Calls can stray a day either side of their quota days in UTC; the segments reach this far to be sure.
_MARGIN = timedelta(days=2)
_EVER, _NEVER = datetime(1970, 1, 1), datetime(9999, 1, 1)


@dataclass(frozen=True, slots=True)
class _Key:
    tool: str
    starts: datetime  # naive UTC, as the table holds it
    ends: datetime | None  # revoked or expired, whichever came first

    def live(self, at: datetime) -> bool:
        return self.starts <= at and (self.ends is None or at < self.ends)


@dataclass(frozen=True, slots=True)
class _Segment:
    """A stretch of time over which the same keys of a person were live."""

    starts: datetime
    ends: datetime
    tools: tuple[str, ...]


def _segments(keys: Sequence[_Key], first: datetime, end: datetime) -> list[_Segment]:
    """The person's keys over [first, end) as stretches of one set of live tools (the outer two reaching
    back and on forever): one segment when no key was made, revoked or expired within it."""
    cuts = sorted({t for k in keys for t in (k.starts, k.ends) if t is not None and first < t < end})
    found: list[_Segment] = []
    for starts, ends in zip([_EVER, *cuts], [*cuts, _NEVER], strict=True):
        tools = tuple(sorted({k.tool for k in keys if k.live(starts if starts != _EVER else first)}))
        if found and found[-1].tools == tools:
            found[-1] = _Segment(found[-1].starts, ends, tools)
        else:
            found.append(_Segment(starts, ends, tools))
    return found


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
    person's most used tool first. A person's team is the one each call was charged to.

    Two grouped reads, no lookup per call: the calls of people whose keys did not change over the days (most
    of them) summed per person, team, agent; and the API-key calls of the others joined to the stretches of
    their keys (a small derived table, one row a stretch) and summed per stretch too. A million calls: see
    `make bench` (tests/performance/bench_tools.py)."""
    where, params = "", list[object]()
    if user:
        where += " AND c.principal_id IN (SELECT id FROM principals WHERE quota_key = %s)"
        params.append(user)
    if team == default_team:  # its calls are those charged to it and to no team yet ('')
        where += f" AND {team_or_default_sql('c.team')} = %s"
        params += [default_team, team]
    elif team:  # as is, so that ix_calls_team_day serves
        where += " AND c.team = %s"
        params.append(team)
    window = (datetime.combine(first, time()) - _MARGIN, datetime.combine(end, time()) + _MARGIN)
    stretches = {key: _segments(held, *window) for key, held in _keys(conn, user).items()}
    constant = {key: list(s[0].tools) for key, s in stretches.items() if len(s) == 1}
    changing = {key: s for key, s in stretches.items() if len(s) > 1}
    with conn.cursor() as cur:
        ids: dict[str, int] = {}
        if changing:
            cur.execute(f"SELECT quota_key, id FROM principals WHERE quota_key IN ({','.join(['%s'] * len(changing))})",
                        list(changing))
            ids = {str(k): int(i) for k, i in cur.fetchall()}
        listed = ",".join(map(str, ids.values()))  # ints from MySQL: safe in the text
        # COALESCE: a NULL (a call recorded before migration 028, counted as SigV4) must not make the NOT NULL.
        skip = f" AND NOT (COALESCE(c.bearer_token, 0) = 1 AND c.principal_id IN ({listed}))" if ids else ""
        cur.execute(_GROUPED.format(segment="NULL", join="", where=where + skip), [first, end, *params])
        grouped = list(cur.fetchall())
        numbered = [(ids[key], segment) for key in ids for segment in changing[key]]
        if numbered:
            rows = " UNION ALL ".join(["SELECT %s AS pid, %s AS segment, CAST(%s AS DATETIME(3)) AS starts,"
                                       " CAST(%s AS DATETIME(3)) AS ends"] * len(numbered))
            # The calls first (a range of days), each joined to its person's few stretches: led by the stretches
            # instead, both servers read each person's calls through ix_calls_principal_day, twice as slow.
            join = (f" STRAIGHT_JOIN ({rows}) s ON s.pid = c.principal_id AND c.event_time >= s.starts"
                    " AND c.event_time < s.ends")
            args = [v for n, (pid, seg) in enumerate(numbered) for v in (pid, n, seg.starts, seg.ends)]
            cur.execute(_GROUPED.format(segment="s.segment", join=join,
                                        where=f"{where} AND c.bearer_token = 1 AND c.principal_id IN ({listed})"),
                        [*args, first, end, *params])
            grouped += cur.fetchall()
        people = _by_id(cur, "SELECT id, quota_key, display_name, JSON_UNQUOTE(JSON_EXTRACT(tags, '$.Tool'))"
                                 " FROM principals WHERE id IN ({})", {int(r[0]) for r in grouped})
        agents = _by_id(cur, "SELECT id, user_agent FROM user_agents WHERE id IN ({})",
                        {int(r[4]) for r in grouped if r[4] is not None})
    conn.commit()
    totals = _Totals(default_team)
    for pid, row_team, bearer, segment, agent_ref, ok, failed, cost in grouped:
        key, name, tag = people[int(pid)]
        totals.names[str(key)] = name
        if not bearer:
            tools: list[str] = []
        elif segment is None:
            tools = constant.get(str(key), [])
        else:
            tools = list(numbered[int(segment)][1].tools)
        agent = agents[int(agent_ref)][0] if agent_ref is not None else None
        totals.add(str(key), row_team, tool_of(bool(bearer), tools, agent, str(tag) if tag else None),
                   bearer=bool(bearer), ok=int(ok), failed=int(failed), cost=Decimal(cost))
    return totals.usage()


def _by_id(cur: Cursor, sql: str, ids: set[int]) -> dict[int, tuple[Any, ...]]:
    """Rows by their first column, the ID, for the given IDs (in chunks: an IN list of thousands is fine,
    of a million is not)."""
    found: dict[int, tuple[Any, ...]] = {}
    ordered = sorted(ids)
    for i in range(0, len(ordered), 5000):
        cur.execute(sql.format(",".join(map(str, ordered[i:i + 5000]))))
        found.update({int(row[0]): tuple(row[1:]) for row in cur.fetchall()})
    return found
