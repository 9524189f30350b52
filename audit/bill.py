"""`bedrockctl bill reconcile`: the Bedrock cost AWS billed (CUR 2.0, per IAM principal) against the cost
metered from the invocation logs (MySQL `invocation_logs`), per person and day, with the usual causes of a
difference named.

Days are **UTC days on both sides**: the CUR's usage times are UTC and its lines are hourly or daily, so a
CUR day cannot be cut along QUOTA_TIMEZONE's midnight; the metered side is summed by the UTC day of each
log's time (`event_time`, UTC), not by its quota day. `--from`/`--to` are therefore UTC days too.

Compared: the usage lines (Usage, DiscountedUsage, SavingsPlanCoveredUsage) that carry an IAM principal.
Not compared but reported: Bedrock lines with no principal (provisioned throughput, storage, anything not
an inference call), and the other line item types (Tax, Credit, Refund, discounts, fees), by type — the
product meters list-price usage and nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fnmatch import fnmatchcase

from pymysql.connections import Connection

from audit.cur import CurLine
from audit.output import Cell, Report, Section
from audit.period import Period
from bedrock_usage.identity import SSO_KEY_PREFIX, without_path

USAGE_ITEM_TYPES = frozenset({"Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"})
_SSO_ROLE_PREFIX = "AWSReservedSSO_"
_CENT = Decimal("0.01")
DRIFT_COLUMNS = ("principal", "day", "billed_usd", "metered_usd", "difference_usd", "difference_pct", "status",
                 "causes")


class ToleranceError(ValueError):
    pass


@dataclass(frozen=True)
class Tolerance:
    """A row agrees when its difference is within either bound given (default: $0.01 or 1 % of the bill)."""

    dollars: Decimal | None = Decimal("0.01")
    percent: Decimal | None = Decimal(1)

    @classmethod
    def parse(cls, values: Sequence[str]) -> Tolerance:
        dollars = percent = None
        for raw in values:
            text = raw.strip()
            try:
                if text.endswith("%"):
                    percent = Decimal(text[:-1])
                else:
                    dollars = Decimal(text.removeprefix("$"))
            except InvalidOperation:
                raise ToleranceError(f"--tolerance {raw!r}: expected dollars (0.01) or a percentage (1%)") from None
            if (percent is not None and percent < 0) or (dollars is not None and dollars < 0):
                raise ToleranceError(f"--tolerance {raw!r} is negative")
        return cls(dollars, percent)

    def allows(self, billed: Decimal, difference: Decimal) -> bool:
        gap = abs(difference)
        return ((self.dollars is not None and gap <= self.dollars)
                or (self.percent is not None and gap <= abs(billed) * self.percent / 100))

    def describe(self) -> str:
        parts = ([f"${self.dollars}"] if self.dollars is not None else []) + (
            [f"{self.percent}% of the bill"] if self.percent is not None else [])
        return " or ".join(parts) or "none"


# --- the CUR's principal as our quota key ----------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    """What maps a CUR principal to a quota key: SESSION_ROLES and the roles' keys the consumer decided."""

    session_roles: Sequence[str] = ()
    roles: dict[str, str] = field(default_factory=dict)  # path-less role ARN → its quota key (with the path)

    def of(self, principal: str) -> str:
        """`line_item_iam_principal` → quota key, by the README's rules ("Who is a person"). A session ARN
        has no role path, a role's key has one: the key the consumer decided for the role (role_keys, or a
        role it provisioned from CloudTrail) is used, else the path-less ARN."""
        head, sep, rest = principal.partition(":assumed-role/")
        if sep:
            role, _, session = rest.partition("/")
            if role.startswith(_SSO_ROLE_PREFIX) and session:
                return SSO_KEY_PREFIX + session.lower()
            if any(fnmatchcase(role, pattern) for pattern in self.session_roles):
                return principal
            role_arn = f"{head.replace(':sts:', ':iam:', 1)}:role/{role}"
            return self.roles.get(role_arn, role_arn)
        if ":role/" in principal:
            return self.roles.get(without_path(principal), principal)
        return principal


