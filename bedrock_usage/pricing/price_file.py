"""The price file (`bedrockctl prices import FILE`), YAML or JSON, checked whole before anything is written.

    currency: USD
    source: where these numbers come from
    effective: 2026-11-01      # optional; default: the day of the import
    prices:
      - model: anthropic.claude-sonnet-4-5-20250929-v1:0   # base model ID
        region: "*"          # or a region code; a region's row beats "*"
        scope: regional      # regional | global
        tier: standard       # optional, default standard
        per_million: {input: 3.30, output: 16.50, cache_read: 0.33, cache_write_5m: 4.125, cache_write_1h: 6.60}

Prices are money: numbers are read from their text straight into Decimal (a YAML float never goes through
a binary float, JSON numbers are parsed with parse_float=Decimal). Every problem is reported at once with
its path (`prices[3].per_million.output: must be a number >= 0`), and a file with any problem is rejected.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from bedrock_usage.pricing.model_ids import ModelIdKind, parse_model_id
from bedrock_usage.pricing.rates import ANY_REGION, PARTS, STANDARD_TIER, PriceEntry, PriceScope, PriceTable, Rates

CURRENCY = "USD"  # costs are kept in nano-dollars: a price in another currency cannot be added to them
FIELDS = ("currency", "source", "effective", "prices")
ENTRY_FIELDS = ("model", "region", "scope", "tier", "per_million")

# Column sizes and precision of `prices` (sql/010_cost.sql): a longer value or a finer price would fail
# half-way through the import, or be rounded silently.
_MAX_MODEL, _MAX_REGION, _MAX_TIER, _MAX_SOURCE = 255, 32, 24, 512
_PLACES, _MAX_PRICE = 6, Decimal(10) ** 10
_QUANTUM = Decimal(1).scaleb(-_PLACES)
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_TIER = re.compile(r"[a-z0-9][a-z0-9_-]*")


class PriceFileError(ValueError):
    """Every problem found in a price file, one line each."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Number(str):
    """A YAML int or float, kept as the text it was written as."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps numbers as their text and rejects a key written twice in one mapping (the
    stock loader keeps the last silently: `input` twice would hide a typo)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is written twice in the same mapping", key_node.start_mark)
            seen.add(key if isinstance(key, str | int) else id(key))
        return super().construct_mapping(node, deep=deep)


def _number_text(loader: yaml.SafeLoader, node: yaml.Node) -> _Number:
    return _Number(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:float", _number_text)
_Loader.add_constructor("tag:yaml.org,2002:int", _number_text)


def load_price_file(path: Path, *, today: date) -> PriceTable:
    return parse_price_file(path.read_text(), today=today, json_format=path.suffix.lower() == ".json")


def parse_price_file(text: str, *, today: date, json_format: bool | None = None) -> PriceTable:
    """The file's prices, or PriceFileError listing every problem. `today` is the import's day (in
    QUOTA_TIMEZONE): the prices apply from it on unless the file says `effective:`."""
    is_json = json_format if json_format is not None else text.lstrip().startswith("{")
    try:
        document = _read_json(text) if is_json else yaml.load(text, Loader=_Loader)  # a SafeLoader
    except (ValueError, yaml.YAMLError) as error:
        raise PriceFileError(f"not valid {'JSON' if is_json else 'YAML'}: {error}") from None
    if not isinstance(document, dict):
        raise PriceFileError("the price file must be a mapping with currency, source and prices")
    check = _Checker()
    for name in document:
        if name not in FIELDS:
            check.problem(str(name), f"unknown field (expected {', '.join(FIELDS)})")
    currency = document.get("currency")
    if currency != CURRENCY:
        check.problem("currency", f"must be {CURRENCY}, got {currency!r}: costs are counted in US dollars"
                                  " (the Bedrock price list's currency)")
    source = document.get("source")
    if not isinstance(source, str) or not source.strip():
        check.problem("source", "required: where these prices come from (a page and the day they were read)")
    elif len(source) > _MAX_SOURCE:
        check.problem("source", f"is longer than {_MAX_SOURCE} characters")
    effective = check.effective(document.get("effective"), today)
    entries = check.prices(document.get("prices"))
    if check.problems:
        raise PriceFileError(*check.problems)
    return PriceTable(CURRENCY, str(source).strip(), effective, tuple(entries))


def _read_json(text: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"{twice[0]!r} is written twice in the same object")
        return dict(pairs)

    return json.loads(text, parse_float=Decimal, parse_int=Decimal, object_pairs_hook=no_duplicates)


def price_of(value: Any) -> Decimal | None:
    """A price as written (a YAML or JSON number, never a quoted string or a boolean), or None."""
    if isinstance(value, bool) or not isinstance(value, _Number | Decimal):
        return None
    try:
        number = Decimal(value.replace("_", "")) if isinstance(value, str) else value
    except InvalidOperation:
        return None  # .inf, .nan, 0x1F: not a price
    return number if number.is_finite() else None


def _shown(value: Any) -> str:
    """A value as the file wrote it: a number bare, a string quoted (`"0.33"` is text, not a price)."""
    return str(value) if isinstance(value, _Number | Decimal) else repr(value)


class _Checker:
    """Collects problems while reading the document, so that one run reports all of them."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, at: str, message: str) -> None:
        self.problems.append(f"{at}: {message}")

    def effective(self, value: Any, today: date) -> date:
        if value is None:
            return today
        if isinstance(value, date):  # YAML reads 2026-11-01 as a date (a datetime is a date too)
            return value if type(value) is date else value.date()  # type: ignore[attr-defined]
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.problem("effective", f"must be a date like 2026-11-01, got {value!r}")
        return today

    def prices(self, value: Any) -> list[PriceEntry]:
        if not isinstance(value, list) or not value:
            self.problem("prices", "required: a list of prices (model, region, scope, per_million)")
            return []
        entries: list[PriceEntry] = []
        first_at: dict[tuple[str, str, PriceScope, str], int] = {}
        for i, raw in enumerate(value):
            entry = self.entry(f"prices[{i}]", raw)
            if entry is None:
                continue
            if entry.key in first_at:
                self.problem(f"prices[{i}]", f"the same model, region, scope and tier as prices[{first_at[entry.key]}]"
                                             f" ({entry.model} {entry.region} {entry.scope} {entry.tier})")
                continue
            first_at[entry.key] = i
            entries.append(entry)
        return entries

    def entry(self, at: str, raw: Any) -> PriceEntry | None:
        if not isinstance(raw, dict):
            self.problem(at, f"must be a mapping with {', '.join(ENTRY_FIELDS)}, got {raw!r}")
            return None
        before = len(self.problems)
        for name in raw:
            if name not in ENTRY_FIELDS:
                self.problem(f"{at}.{name}", f"unknown field (allowed: {', '.join(ENTRY_FIELDS)})")
        model = self.model(f"{at}.model", raw.get("model"))
        region = raw.get("region")
        if region is None:
            self.problem(f"{at}.region", 'required: "*" (any region) or a region code like us-east-1')
        elif not isinstance(region, str) or (region != ANY_REGION and (
                len(region) > _MAX_REGION or not _REGION.fullmatch(region))):
            self.problem(f"{at}.region", f'must be "*" or a region code like us-east-1, got {region!r}')
        scope = raw.get("scope")
        if scope not in tuple(PriceScope):
            self.problem(f"{at}.scope", f"must be regional or global, got {scope!r}")
        tier = raw.get("tier", STANDARD_TIER)
        if not isinstance(tier, str) or len(tier) > _MAX_TIER or not _TIER.fullmatch(tier):
            self.problem(f"{at}.tier", f"must be a tier name like standard, flex, priority or batch, got {tier!r}")
        rates = self.rates(f"{at}.per_million", raw.get("per_million"))
        if len(self.problems) > before or model is None or rates is None:
            return None
        return PriceEntry(model, str(region), PriceScope(str(scope)), str(tier), rates)

    def model(self, at: str, value: Any) -> str | None:
        if not isinstance(value, str) or not value:
            self.problem(at, f"required: a base model ID like anthropic.claude-sonnet-4-5-20250929-v1:0, got {value!r}")
            return None
        ref = parse_model_id(value)
        if len(value) > _MAX_MODEL or not value.isascii():
            self.problem(at, f"{value[:40]!r} is not a model ID (ASCII, at most {_MAX_MODEL} characters)")
        elif ref.kind in (ModelIdKind.GEO_PROFILE, ModelIdKind.GLOBAL_PROFILE, ModelIdKind.FOUNDATION_MODEL) \
                and ref.model is not None:
            # Prices are the base model's: a profile's calls are priced by their scope and region.
            self.problem(at, f"{value!r} is not a base model ID: write {ref.model} with scope {ref.scope}")
        elif ref.kind != ModelIdKind.BASE or ref.model != value:
            self.problem(at, f"{value!r} is not a base model ID (provider.model, like"
                             " anthropic.claude-sonnet-4-5-20250929-v1:0)")
        else:
            return value
        return None

    def rates(self, at: str, value: Any) -> Rates | None:
        if not isinstance(value, dict):
            self.problem(at, f"required: a mapping of {', '.join(PARTS)} (US dollars per million tokens)")
            return None
        for name in value:
            if name not in PARTS:
                self.problem(f"{at}.{name}", f"unknown part (the parts are {', '.join(PARTS)})")
        parts: list[Decimal] = []
        for name in PARTS:
            # Every part is required: a cache price left out would make cache tokens free.
            price = price_of(value.get(name))
            if name not in value:
                self.problem(f"{at}.{name}", "required (write 0 if the model has no such tokens)")
            elif price is None or price < 0:
                self.problem(f"{at}.{name}", f"must be a number >= 0, got {_shown(value[name])}")
            elif price >= _MAX_PRICE:
                self.problem(f"{at}.{name}", f"{price} is too large")
            elif price.quantize(_QUANTUM) != price:
                self.problem(f"{at}.{name}", f"{price} has more than {_PLACES} decimal places (the table's precision)")
            else:
                parts.append(price)
        return Rates(*parts) if len(parts) == len(PARTS) else None
