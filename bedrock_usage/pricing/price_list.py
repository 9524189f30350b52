"""Bedrock prices from the AWS Price List API (`pricing:GetProducts`), as a price table.

All three service codes Bedrock is priced under are read, every page of each:
- `AmazonBedrock`: Amazon's and most open-weight models (and the older Claude), per 1K tokens;
- `AmazonBedrockFoundationModels`: the Marketplace-billed models (Claude 3.5 on), per 1M tokens;
- `AmazonBedrockService`: a few models billed by Bedrock itself (e.g. Claude Sonnet 4's global rate).
Each product is classified by `price_list_rows.classify` (part, scope, tier, region, model); the rows are
grouped by (model, region, scope, tier) into the five per-million rates of a `PriceEntry`.

Rules a FinOps reader needs (the README repeats them):
- Nothing is guessed. A product that is not a per-token price, names a model the mapping table
  (`price_list_titles`) lacks, or is otherwise unclear is skipped and counted by reason in the result.
- Two products giving the same (model, region, scope, tier, part) different prices: the higher is kept
  (never under-charge) and the prices are reported as a conflict. Equal duplicates (AWS publishes some
  rates under two usage-type conventions) are one.
- Input is required. Any other part missing from a group is 0 only when the model has no such price
  anywhere in the Price List (an embedding model has no output; Nova charges no cache writes; Claude 3.x
  has no 1-hour cache writes). When the model does have that part elsewhere (another region, scope or
  tier), the group is incomplete and is skipped whole, counted in `incomplete`: a zero there would
  under-charge the calls that use it.
- Prices are rounded up to the table's six decimals per million (never down).
- The table is effective from the day of the sync (the Price List gives today's prices; earlier calls keep
  the prices they were charged at).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

from bedrock_usage.pricing.price_list_rows import Skip, classify, usd_text
from bedrock_usage.pricing.rates import PARTS, PriceEntry, PriceScope, PriceTable, Rates

log = logging.getLogger(__name__)

SERVICE_CODES = ("AmazonBedrock", "AmazonBedrockFoundationModels", "AmazonBedrockService")
# The Price List API answers in these Regions only (its prices cover every Region whichever is asked).
ENDPOINT_REGIONS = ("us-east-1", "eu-central-1", "ap-south-1")
PAGE_SIZE = 100
# A guard against an API (or a token this code fails to advance) that never stops paging: AmazonBedrock is a
# few dozen pages of 100; 1,000 pages per service code is far beyond any real catalogue.
MAX_PAGES = 1000
_SIX_DECIMALS = Decimal("0.000001")

GroupKey = tuple[str, str, PriceScope, str]  # model, region, scope, tier


class PriceListError(Exception):
    """The Price List answered in a way that cannot be priced from (a runaway pagination)."""


@dataclass
class PriceListResult:
    """A fetched table and an account of everything it does not hold."""

    table: PriceTable
    products: int = 0  # PriceList documents read, all service codes
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> products
    unmapped: Counter[str] = field(default_factory=Counter)  # Price List title -> products
    incomplete: list[str] = field(default_factory=list)  # "model region scope tier: no cache_read price"
    conflicts: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        """Lines for an admin: what was read, what was left out and why."""
        lines = [f"Price List: {self.products} products read, {len(self.table.entries)} prices"
                 f" ({len({e.model for e in self.table.entries})} models)"]
        lines += [f"  skipped {n}: {reason}" for reason, n in sorted(self.skipped.items(), key=lambda i: -i[1])]
        lines += [f"  unmapped title {title!r}: {n} products" for title, n in sorted(self.unmapped.items())]
        lines += [f"  incomplete, not imported: {line}" for line in self.incomplete]
        lines += [f"  conflict, higher kept: {line}" for line in self.conflicts]
        return lines


def fetch_price_table(pricing_client: Any, *, effective_from: date | None = None) -> PriceTable:
    """Every Bedrock price the Price List gives, as a table (what it left out is logged)."""
    result = fetch(pricing_client, effective_from=effective_from)
    for line in result.describe():
        log.info("price list: %s", line.strip())
    return result.table


def fetch(pricing_client: Any, *, effective_from: date | None = None) -> PriceListResult:
    """`pricing_client`: a boto3 "pricing" client in one of ENDPOINT_REGIONS. Throttling is retried by the
    client's own retry mode; any other AWS error propagates (nothing is half-fetched)."""
    documents = ((code, doc) for code in SERVICE_CODES for doc in _pages(pricing_client, code))
    endpoint = str(getattr(getattr(pricing_client, "meta", None), "region_name", "") or "?")
    return build_table(documents, endpoint=endpoint,
                       effective_from=effective_from or datetime.now(UTC).date())


