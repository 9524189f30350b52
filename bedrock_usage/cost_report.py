"""What calls cost, read back from MySQL (issue 10, points 5 and 6): `bedrockctl cost`, the daily summary.

Spend is the sum of `invocation_logs.cost_usd` — one row per metered call, idempotent on its requestId,
exact DECIMAL dollars — over quota days (event_date, in QUOTA_TIMEZONE), so a report reconciles with the
cost quotas. Calls without a cost are the successful `bedrock_calls` rows no invocation log joined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pymysql.connections import Connection

from bedrock_usage.pricing.rates import PARTS, TOKEN_COLUMNS, Tokens


class By(StrEnum):
    PERSON = "person"
    TEAM = "team"
    MODEL = "model"
    DAY = "day"


# Per dimension: the grouping key columns (shown as they are) and the joins they need. The model is the
# base model priced (price_model_ref, the fallback for an unpriced one); the ids logged are listed beside it.
_GROUPS: dict[By, tuple[str, str, str]] = {
    # A person is their principal row; the teams their calls were charged to in the period beside them.
    By.PERSON: ("MIN(p.quota_key), COALESCE(MIN(p.display_name), ''),"
                " GROUP_CONCAT(DISTINCT l.team ORDER BY l.team SEPARATOR ' ')",
                " JOIN principals p ON p.id = l.principal_id", "l.principal_id"),
    By.TEAM: ("l.team", "", "l.team"),
    By.MODEL: ("COALESCE(MIN(m.model_id), '(none)'),"
               " GROUP_CONCAT(DISTINCT g.model_id ORDER BY g.model_id SEPARATOR ' ')",
               " LEFT JOIN models m ON m.id = l.price_model_ref JOIN models g ON g.id = l.model_ref",
               "l.price_model_ref"),
    By.DAY: ("l.event_date", "", "l.event_date"),
}
HEADERS: dict[By, tuple[str, ...]] = {
    By.PERSON: ("person", "name", "team"), By.TEAM: ("team",), By.MODEL: ("model", "model ids logged"),
    By.DAY: ("day",),
}


@dataclass(frozen=True)
class Line:
    key: tuple[str, ...]
    requests: int
    tokens: Tokens
    cost: Decimal  # dollars, exact

    def share(self, total: Decimal) -> Decimal:
        return self.cost / total if total else Decimal(0)


def spend(conn: Connection, start: date, end: date, by: By) -> list[Line]:
    """Metered calls, tokens and cost over the quota days [start, end], by `by`, dearest first."""
    columns, joins, group = _GROUPS[by]
    sums = ", ".join(f"COALESCE(SUM(l.{c}), 0)" for c in TOKEN_COLUMNS)
    order = "l.event_date" if by is By.DAY else "SUM(l.cost_usd) DESC, 1"
    with conn.cursor() as cur:
        cur.execute(f"SELECT {columns}, COUNT(*), {sums}, COALESCE(SUM(l.cost_usd), 0) FROM invocation_logs l{joins}"
                    f" WHERE l.event_date BETWEEN %s AND %s GROUP BY {group} ORDER BY {order}", (start, end))
        rows = cur.fetchall()
    conn.commit()
    width = len(HEADERS[by])
    return [Line(tuple("" if v is None else str(v) for v in r[:width]), int(r[width]),
                 Tokens(*(int(v) for v in r[width + 1:width + 6])), Decimal(r[width + 6])) for r in rows]


def total(lines: Sequence[Line]) -> Line:
    return Line(("total",), sum(x.requests for x in lines),
                Tokens(*(sum(getattr(x.tokens, part) for x in lines) for part in PARTS)),
                sum((x.cost for x in lines), Decimal(0)))


def unmetered_on(conn: Connection, day: date) -> dict[str, int]:
    """Successful calls of one quota day that no invocation log priced, by region, most first."""
    with conn.cursor() as cur:
        cur.execute("SELECT region, COUNT(*) FROM bedrock_calls WHERE event_date = %s AND error_code IS NULL"
                    " AND input_tokens IS NULL GROUP BY region ORDER BY COUNT(*) DESC, region", (day,))
        found = {str(region): int(n) for region, n in cur.fetchall()}
    conn.commit()
    return found
