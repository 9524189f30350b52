"""bedrock_usage.tools.tool_usage against the rule applied call by call: random people, keys made, revoked and
expiring at random instants (many within the report's day), calls of both kinds with random
agents; the report (grouped in MySQL, the API-key calls of people whose keys changed joined to the stretches of
their keys) must equal the per-call sum exactly. Real MariaDB."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal

import pymysql
import pytest

from bedrock_usage.tools import Basis, tool_of, tool_usage

DAY = date(2026, 11, 17)
START = datetime(2026, 11, 16, 23, 0)  # the quota day (Europe/Madrid) from 23:00 UTC the day before
AGENTS = ["Boto3/1.40.61 md/Botocore#1.40.61", "aws-sdk-js/3.901.0 ua/2.1 app/cline", "litellm/1.77.7",
          "aws-sdk-js/3.901.0 ua/2.1 app/claude-code", None]
TOOLS = ["claude-code", "cline", "cursor"]
PEOPLE = 12


def _fill(conn: pymysql.connections.Connection, rng: random.Random) -> list[tuple[str, str, bool, str | None,
                                                                                    datetime, bool, Decimal]]:
    """The people, agents, keys and calls; returns each call as (person, team, bearer, agent, time, ok, cost)."""
    calls = []
    with conn.cursor() as cur:
        for i, agent in enumerate(AGENTS[:-1], start=1):
            cur.execute("INSERT INTO user_agents (id, sha256, user_agent) VALUES (%s, UNHEX(SHA2(%s, 256)), %s)",
                        (i, agent, agent))
        for p in range(1, PEOPLE + 1):
            key = f"arn:aws:iam::123456789012:user/bedrock-access/u{p}"
            tags = {"Person": f"U{p}", "Team": "data"} | ({"Tool": "jupyter"} if p % 4 == 0 else {})
            cur.execute("INSERT INTO principals (id, quota_key, identity_type, display_name, team, team_source, tags,"
                        " version) VALUES (%s, %s, 'iam_user', %s, 'data', 'iam_tag', %s, 1)",
                        (p, key, f"U{p}", json.dumps(tags)))
            for k in range(rng.randrange(0, 4)):
                made = START + timedelta(minutes=rng.randrange(-600, 1400))
                revoked = made + timedelta(minutes=rng.randrange(1, 900)) if rng.random() < 0.4 else None
                expires = made + timedelta(minutes=rng.randrange(1, 2000)) if rng.random() < 0.3 else None
                cur.execute("INSERT INTO bedrock_api_keys (credential_id, user_name, quota_key, tool, created_at,"
                            " expires_at, created_by, revoked_at, revoked_how) VALUES (%s, %s, %s, %s, %s, %s, 'ops',"
                            " %s, %s)", (f"ACCA{p:04d}{k:012d}", f"u{p}", key, rng.choice(TOOLS), made, expires,
                                         revoked, "deleted" if revoked else None))
            for n in range(rng.randrange(20, 120)):
                at = START + timedelta(seconds=rng.randrange(0, 24 * 3600))
                # 1: an API key's; 0: SigV4; NULL: recorded before migration 028 (counted as SigV4).
                marked = rng.choice([1] * 7 + [0] * 2 + [None])
                bearer, agent_ref = marked == 1, rng.randrange(1, len(AGENTS) + 1)
                agent = AGENTS[agent_ref - 1]
                ok, cost = rng.random() < 0.9, Decimal(rng.randrange(0, 5000)).scaleb(-6)
                team = rng.choice(["data"] * 7 + ["web"] * 2 + [""])  # moved during the day; '' not known yet
                cur.execute("INSERT INTO bedrock_calls (event_date, event_id, event_time, principal_id, team,"
                            " account_id, operation, model_ref, region, user_agent_ref, error_code, bearer_token,"
                            " cost_usd) VALUES (%s, %s, %s, %s, %s, '123456789012', 'Converse', 1, 'eu-west-1', %s,"
                            " %s, %s, %s)", (DAY, f"e{p}-{n}", at, p, team, agent_ref if agent else None,
                                             None if ok else "ThrottlingException", marked, cost))
                calls.append((key, team, bearer, agent, at, ok, cost))
    conn.commit()
    return calls


@pytest.mark.parametrize("seed", [15, 16, 17, 18])
def test_the_report_equals_the_rule_applied_call_by_call(mysql: pymysql.connections.Connection, seed: int) -> None:
    rng = random.Random(seed)
    calls = _fill(mysql, rng)
    with mysql.cursor() as cur:
        cur.execute("SELECT quota_key, tool, created_at, revoked_at, expires_at FROM bedrock_api_keys")
        keys = cur.fetchall()
        cur.execute("SELECT quota_key, JSON_UNQUOTE(JSON_EXTRACT(tags, '$.Tool')) FROM principals")
        tags = dict(cur.fetchall())
    mysql.commit()

    expected: Counter[tuple[str, str, str, Basis, str]] = Counter()
    cost: dict[tuple[str, str, str, Basis], Decimal] = {}
    for key, team, bearer, agent, at, ok, price in calls:
        live = [tool for k, tool, made, revoked, expires in keys if k == key and made <= at
                and (revoked is None or at < revoked) and (expires is None or at < expires)] if bearer else []
        slot = (key, team or "unassigned", *tool_of(bearer, live, agent, tags[key]))
        expected[(*slot, "requests" if ok else "failed")] += 1
        expected[(*slot, "api_key")] += int(bearer)
        cost[slot] = cost.get(slot, Decimal(0)) + price

    report = tool_usage(mysql, DAY, DAY + timedelta(days=1), "unassigned")
    got: Counter[tuple[str, str, str, Basis, str]] = Counter()
    for u in report:
        slot = (u.principal, u.team, u.tool, u.basis)
        got.update({(*slot, "requests"): u.requests, (*slot, "failed"): u.failed,
                    (*slot, "api_key"): u.api_key_requests})
        assert u.cost_usd == cost[slot], slot
    assert +got == +expected
    assert {b for *_, b, _ in expected} >= {Basis.API_KEY, Basis.APP_ID, Basis.USER_TAG, Basis.USER_AGENT,
                                            Basis.UNKNOWN}
    assert len(report) == len({(u.principal, u.team, u.tool, u.basis) for u in report})
    # One team's share is the same rule on that team's calls alone; DEFAULT_TEAM's holds the calls of no team.
    for team in ("web", "unassigned"):
        share = tool_usage(mysql, DAY, DAY + timedelta(days=1), "unassigned", team=team)
        assert share and {(u.principal, u.tool, u.basis): u.requests for u in share} == {
            (u.principal, u.tool, u.basis): u.requests for u in report if u.team == team}
