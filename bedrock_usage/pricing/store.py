"""The `prices` and `unpriced_models` tables: importing a price table, and reading them for `prices show`
and `prices missing`.

An imported table replaces the prices it names from its effective date on: rows of the same (model,
region, scope, tier) effective on or after that date are replaced, older rows stay so that past calls
keep the price they were charged. Keys the table does not name are left alone. A price equal to the one
already in force on that date is left as it is (a second import of the same file writes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from bedrock_usage.db import from_db
from bedrock_usage.pricing.book import ROW_COLUMNS, PriceRow, read_rows
from bedrock_usage.pricing.rates import ANY_REGION, PARTS, PriceEntry, PriceScope, PriceTable, Rates


class Change(StrEnum):
    ADDED = "added"  # no price for this key before
    CHANGED = "changed"  # a different price was in force on the date, or later prices are replaced
    UNCHANGED = "unchanged"  # the same price is already in force: nothing written


@dataclass(frozen=True, slots=True)
class PriceChange:
    entry: PriceEntry
    change: Change
    before: Rates | None  # the price in force on the table's date before the import
    replaced: int  # rows of this key effective on or after the date, deleted

    def describe(self, effective: date) -> str:
        e = self.entry
        name = f"{e.model} {e.region} {e.scope} {e.tier}"
        if self.change == Change.ADDED:
            return f"+ {name}: {_rates_text(e.rates)} from {effective.isoformat()}"
        if self.change == Change.UNCHANGED:
            return f"= {name}: unchanged"
        if self.before is None:  # only later prices, which this one replaces: nothing in force on its date
            moved = [_rates_text(e.rates)]
        else:
            moved = [f"{part} {_num(getattr(self.before, part))} → {_num(getattr(e.rates, part))}"
                     for part in PARTS if getattr(self.before, part) != getattr(e.rates, part)]
        later = f" ({self.replaced} later price{'s' if self.replaced != 1 else ''} replaced)" if self.replaced else ""
        return f"~ {name}: {', '.join(moved) or 'same price'} from {effective.isoformat()}{later}"


@dataclass(frozen=True, slots=True)
class ImportReport:
    effective_from: date
    changes: tuple[PriceChange, ...]
    written: bool  # False for a dry run

    def count(self, change: Change) -> int:
        return sum(1 for c in self.changes if c.change == change)

    def lines(self) -> list[str]:
        """The added and changed prices, one line each (unchanged ones are only counted)."""
        return [c.describe(self.effective_from) for c in self.changes if c.change != Change.UNCHANGED]

    def summary(self) -> str:
        return (f"{self.count(Change.ADDED)} added, {self.count(Change.CHANGED)} changed,"
                f" {self.count(Change.UNCHANGED)} unchanged, from {self.effective_from.isoformat()}")


def import_table(conn: Any, table: PriceTable, *, dry_run: bool) -> ImportReport:
    """Compare `table` with the prices in MySQL and, unless `dry_run`, write the difference in one
    transaction (committed here; rolled back on any error)."""
    try:
        with conn.cursor() as cur:
            # Lock the table's rows against a concurrent import (a dry run only reads).
            cur.execute("SELECT model FROM prices" + ("" if dry_run else " FOR UPDATE"))
        by_key: dict[tuple[str, str, str, str], list[PriceRow]] = {}
        for row in read_rows(conn):
            by_key.setdefault((row.model, row.region, row.scope.value, row.tier), []).append(row)
        changes = tuple(_compare(entry, by_key.get(_key(entry), []), table.effective_from)
                        for entry in table.entries)
        if dry_run:
            conn.rollback()
            return ImportReport(table.effective_from, changes, written=False)
        with conn.cursor() as cur:
            for change in changes:
                if change.change == Change.UNCHANGED:
                    continue
                e = change.entry
                cur.execute("DELETE FROM prices WHERE model = %s AND region = %s AND scope = %s AND tier = %s"
                            " AND effective_from >= %s", (*_key(e), table.effective_from))
                cur.execute(
                    "INSERT INTO prices (model, region, scope, tier, effective_from, input, output, cache_read,"
                    " cache_write_5m, cache_write_1h, currency, source) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
                    " %s, %s, %s, %s)",
                    (*_key(e), table.effective_from, *(getattr(e.rates, p) for p in PARTS), table.currency,
                     table.source))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return ImportReport(table.effective_from, changes, written=True)


def _key(entry: PriceEntry) -> tuple[str, str, str, str]:
    return (entry.model, entry.region, entry.scope.value, entry.tier)


def _compare(entry: PriceEntry, rows: list[PriceRow], effective: date) -> PriceChange:
    in_force = max((r for r in rows if r.effective_from <= effective), key=lambda r: r.effective_from, default=None)
    later = [r for r in rows if r.effective_from > effective]
    before = in_force.rates if in_force is not None else None
    if before is None and not later:
        return PriceChange(entry, Change.ADDED, None, 0)
    if before == entry.rates and not later:
        return PriceChange(entry, Change.UNCHANGED, before, 0)
    # Rows on or after the date are replaced: the one on the date itself, if any, and every later one.
    replaced = len(later) + (1 if in_force is not None and in_force.effective_from == effective else 0)
    return PriceChange(entry, Change.CHANGED, before, replaced)


@dataclass(frozen=True, slots=True)
class ShownPrice(PriceRow):
    """A price as `prices show` prints it: the row, and where it came from."""

    currency: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "region": self.region, "scope": self.scope.value, "tier": self.tier,
                "effective_from": self.effective_from.isoformat(),
                "per_million": {p: getattr(self.rates, p) for p in PARTS},
                "currency": self.currency, "source": self.source}


def rows(conn: Any, *, at: date, model: str | None = None) -> list[ShownPrice]:
    """The prices in force on `at`, one per (model, region, scope, tier): what `PriceBook.charge` uses
    for a call that day (before a key's first date, its first price)."""
    sql = f"SELECT {ROW_COLUMNS}, currency, source FROM prices"
    with conn.cursor() as cur:
        cur.execute(sql + (" WHERE model = %s" if model else "") + " ORDER BY model, region, scope, tier,"
                    " effective_from", (model,) if model else ())
        found = cur.fetchall()
    chosen: dict[tuple[str, str, str, str], ShownPrice] = {}
    for m, r, s, t, eff, i, o, cr, cw5, cw1, currency, source in found:
        key = (m, r, s, t)
        if key not in chosen or eff <= at:  # ordered by date: the latest on or before `at`, else the first
            chosen[key] = ShownPrice(m, r, PriceScope(s), t, eff, Rates(i, o, cr, cw5, cw1), currency, source)
    return sorted(chosen.values(), key=lambda p: (p.model, p.region != ANY_REGION, p.region, p.scope, p.tier))


@dataclass(frozen=True, slots=True)
class UnpricedModel:
    model: str
    fallback_model: str | None
    calls: int
    first_seen: datetime | None
    last_seen: datetime | None
    notified_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat(timespec="seconds") if value else None

        return {"model": self.model, "fallback_model": self.fallback_model, "calls": self.calls,
                "first_seen": iso(self.first_seen), "last_seen": iso(self.last_seen),
                "notified_at": iso(self.notified_at)}


def missing(conn: Any) -> list[UnpricedModel]:
    """Models charged at the fallback because the table has no price for them, most recent first."""
    with conn.cursor() as cur:
        cur.execute("SELECT model, fallback_model, calls, first_seen, last_seen, notified_at FROM unpriced_models"
                    " ORDER BY last_seen DESC, model")
        return [UnpricedModel(m, f, int(c), from_db(first), from_db(last), from_db(notified))
                for m, f, c, first, last, notified in cur.fetchall()]


def _num(value: Any) -> str:
    return format(value.normalize(), "f") if value is not None else "-"


def _rates_text(rates: Rates) -> str:
    return ", ".join(f"{p} {_num(getattr(rates, p))}" for p in PARTS)
