"""The price table in memory: what every metered call is charged, with no SQL per call.

Rules of `charge` (the README's "Prices" section says the same):
- Provisioned Throughput (a provisioned-model ARN) costs 0 per call: it is paid by the hour.
- The price is the row of the call's base model in force on the call's day: the latest effective_from
  on or before it. Before a model's first effective date its first price is used (a backfill of older
  logs is charged the oldest price known rather than a fallback).
- Of the rows in force, the call's tier beats `standard` (a tier without a row of its own is charged the
  standard price), the call's scope beats the other scope, and the call's region beats '*'. A `global.`
  call with only a regional price is charged the regional price, which is never below the global one; a
  regional call with only a global price is charged that (ship both scopes where they differ).
- No price for the model (or an application profile left unresolved, a custom or imported model, a
  garbage modelId): never free. It is charged as if it were the PRICE_FALLBACK model: `provider` = the
  dearest known model (input + output per million) of the same provider, else the dearest overall;
  `dearest` = the dearest known model; or an explicit base model ID. Status FALLBACK, price_model = that
  model.
- An empty table raises NoPrices: nothing can be charged honestly; the caller alerts and retries.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from bedrock_usage.pricing.model_ids import ModelRef, provider_of
from bedrock_usage.pricing.rates import ANY_REGION, STANDARD_TIER, Charge, PriceScope, PriceStatus, Rates, Tokens

log = logging.getLogger(__name__)

FALLBACK_PROVIDER = "provider"
FALLBACK_DEAREST = "dearest"
_MEMO_LIMIT = 50_000  # (model, region, scope, tier, day) lookups remembered; cleared when full

_Key = tuple[str, str, str, str]  # model, region, scope, tier


class NoPrices(RuntimeError):
    """The price table is empty: a call cannot be charged at all, not even at a fallback (and is never
    charged 0). Alert (`bedrockctl prices import infra/prices/bedrock-prices.yaml`) and retry."""


@dataclass(frozen=True, slots=True)
class PriceRow:
    model: str
    region: str
    scope: PriceScope
    tier: str
    effective_from: date
    rates: Rates


@dataclass(frozen=True, slots=True)
class PriceVersion:
    """Cheap to read, changes whenever the table does (rows added, replaced, deleted or edited)."""

    rows: int
    imported_at: datetime | None
    checksum: int


# A PriceRow's columns, in its order.
ROW_COLUMNS = "model, region, scope, tier, effective_from, input, output, cache_read, cache_write_5m, cache_write_1h"
_ROWS_SQL = f"SELECT {ROW_COLUMNS} FROM prices"
_VERSION_SQL = ("SELECT COUNT(*), MAX(imported_at), COALESCE(BIT_XOR(CRC32(CONCAT_WS('|', model, region, scope,"
                " tier, effective_from, input, output, cache_read, cache_write_5m, cache_write_1h))), 0) FROM prices")


def read_version(conn: Any) -> PriceVersion:
    """The table's version. Reads in the caller's transaction: call it with no snapshot open (after a
    commit or rollback), or it sees the table as it was when the transaction began."""
    with conn.cursor() as cur:
        cur.execute(_VERSION_SQL)
        rows, imported_at, checksum = cur.fetchone()
    return PriceVersion(int(rows), imported_at, int(checksum))


def read_rows(conn: Any) -> list[PriceRow]:
    with conn.cursor() as cur:
        cur.execute(_ROWS_SQL)
        return [PriceRow(m, r, PriceScope(s), t, eff, Rates(*(Decimal(v) for v in parts)))
                for m, r, s, t, eff, *parts in cur.fetchall()]


class PriceBook:
    """An immutable view of the `prices` table; `refreshed(conn)` gives the current one."""

    def __init__(self, rows: Iterable[PriceRow], fallback: str, version: PriceVersion | None = None) -> None:
        self.version = version
        self.fallback = fallback
        grouped: dict[_Key, list[tuple[date, Rates]]] = {}
        for row in rows:
            grouped.setdefault((row.model, row.region, row.scope.value, row.tier), []).append(
                (row.effective_from, row.rates))
        self._rows: dict[_Key, tuple[list[date], list[Rates]]] = {}
        for key, dated in grouped.items():
            dated.sort(key=lambda d: d[0])
            self._rows[key] = ([d for d, _ in dated], [r for _, r in dated])
        self._memo: dict[tuple[str, str, PriceScope, str, date], tuple[Rates, PriceScope] | None] = {}
        self._dearest_rates, self._fallbacks, self._dearest = self._rank(fallback)

    @classmethod
    def load(cls, conn: Any, fallback: str) -> PriceBook:
        """The table as it is now (`fallback`: settings.price_fallback). Same transaction caveat as
        read_version."""
        version = read_version(conn)
        return cls(read_rows(conn), fallback, version)

    def refreshed(self, conn: Any) -> PriceBook:
        """This book if the table has not changed since it was loaded (one small query), else a new one:
        what the consumer calls every PRICES_REFRESH_SECONDS."""
        version = read_version(conn)
        return self if version == self.version else PriceBook(read_rows(conn), self.fallback, version)

    @property
    def empty(self) -> bool:
        return not self._rows

    @property
    def models(self) -> frozenset[str]:
        return frozenset(key[0] for key in self._rows)

    def charge(self, model: ModelRef, region: str, tier: str, day: date, tokens: Tokens) -> Charge:
        """What the call cost (see the module's rules). Raises NoPrices when the table is empty."""
        if model.provisioned:
            return Charge(0, PriceStatus.PROVISIONED, None, model.scope)
        if model.model is not None:
            found = self.rates(model.model, region, model.scope, tier, day)
            if found is not None:
                return Charge(found[0].cost_nanos(tokens), PriceStatus.PRICED, model.model, found[1])
        fallback = self.fallback_model(model.provider)
        found = self.rates(fallback, region, model.scope, tier, day)
        rates, scope = found if found is not None else (self._dearest_rates[fallback], model.scope)
        return Charge(rates.cost_nanos(tokens), PriceStatus.FALLBACK, fallback, scope)

    def rates(self, model: str, region: str, scope: PriceScope, tier: str,
              day: date) -> tuple[Rates, PriceScope] | None:
        """The rates a call of `model` is charged, and the scope of the row they come from; None when
        the table has none for it (in this region or '*')."""
        memo_key = (model, region, scope, tier, day)
        try:
            return self._memo[memo_key]
        except KeyError:
            pass
        found = self._find(model, region, scope, tier, day)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[memo_key] = found
        return found

    def fallback_model(self, provider: str | None) -> str:
        """The model an unpriced call of `provider` is charged as."""
        if self._dearest is None:
            raise NoPrices("the price table is empty: no call can be charged (import a price file:"
                           " bedrockctl prices import infra/prices/bedrock-prices.yaml)")
        return self._fallbacks.get(provider or "", self._dearest)

    def _find(self, model: str, region: str, scope: PriceScope, tier: str,
              day: date) -> tuple[Rates, PriceScope] | None:
        other = PriceScope.GLOBAL if scope == PriceScope.REGIONAL else PriceScope.REGIONAL
        for t in (tier, STANDARD_TIER) if tier != STANDARD_TIER else (tier,):
            for s in (scope, other):
                for r in (region, ANY_REGION) if region != ANY_REGION else (region,):
                    hit = self._rows.get((model, r, s.value, t))
                    if hit is not None:
                        dates, rates = hit
                        # The latest on or before `day`; before the first, the first.
                        return rates[max(bisect.bisect_right(dates, day) - 1, 0)], s
        return None

    def _rank(self, fallback: str) -> tuple[dict[str, Rates], dict[str, str], str | None]:
        """Each model's dearest rates (standard tier where it has any), the fallback model of each provider
        under the policy, and the dearest model overall."""
        dearest_rates: dict[str, Rates] = {}
        standard: set[str] = set()
        for (model, _, _, tier), (_, rates_list) in self._rows.items():
            for rates in rates_list:
                is_standard = tier == STANDARD_TIER
                if is_standard and model not in standard:  # standard rows replace any other tier's
                    standard.add(model)
                    dearest_rates.pop(model, None)
                if (is_standard or model not in standard) and (
                        model not in dearest_rates or rates.dearness > dearest_rates[model].dearness):
                    dearest_rates[model] = rates

        def rank(model: str) -> tuple[Decimal, str]:
            return dearest_rates[model].dearness, model  # ties: the same model every time

        if not dearest_rates:
            return {}, {}, None
        dearest = max(dearest_rates, key=rank)
        if fallback == FALLBACK_DEAREST:
            return dearest_rates, {}, dearest
        if fallback != FALLBACK_PROVIDER:
            if fallback in dearest_rates:
                return dearest_rates, {}, fallback
            log.warning("PRICE_FALLBACK %s has no price in the table: unpriced calls are charged as the"
                        " dearest model, %s", fallback, dearest)
            return dearest_rates, {}, dearest
        by_provider: dict[str, str] = {}
        for model in dearest_rates:
            provider = provider_of(model)
            if provider and (provider not in by_provider or rank(model) > rank(by_provider[provider])):
                by_provider[provider] = model
        return dearest_rates, by_provider, dearest
