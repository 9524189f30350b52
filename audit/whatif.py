"""What-if audits: the replay's namespace given another price table (`--prices FILE`) or other limits
(`--quotas FILE`) before the replay runs, and what came of it.

Both are applied to the namespace only, through the code `bedrockctl prices import` and `limits apply` use:
the same checks, the same rows. A price file's prices stand over the whole period, whatever its
`effective:` date (the question is what the period costs under that table); models it does not name keep
the prices copied from the live table. A quota file is declarative, as `limits apply` makes it: people
and teams it does not list are back to the default limits of the replay's settings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from audit.audit_trail import DecisionRow, TeamMembers, read_decisions
from audit.output import Cell, Section
from audit.period import Period
from bedrock_usage import limits
from bedrock_usage.db import to_db
from bedrock_usage.keys import Keys
from bedrock_usage.pricing.price_file import load_price_file
from bedrock_usage.pricing.store import ImportReport, import_table
from bedrock_usage.quota_file import load_quota_file
from bedrock_usage.redis_state import RedisClient, RedisState


def apply_prices(replay_conn: Any, path: Path) -> ImportReport:
    """Put the price file's prices in the namespace's table in place of the prices of the same model,
    region, scope and tier, at every date. Raises PriceFileError (every problem of the file) before
    anything is written."""
    table = load_price_file(path, today=datetime.now(UTC).date())
    try:
        with replay_conn.cursor() as cur:
            # The earlier prices of what the file names go: `import_table` would keep them for the days
            # before its effective date, and the period is re-priced with the file's table throughout.
            cur.executemany("DELETE FROM prices WHERE model = %s AND region = %s AND scope = %s AND tier = %s",
                            [(e.model, e.region, e.scope.value, e.tier) for e in table.entries])
    except BaseException:
        replay_conn.rollback()
        raise
    return import_table(replay_conn, table, dry_run=False)  # commits the deletes with the new rows


def apply_quotas(replay_conn: Any, redis: RedisClient, keys: Keys, path: Path, default_team: str) -> limits.ApplyReport:
    """Make the namespace's limits the quota file's (MySQL, and its Redis cache under the namespace's
    `keys`). Raises QuotaFileError (every problem of the file) before anything is written."""
    quota = load_quota_file(path, default_team=default_team)
    return limits.apply(replay_conn, RedisState(redis, keys), quota)


_COST_SQL = (
    "SELECT 'user', p.quota_key, COUNT(*), SUM(l.cost_usd) FROM invocation_logs l"
    " JOIN principals p ON p.id = l.principal_id WHERE l.event_time >= %s AND l.event_time < %s GROUP BY p.quota_key"
    " UNION ALL SELECT 'team', l.team, COUNT(*), SUM(l.cost_usd) FROM invocation_logs l"
    " WHERE l.event_time >= %s AND l.event_time < %s GROUP BY l.team")


def _costs(conn: Any, period: Period) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """Metered logs and their cost (exact dollars) per person and per team over the period."""
    bounds = (to_db(period.start), to_db(period.end))
    with conn.cursor() as cur:
        cur.execute(_COST_SQL, bounds * 2)
        rows = cur.fetchall()
    conn.commit()
    return {(str(scope), str(subject)): (int(count), Decimal(total)) for scope, subject, count, total in rows}


def repricing_section(live_conn: Any, replay_conn: Any, period: Period) -> Section:
    """Each person's and team's cost as charged live and as re-priced, and the difference: a person
    charged more than the re-priced cost was over-charged by the difference, less under-charged. People
    first, then teams, each by the size of the difference, largest first."""
    live, repriced = _costs(live_conn, period), _costs(replay_conn, period)
    found = []
    for scope, subject in live.keys() | repriced.keys():
        logs, charged = live.get((scope, subject), (0, Decimal(0)))
        replay_logs, cost = repriced.get((scope, subject), (0, Decimal(0)))
        found.append((scope, subject, logs, replay_logs, charged, cost, charged - cost))
    found.sort(key=lambda r: (r[0] != "user", -abs(r[6]), r[1]))
    rows: list[Sequence[Cell]] = [
        [*r, "over-charged" if r[6] > 0 else "under-charged" if r[6] < 0 else "same"] for r in found]
    return Section("repricing", ("scope", "subject", "live_logs", "replay_logs", "live_cost_usd", "repriced_cost_usd",
                                 "overcharged_usd", "verdict"), rows)


def outcomes_section(replay_conn: Any, period: Period, *, title: str = "under_other_limits") -> Section:
    """Who would have been warned and who blocked under the limits the replay ran with: for each person
    (a team's decision: each person counted in the team), the quota, how far it went (the highest
    percentage crossed), when it was first warned and when the quota was used up."""
    members = TeamMembers(replay_conn)
    reached: dict[tuple[str, str, str, str, str], dict[str, Any]] = defaultdict(dict)
    for d in read_decisions(replay_conn, period.start, period.end):
        for principal, at in _covered(d, members):
            row = reached[principal, d.scope, d.subject, d.quota, d.period]
            row["limit"] = d.amounts[1]
            row["percent"] = max(row.get("percent", 0), d.percent)
            kind = "blocked_at" if d.kind == "exceeded" else "warned_at"
            row[kind] = min(row.get(kind, at), at)
    rows: list[Sequence[Cell]] = []
    for (principal, scope, subject, quota, period_id), row in sorted(reached.items()):
        warned, blocked = row.get("warned_at"), row.get("blocked_at")
        rows.append([principal, "blocked" if blocked else "warned", scope, subject, quota, period_id, row["limit"],
                     row["percent"], warned.isoformat() if warned else None, blocked.isoformat() if blocked else None])
    rows.sort(key=lambda r: (r[1] != "blocked", r[0], r[4], r[5]))
    return Section(title, ("principal", "outcome", "scope", "subject", "quota", "period", "limit", "percent",
                           "first_warned_at", "blocked_at"), rows)


def _covered(d: DecisionRow, members: TeamMembers) -> list[tuple[str, datetime]]:
    if d.scope == "user":
        return [(d.subject, d.event_time)]
    return [(key, max(d.event_time, first)) for key, first in members.of(d.subject, d.period).items()]