def _pages(client: Any, service_code: str) -> Iterator[str]:
    token: str | None = None
    for _ in range(MAX_PAGES):
        request: dict[str, Any] = {"ServiceCode": service_code, "FormatVersion": "aws_v1", "MaxResults": PAGE_SIZE}
        if token:
            request["NextToken"] = token
        reply = client.get_products(**request)
        yield from reply.get("PriceList") or []
        token = reply.get("NextToken")
        if not token:
            return
    raise PriceListError(f"{service_code}: still paginating after {MAX_PAGES} pages")


def build_table(documents: Iterable[tuple[str, str]], *, endpoint: str, effective_from: date) -> PriceListResult:
    """(service code, PriceList document) pairs -> the price table and what was left out."""
    # Every distinct price seen for each (group, part), with the usage type that gave it first.
    groups: dict[GroupKey, dict[str, dict[Decimal, str]]] = {}
    parts_of_model: dict[str, set[str]] = {}
    result = PriceListResult(PriceTable("USD", "", effective_from, ()))
    published: set[str] = set()
    for service_code, document in documents:
        result.products += 1
        row = classify(document)
        if isinstance(row, Skip):
            result.skipped[row.reason] += 1
            if row.title is not None:
                result.unmapped[row.title] += 1
            continue
        published.add(row.published)
        prices = groups.setdefault((row.model, row.region, row.scope, row.tier), {}).setdefault(row.part, {})
        prices.setdefault(row.usd_per_million, f"{row.usagetype}, {service_code}")
        parts_of_model.setdefault(row.model, set()).add(row.part)
    entries = []
    for key, parts in sorted(groups.items()):
        highest = {}
        for part, prices in parts.items():
            highest[part] = max(prices)
            if len(prices) > 1:
                seen = "; ".join(f"{usd_text(price)} ({where})" for price, where in sorted(prices.items()))
                result.conflicts.append(f"{' '.join(key)} {part}: {seen}; kept {usd_text(highest[part])}")
        entry = _entry(key, highest, parts_of_model[key[0]], result)
        if entry is not None:
            entries.append(entry)
    latest = max((p for p in published if p), default="unknown")
    source = (f"AWS Price List API ({', '.join(SERVICE_CODES)}) via the {endpoint} endpoint,"
              f" published {latest}")
    result.table = PriceTable("USD", source, effective_from, tuple(entries))
    return result


def _entry(key: GroupKey, parts: dict[str, Decimal], model_parts: set[str],
           result: PriceListResult) -> PriceEntry | None:
    model, region, scope, tier = key
    # Input is always required: a group of only cache or output prices would price its input as free.
    missing = [p for p in PARTS if p not in parts and (p in model_parts or p == "input")]
    if missing:
        result.incomplete.append(f"{model} {region} {scope} {tier}: no {', '.join(missing)} price"
                                 f" (the model has one elsewhere)")
        return None
    rates = {p: _rounded(parts[p]) if p in parts else Decimal(0) for p in PARTS}
    return PriceEntry(model, region, scope, tier, Rates(**rates))


def _rounded(usd_per_million: Decimal) -> Decimal:
    return usd_per_million.quantize(_SIX_DECIMALS, ROUND_CEILING)
