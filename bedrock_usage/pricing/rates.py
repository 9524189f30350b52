"""The vocabulary of pricing: the tokens of a call by part, the five per-million prices of a model,
and what charging a call produced. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

# Prices are per million tokens; a call's cost is kept in nano-dollars: tokens * $/M * 10^9 / 10^6 =
# tokens * price * 1000 nano-dollars, computed in Decimal and rounded once per call.
_NANOS_PER_TOKEN_AT_ONE_USD_PER_MILLION = Decimal(1000)


class PriceScope(StrEnum):
    """`global`: a `global.` cross-Region inference profile, billed at the global rate. `regional`: a
    base model or a geographic profile (`us.`, `eu.`…), billed at the rate of the Region called."""

    REGIONAL = "regional"
    GLOBAL = "global"


class PriceStatus(StrEnum):
    PRICED = "priced"  # the table has the model's price
    FALLBACK = "fallback"  # it has none: charged at PRICE_FALLBACK (never free), listed by `prices missing`
    PROVISIONED = "provisioned"  # Provisioned Throughput: paid by the hour, not per token: cost 0


class CacheSplit(StrEnum):
    BODY = "body"  # the 5-minute / 1-hour split of cache writes read from the request/response body
    ASSUMED_5M = "assumed_5m"  # bodies off (or in S3): every cache write priced as 5-minute


STANDARD_TIER = "standard"
ANY_REGION = "*"  # a price for every Region without a row of its own
PARTS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")  # Tokens' and Rates' fields, in order
TOKEN_COLUMNS = tuple(f"{part}_tokens" for part in PARTS)  # in invocation_logs and bedrock_calls


@dataclass(frozen=True, slots=True)
class Tokens:
    """A call's tokens by how they are billed. `input` excludes cache reads and writes (as the invocation
    log's inputTokenCount does)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0

    @property
    def cache_write(self) -> int:
        return self.cache_write_5m + self.cache_write_1h

    def __iter__(self) -> Iterator[int]:
        """The parts in PARTS order (as the token columns are)."""
        return iter((self.input, self.output, self.cache_read, self.cache_write_5m, self.cache_write_1h))

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens of each part."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal

    def cost_nanos(self, tokens: Tokens) -> int:
        """The call's cost in nano-dollars, rounded half up once (never per part)."""
        exact = (tokens.input * self.input + tokens.output * self.output + tokens.cache_read * self.cache_read
                 + tokens.cache_write_5m * self.cache_write_5m + tokens.cache_write_1h * self.cache_write_1h)
        return int((exact * _NANOS_PER_TOKEN_AT_ONE_USD_PER_MILLION).to_integral_value(ROUND_HALF_UP))

    @property
    def dearness(self) -> Decimal:
        """How the fallback compares models: input plus output per million."""
        return self.input + self.output


@dataclass(frozen=True, slots=True)
class Charge:
    """What charging one call produced."""

    nanos: int
    status: PriceStatus
    price_model: str | None  # the base model it was priced as (the fallback's model for an unpriced one)
    scope: PriceScope


@dataclass(frozen=True, slots=True)
class PriceEntry:
    """One price: a base model in a region ('*': any region without a row of its own), at a scope and tier."""

    model: str
    region: str
    scope: PriceScope
    tier: str
    rates: Rates

    @property
    def key(self) -> tuple[str, str, PriceScope, str]:
        """What a price replaces: the same model, region, scope and tier."""
        return (self.model, self.region, self.scope, self.tier)


@dataclass(frozen=True, slots=True)
class PriceTable:
    """A set of prices from one source (a price file, the Price List API), applying from `effective_from`
    on: what `bedrock_usage.pricing.store.import_table` writes."""

    currency: str
    source: str
    effective_from: date
    entries: tuple[PriceEntry, ...]
