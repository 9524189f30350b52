"""`make bench`: `bedrockctl usage --by-tool` (bedrock_usage/tools.py) on a day of a large organisation — 1,000,000
calls of 1,000 people in 20 teams, 70 % made with Bedrock API keys, each person holding two keys for two tools,
and for one person in ten a key made in the middle of the day (so the join to the keys' stretches runs too).

Each figure is the median of three runs of `tool_usage` — everyone, one team, one person — beside the seed-style
baseline measured in the same run on the same data: a lookup of the live keys for every call (a correlated
subquery), the obvious SQL. Both must split the calls the same way (person, team, tool, basis). Its own
database, rebuilt each run (~1 min):

    BENCH_TOOLS_MYSQL_URL=mysql://root@127.0.0.1:3306/bu_bench_tools python -m tests.performance.bench_tools
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from typing import Any

from pymysql.connections import Connection

from bedrock_usage import db
from bedrock_usage.tools import Basis, tool_of, tool_usage
from devtools.settings import AllSettings
from tests.conftest import fresh_schema, test_env
from tests.performance.console_data import NUMBERS
from tests.performance.results import report

DAY = date(2026, 11, 17)
PEOPLE, TEAMS, CALLS = 1000, 20, 1_000_000
AGENTS = ("Boto3/1.40.61 md/Botocore#1.40.61 ua/2.1", "aws-sdk-js/3.901.0 ua/2.1 app/cline", "litellm/1.77.7",
          "aws-sdk-js/3.901.0 ua/2.1 app/claude-code", "curl/8.5.0")

# The seed-style way: each call's live keys looked up as it is read, then summed.
_PER_CALL = """
SELECT quota_key, team, bearer, key_tools, user_agent_ref, COUNT(*), SUM(ok) FROM (
  SELECT p.quota_key, c.team, COALESCE(c.bearer_token, 0) AS bearer, c.user_agent_ref, c.error_code IS NULL AS ok,
         IF(c.bearer_token = 1, (SELECT GROUP_CONCAT(DISTINCT k.tool ORDER BY k.tool) FROM bedrock_api_keys k
                                 WHERE k.quota_key = p.quota_key AND k.created_at <= c.event_time
                                   AND (k.revoked_at IS NULL OR k.revoked_at > c.event_time)
                                   AND (k.expires_at IS NULL OR k.expires_at > c.event_time)), NULL) AS key_tools
  FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id
  WHERE c.event_date >= %s AND c.event_date < %s{where}
) per_call GROUP BY quota_key, team, bearer, key_tools, user_agent_ref
"""


def _key(p: int) -> str:
    return f"arn:aws:iam::123456789012:user/bedrock-access/u{p}"


def _generate(conn: Connection) -> None:
    start = f"{(DAY - timedelta(days=1)).isoformat()} 23:00:00"  # the Madrid quota day in UTC
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO user_agents (id, sha256, user_agent) VALUES (%s, UNHEX(SHA2(%s, 256)), %s)",
                        [(i, a, a) for i, a in enumerate(AGENTS, start=1)])
        cur.executemany("INSERT INTO principals (id, quota_key, identity_type, display_name, team, team_source,"
                        " version) VALUES (%s, %s, 'iam_user', %s, %s, 'iam_tag', 1)",
                        [(p, _key(p), f"U{p}", f"team{p % TEAMS}") for p in range(1, PEOPLE + 1)])
        keys = []
        for p in range(1, PEOPLE + 1):
            keys.append((f"ACCA{p:06d}A", f"u{p}", _key(p), "claude-code", f"{DAY - timedelta(days=30)} 09:00:00"))
            made = f"{DAY} {p % 24:02d}:{p % 60:02d}:17" if p % 10 == 0 else f"{DAY - timedelta(days=3)} 10:00:00"
            keys.append((f"ACCA{p:06d}B", f"u{p}", _key(p), "cline", made))
        cur.executemany("INSERT INTO bedrock_api_keys (credential_id, user_name, quota_key, tool, created_at,"
                        " expires_at, created_by) VALUES (%s, %s, %s, %s, %s, NULL, 'bench')", keys)
        cur.execute(
            "INSERT INTO bedrock_calls (event_date, event_id, event_time, principal_id, team, account_id, operation,"
            " model_ref, region, user_agent_ref, error_code, bearer_token, cost_usd)"
            f" SELECT %s, CONCAT('e', n), TIMESTAMPADD(SECOND, (n * 7919) %% 86400, %s), (n %% {PEOPLE}) + 1,"
            f" CONCAT('team', ((n %% {PEOPLE}) + 1) %% {TEAMS}), '123456789012', 'Converse', 1, 'eu-west-1',"
            f" ((n DIV {PEOPLE}) %% {len(AGENTS)}) + 1, IF(n %% 50 = 0, 'ThrottlingException', NULL),"
            f" IF((n DIV 7) %% 10 < 7, 1, 0), ((n %% 997) + 1) / 1000000 FROM {NUMBERS} numbers WHERE n < %s",
            (DAY, start, CALLS))
        cur.execute("ANALYZE TABLE bedrock_calls, principals, bedrock_api_keys")  # as a table long in use has them
        cur.fetchall()
    conn.commit()


def _median_ms(work: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(3):
        started = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def _per_call(conn: Connection, where: str = "", *args: object) -> list[Any]:
    with conn.cursor() as cur:
        cur.execute(_PER_CALL.format(where=where), (DAY, DAY + timedelta(days=1), *args))
        found = list(cur.fetchall())
    conn.commit()
    return found


def _split(rows: list[Any]) -> dict[tuple[str, str, str, Basis], int]:
    """The per-call way's rows as the report splits them: the same rule, applied to each row's live keys."""
    found: dict[tuple[str, str, str, Basis], int] = {}
    for key, team, bearer, key_tools, agent_ref, calls, _ in rows:
        tools = str(key_tools).split(",") if key_tools else []
        slot = (str(key), str(team), *tool_of(bool(bearer), tools, AGENTS[int(agent_ref) - 1], None))
        found[slot] = found.get(slot, 0) + int(calls)
    return found


def main() -> None:
    url = os.environ.get("BENCH_TOOLS_MYSQL_URL", "mysql://root@127.0.0.1:3306/bu_bench_tools")
    settings = fresh_schema(AllSettings.from_env(test_env(MYSQL_URL=url)))
    conn = db.connect(settings.mysql)
    started = time.perf_counter()
    _generate(conn)
    print(f"bench_tools: {CALLS:,} calls of {PEOPLE:,} people generated in {time.perf_counter() - started:.0f} s",
          flush=True)
    end, results = DAY + timedelta(days=1), {}
    cases: list[tuple[str, dict[str, str], str, tuple[object, ...]]] = [
        ("everyone's day", {}, "", ()),
        ("one team's day", {"team": "team3"}, " AND c.team = %s", ("team3",)),
        ("one person's day", {"user": _key(10)}, " AND p.quota_key = %s", (_key(10),)),
    ]
    for name, scope, where, args in cases:
        ms, usage = _median_ms(partial(tool_usage, conn, DAY, end, "unassigned", **scope))
        baseline_ms, rows = _median_ms(partial(_per_call, conn, where, *args))
        calls = sum(u.requests + u.failed for u in usage)
        assert _split(rows) == {(u.principal, u.team, u.tool, u.basis): u.requests + u.failed for u in usage}, name
        print(f"bench_tools: {name:18} {ms:8.0f} ms for {calls:,} calls ({len(usage):,} rows); seed-style, a key"
              f" lookup per call: {baseline_ms:8.0f} ms", flush=True)
        results[name] = {"ms": round(ms, 1), "baseline_ms": round(baseline_ms, 1), "calls": calls}
    conn.close()
    report("tools", {"calls": CALLS, "people": PEOPLE, "cases": results})


if __name__ == "__main__":
    main()