def role_keys(conn: Connection) -> dict[str, str]:
    """Path-less role ARN → quota key: what `role_keys` decided, else a role row provisioned from CloudTrail."""
    with conn.cursor() as cur:
        cur.execute("SELECT quota_key FROM principals WHERE identity_type = 'role'")
        found = {without_path(str(key)): str(key) for (key,) in cur.fetchall()}
        cur.execute("SELECT pathless_arn, quota_key FROM role_keys")
        found.update({str(arn): str(key) for arn, key in cur.fetchall()})
    conn.commit()
    return found


# --- the two sides ---------------------------------------------------------------------------------------


@dataclass
class Billed:
    """The CUR's Bedrock lines, added up as they stream by (memory: one entry per principal and day)."""

    keys: Keys
    usage: dict[tuple[str, date], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    regions: dict[tuple[str, date], set[str]] = field(default_factory=lambda: defaultdict(set))
    unattributed: dict[tuple[date, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    adjustments: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    lines: int = 0
    first: date | None = None
    last: date | None = None

    def add(self, lines: Iterable[CurLine], period: Period | None) -> None:
        for line in lines:
            if period is not None and not period.start.date() <= line.day < period.end.date():
                continue
            self.lines += 1
            self.first = line.day if self.first is None else min(self.first, line.day)
            self.last = line.day if self.last is None else max(self.last, line.day)
            if line.item_type not in USAGE_ITEM_TYPES:
                self.adjustments[line.item_type or "(none)"] += line.cost
            elif not line.principal:
                self.unattributed[(line.day, line.usage_type)] += line.cost
            else:
                key = (self.keys.of(line.principal), line.day)
                self.usage[key] += line.cost
                if line.region:
                    self.regions[key].add(line.region)


@dataclass(frozen=True)
class MeteredDay:
    cost: Decimal = Decimal(0)
    logs: int = 0
    unpriced_logs: int = 0
    unpriced_models: str = ""


@dataclass
class Metered:
    days: dict[tuple[str, date], MeteredDay]
    unmetered: dict[tuple[str, date], dict[str, int]]  # successful calls no log priced, by region
    regions: set[str]  # every region the record holds a call or a log from in the period
    known: set[str]  # quota keys of the people the consumer knows


def _bounds(start: date, end: date) -> tuple[date, date, datetime, datetime]:
    """UTC days [start, end) as event_date bounds (a quota day is within a day of its UTC day, so the
    partitions read are those of the period and one day each side) and event_time bounds."""
    return (start - timedelta(days=1), end + timedelta(days=1), datetime.combine(start, datetime.min.time()),
            datetime.combine(end, datetime.min.time()))


def _window(alias: str) -> str:
    return (f"{alias}.event_date BETWEEN %s AND %s AND {alias}.event_time >= %s AND {alias}.event_time < %s")


def metered(conn: Connection, start: date, end: date, billed_keys: Iterable[str]) -> Metered:
    """The record over the UTC days [start, end): cost per person and day from the invocation logs."""
    low, high, t0, t1 = _bounds(start, end)
    args = (low, high, t0, t1)
    with conn.cursor() as cur:
        cur.execute("SELECT p.quota_key, DATE(l.event_time), SUM(l.cost_usd), COUNT(*),"
                    " SUM(l.price_status = 'fallback'), GROUP_CONCAT(DISTINCT CASE WHEN l.price_status = 'fallback'"
                    " THEN m.model_id END ORDER BY m.model_id SEPARATOR ' ')"
                    " FROM invocation_logs l JOIN principals p ON p.id = l.principal_id"
                    " JOIN models m ON m.id = l.model_ref"
                    f" WHERE {_window('l')}"
                    " GROUP BY p.quota_key, DATE(l.event_time)", args)
        days = {(str(k), d): MeteredDay(Decimal(c), int(n), int(u or 0), str(models or ""))
                for k, d, c, n, u, models in cur.fetchall()}
        cur.execute("SELECT p.quota_key, DATE(c.event_time), c.region, COUNT(*) FROM bedrock_calls c"
                    " JOIN principals p ON p.id = c.principal_id"
                    f" WHERE {_window('c')}"
                    " AND c.error_code IS NULL AND c.input_tokens IS NULL GROUP BY 1, 2, 3", args)
        unmetered: dict[tuple[str, date], dict[str, int]] = defaultdict(dict)
        for key, day, region, count in cur.fetchall():
            unmetered[(str(key), day)][str(region)] = int(count)
        cur.execute(f"SELECT DISTINCT region FROM bedrock_calls c WHERE {_window('c')}"
                    f" UNION SELECT DISTINCT region FROM invocation_logs l WHERE {_window('l')}", args + args)
        regions = {str(r) for (r,) in cur.fetchall()}
        wanted = sorted(set(billed_keys))
        known: set[str] = set()
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            cur.execute("SELECT quota_key FROM principals WHERE quota_key IN (" + ",".join(["%s"] * len(chunk))
                        + ")", chunk)
            known.update(str(k) for (k,) in cur.fetchall())
    conn.commit()
    return Metered(days, dict(unmetered), regions, known | {k for k, _ in days})


# --- the comparison --------------------------------------------------------------------------------------


def _percent(difference: Decimal, billed: Decimal) -> Decimal | None:
    return (difference * 100 / billed).quantize(_CENT, ROUND_HALF_UP) if billed else None


def causes(key: str, day: date, billed: Decimal, record: Metered, *, billed_regions: set[str],
           listed: set[str]) -> list[str]:
    """The usual reasons the two sides differ, those that can be told for this person and day."""
    found = []
    here = record.days.get((key, day), MeteredDay())
    if key not in record.known:
        found.append("principal not known (no call of theirs reached the consumer)")
    unlisted = sorted(billed_regions - listed)
    if unlisted:
        found.append(f"calls in unlisted region {', '.join(unlisted)}")
    if billed and not here.logs:
        found.append("not metered (no invocation log that day)")
    gaps = record.unmetered.get((key, day), {})
    if gaps:
        found.append("calls without an invocation log (logging off there?): "
                     + ", ".join(f"{n} in {region}" for region, n in sorted(gaps.items())))
    if here.unpriced_logs:
        found.append(f"unpriced model {here.unpriced_models} (calls charged at the fallback price:"
                     f" {here.unpriced_logs})")
    if here.logs and not billed:
        found.append("metered, not billed (a day the CUR does not hold yet?)")
    return found


def reconcile(bill: Billed, record: Metered, *, listed: set[str], tolerance: Tolerance, title: str,
              notes: Sequence[str] = ()) -> Report:
    keys = sorted(set(bill.usage) | set(record.days))
    rows: list[Sequence[Cell]] = []
    billed_total = metered_total = Decimal(0)
    differing = 0
    for key, day in keys:
        billed = bill.usage.get((key, day), Decimal(0))
        cost = record.days.get((key, day), MeteredDay()).cost
        difference = billed - cost
        agrees = tolerance.allows(billed, difference)
        differing += not agrees
        billed_total += billed
        metered_total += cost
        why = causes(key, day, billed, record, billed_regions=bill.regions.get((key, day), set()), listed=listed)
        rows.append([key, day.isoformat(), billed, cost, difference, _percent(difference, billed),
                     "agree" if agrees else "differ", "; ".join(why)])
    unattributed: list[Sequence[Cell]] = [[d.isoformat(), usage_type, cost]
                                          for (d, usage_type), cost in sorted(bill.unattributed.items())]
    adjustments: list[Sequence[Cell]] = [[kind, cost] for kind, cost in sorted(bill.adjustments.items())]
    total_difference = billed_total - metered_total
    return Report(
        title=title,
        sections=[Section("drift", DRIFT_COLUMNS, rows),
                  Section("unattributed", ("day", "usage_type", "billed_usd"), unattributed),
                  Section("adjustments", ("line_item_type", "billed_usd"), adjustments)],
        totals={"billed_usd": billed_total, "metered_usd": metered_total, "difference_usd": total_difference,
                "difference_pct": _percent(total_difference, billed_total), "rows": len(rows),
                "rows_differing": differing,
                "unattributed_usd": sum(bill.unattributed.values(), Decimal(0)),
                "adjustments_usd": sum(bill.adjustments.values(), Decimal(0))},
        differs=differing > 0,
        notes=[*notes, f"tolerance per row: {tolerance.describe()}",
               "unattributed and adjustments are reported, not compared: the product meters inference calls at"
               " list prices"],
    )
