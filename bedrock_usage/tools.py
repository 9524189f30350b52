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
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pymysql.connections import Connection

from bedrock_usage.teams import team_or_default, team_or_default_sql

UNKNOWN = "(unknown)"
_KEY_SEPARATOR = "\x1f"  # between the tools GROUP_CONCAT lists: a tool name cannot hold it
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


# Per call: its person, team, the tools of the person's keys live at its time (API-key calls only), its user
# agent; summed per distinct combination, then the agents' text joined (grouping on the TEXT column itself would
# compare only its first max_sort_length bytes). Derived tables keep the GROUP BY to plain columns (MySQL's
# ONLY_FULL_GROUP_BY and MariaDB agree on it); the lookup of keys uses ix_bedrock_api_keys_quota_key.
_SQL = """
SELECT per_tool.*, ua.user_agent
FROM (
  SELECT quota_key, display_name, tool_tag, team, bearer_token, key_tools, user_agent_ref,
         SUM(ok), SUM(1 - ok), SUM(bearer_token), COALESCE(SUM(cost_usd), 0)
  FROM (
    SELECT p.quota_key, p.display_name, JSON_UNQUOTE(JSON_EXTRACT(p.tags, '$.Tool')) AS tool_tag, c.team,
           COALESCE(c.bearer_token, 0) AS bearer_token,
           IF(c.bearer_token = 1,
              (SELECT GROUP_CONCAT(DISTINCT k.tool ORDER BY k.tool SEPARATOR '\x1f') FROM bedrock_api_keys k
               WHERE k.quota_key = p.quota_key AND k.created_at <= c.event_time
                 AND (k.revoked_at IS NULL OR k.revoked_at > c.event_time)
                 AND (k.expires_at IS NULL OR k.expires_at > c.event_time)),
              NULL) AS key_tools,
           c.user_agent_ref, c.error_code IS NULL AS ok, c.cost_usd
    FROM bedrock_calls c
    JOIN principals p ON p.id = c.principal_id
    WHERE c.event_date >= %s AND c.event_date < %s{where}
  ) per_call
  GROUP BY quota_key, display_name, tool_tag, team, bearer_token, key_tools, user_agent_ref
) per_tool
LEFT JOIN user_agents ua ON ua.id = per_tool.user_agent_ref
"""


def tool_usage(conn: Connection, first: date, end: date, default_team: str, *, user: str | None = None,
               team: str | None = None) -> list[ToolUsage]:
    """Everyone's (or one person's, or one team's) calls of the days [first, end) by tool: by person, each
    person's most used tool first. A person's team is the one each call was charged to."""
    where, params = "", list[object]([first, end])
    if user:
        where += " AND p.quota_key = %s"
        params.append(user)
    if team:
        where += f" AND {team_or_default_sql('c.team')} = %s"
        params += [default_team, team]
    with conn.cursor() as cur:
        cur.execute(_SQL.format(where=where), params)
        rows = cur.fetchall()
    conn.commit()
    totals: dict[tuple[str, str, str, Basis], _Sums] = {}
    names: dict[str, str | None] = {}
    for key, name, tag, row_team, bearer, key_tools, _, ok, failed, with_key, cost, agent in rows:
        tool, basis = tool_of(bool(bearer), str(key_tools).split(_KEY_SEPARATOR) if key_tools else [], agent,
                              str(tag) if tag else None)
        names[str(key)] = name
        sums = totals.setdefault((str(key), team_or_default(row_team, default_team), tool, basis), _Sums())
        sums.add(int(ok), int(failed), int(with_key), Decimal(cost))
    result = [ToolUsage(key, names[key], row_team, tool, basis, s.requests, s.failed, s.api_key, s.cost)
              for (key, row_team, tool, basis), s in totals.items()]
    result.sort(key=lambda u: (u.principal, -(u.requests + u.failed), u.tool))
    return result
