"""What importing a price table would change in MySQL's `prices`, price by price (read-only).

Compared with the prices in force on the table's effective date: for each (model, region, scope, tier)
the row with the latest `effective_from` on or before it. A price the table names is *added* (none in
force), *changed* (some part differs) or *unchanged*; prices in force that the table does not name are
*kept* (an import replaces only what it names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from pymysql.connections import Connection

from bedrock_usage.pricing.price_list_rows import PARTS, usd_text
from bedrock_usage.pricing.rates import PriceScope, PriceTable, Rates

Key = tuple[str, str, PriceScope, str]  # model, region, scope, tier


@dataclass(frozen=True, slots=True)
class Change:
    key: Key
    old: Rates | None  # None: added
    new: Rates


@dataclass
class PriceDiff:
    added: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    unchanged: int = 0
    kept: int = 0  # prices in force the table does not name

    def describe(self) -> list[str]:
        lines = [f"added {_name(c.key)}: {_rates(c.new)}" for c in self.added]
        for change in self.changed:
            assert change.old is not None
            parts = [f"{p} {usd_text(getattr(change.old, p))} -> {usd_text(getattr(change.new, p))}"
                     for p in PARTS if getattr(change.old, p) != getattr(change.new, p)]
            lines.append(f"changed {_name(change.key)}: {', '.join(parts)}")
        lines.append(f"{len(self.added)} added, {len(self.changed)} changed, {self.unchanged} unchanged;"
                     f" {self.kept} prices in force not in this table (kept)")
        return lines


def prices_in_force(conn: Connection, on: date) -> dict[Key, Rates]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT p.model, p.region, p.scope, p.tier, p.input, p.output, p.cache_read, p.cache_write_5m,"
            " p.cache_write_1h FROM prices p JOIN (SELECT model, region, scope, tier, MAX(effective_from) AS since"
            " FROM prices WHERE effective_from <= %s GROUP BY model, region, scope, tier) c"
            " ON c.model = p.model AND c.region = p.region AND c.scope = p.scope AND c.tier = p.tier"
            " AND c.since = p.effective_from", (on,))
        rows = cur.fetchall()
    conn.rollback()
    return {(model, region, PriceScope(scope), tier): Rates(*(Decimal(v) for v in values))
            for model, region, scope, tier, *values in rows}


def plan(conn: Connection, table: PriceTable) -> PriceDiff:
    current = prices_in_force(conn, table.effective_from)
    diff = PriceDiff()
    named = set()
    for entry in table.entries:
        key = (entry.model, entry.region, entry.scope, entry.tier)
        named.add(key)
        old = current.get(key)
        if old is None:
            diff.added.append(Change(key, None, entry.rates))
        elif old != entry.rates:  # Decimal equality is by value: 3.300000 == 3.3
            diff.changed.append(Change(key, old, entry.rates))
        else:
            diff.unchanged += 1
    diff.kept = len(set(current) - named)
    return diff


def _name(key: Key) -> str:
    model, region, scope, tier = key
    return f"{model} {region} {scope} {tier}"


def _rates(rates: Rates) -> str:
    return ", ".join(f"{p} {usd_text(getattr(rates, p))}" for p in PARTS)
