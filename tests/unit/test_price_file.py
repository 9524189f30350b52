"""bedrock_usage.pricing.price_file: the price file, read exactly (Decimal from the text, never a float),
and every mistake reported at once with its path."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_usage.pricing.price_file import PriceFileError, load_price_file, parse_price_file
from bedrock_usage.pricing.rates import PriceEntry, PriceScope, PriceTable, Rates

TODAY = date(2026, 12, 1)
SHIPPED = Path(__file__).parents[2] / "infra" / "prices" / "bedrock-prices.yaml"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
GOOD = f"""
currency: USD
source: where these numbers come from
effective: 2026-11-01      # optional
prices:
  - model: {SONNET}   # base model ID
    region: "*"
    scope: regional
    tier: standard
    per_million: {{input: 3.30, output: 16.50, cache_read: 0.33, cache_write_5m: 4.125, cache_write_1h: 6.60}}
  - model: {SONNET}
    region: eu-west-1
    scope: global
    per_million: {{input: 3, output: 15, cache_read: 0.3, cache_write_5m: 3.75, cache_write_1h: 6}}
  - model: amazon.nova-micro-v1:0
    region: us-gov-west-1
    scope: regional
    tier: flex
    per_million: {{input: 0.0175, output: 0.07, cache_read: 0.004375, cache_write_5m: 0, cache_write_1h: 0}}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PriceFileError) as raised:
        parse_price_file(text, today=TODAY)
    return list(raised.value.problems)


def entry(fields: str, per_million: str = "{input: 1, output: 2, cache_read: 0, cache_write_5m: 0,"
                                          " cache_write_1h: 0}") -> str:
    return f"currency: USD\nsource: test\nprices:\n  - {{{fields}, per_million: {per_million}}}\n"


def test_good_file_reads_every_number_exactly() -> None:
    table = parse_price_file(GOOD, today=TODAY)
    assert table == PriceTable("USD", "where these numbers come from", date(2026, 11, 1), (
        PriceEntry(SONNET, "*", PriceScope.REGIONAL, "standard",
                   Rates(Decimal("3.30"), Decimal("16.50"), Decimal("0.33"), Decimal("4.125"), Decimal("6.60"))),
        PriceEntry(SONNET, "eu-west-1", PriceScope.GLOBAL, "standard",
                   Rates(Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75"), Decimal(6))),
        PriceEntry("amazon.nova-micro-v1:0", "us-gov-west-1", PriceScope.REGIONAL, "flex",
                   Rates(Decimal("0.0175"), Decimal("0.07"), Decimal("0.004375"), Decimal(0), Decimal(0))),
    ))
    # The text, not a float's nearest value: 0.33 is not 0.330000000000000015543122344752191565930843353271484375.
    assert str(table.entries[0].rates.cache_read) == "0.33"


def test_effective_defaults_to_the_day_of_the_import_and_json_reads_the_same() -> None:
    document = {"currency": "USD", "source": "s", "prices": [
        {"model": SONNET, "region": "*", "scope": "global",
         "per_million": {"input": 3.30, "output": 16.5, "cache_read": 0.33, "cache_write_5m": 4.125,
                         "cache_write_1h": 6.6}}]}
    table = parse_price_file(json.dumps(document), today=TODAY)
    assert table.effective_from == TODAY
    assert table.entries[0].rates.input == Decimal("3.3") and table.entries[0].tier == "standard"
    assert str(table.entries[0].rates.cache_read) == "0.33"


def test_json_file_by_its_suffix(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"currency": "USD", "source": "s", "effective": "2026-01-02", "prices": [
        {"model": SONNET, "region": "*", "scope": "regional",
         "per_million": {"input": 1e-3, "output": 1, "cache_read": 0, "cache_write_5m": 0, "cache_write_1h": 0}}]}))
    table = load_price_file(path, today=TODAY)
    assert table.effective_from == date(2026, 1, 2) and table.entries[0].rates.input == Decimal("0.001")


def test_the_shipped_price_file_is_valid() -> None:
    table = load_price_file(SHIPPED, today=TODAY)
    assert table.currency == "USD" and "aws.amazon.com/bedrock/pricing" in table.source
    assert table.effective_from == TODAY  # no effective: it applies from the import on
    by_key = {(e.model, e.scope): e.rates for e in table.entries}
    assert by_key[(SONNET, PriceScope.GLOBAL)].input == Decimal(3)
    assert by_key[(SONNET, PriceScope.REGIONAL)] == Rates(
        Decimal("3.30"), Decimal("16.50"), Decimal("0.33"), Decimal("4.125"), Decimal("6.60"))
    for e in table.entries:  # the cache ratios
        if e.model.startswith("anthropic."):
            assert e.rates.cache_read == e.rates.input / 10, e.model
            assert e.rates.cache_write_5m == e.rates.input * Decimal("1.25"), e.model
            assert e.rates.cache_write_1h == e.rates.input * 2, e.model
        if e.model.startswith("amazon.nova"):
            assert e.rates.cache_read == e.rates.input / 4 and e.rates.cache_write_5m == 0, e.model


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    found = problems(f"""
currency: EUR
colour: blue
effective: next week
prices:
  - model: {SONNET}
    region: "*"
    scope: regional
    per_million: {{input: 3.30, output: -1, cache_read: "0.33", cache_write_5m: .inf}}
  - model: us.{SONNET}
    region: Europe
    scope: local
    tier: "Fast Tier"
    per_million: {{input: 3, output: 15, cache_read: 0.3, cache_write_5m: 3.75, cache_write_1h: 6, cache_write_2h: 9}}
  - just a string
""")
    assert found == [
        "colour: unknown field (expected currency, source, effective, prices)",
        "currency: must be USD, got 'EUR': costs are counted in US dollars (the Bedrock price list's currency)",
        "source: required: where these prices come from (a page and the day they were read)",
        "effective: must be a date like 2026-11-01, got 'next week'",
        "prices[0].per_million.output: must be a number >= 0, got -1",
        "prices[0].per_million.cache_read: must be a number >= 0, got '0.33'",
        "prices[0].per_million.cache_write_5m: must be a number >= 0, got .inf",
        "prices[0].per_million.cache_write_1h: required (write 0 if the model has no such tokens)",
        f"prices[1].model: 'us.{SONNET}' is not a base model ID: write {SONNET} with scope regional",
        "prices[1].region: must be \"*\" or a region code like us-east-1, got 'Europe'",
        "prices[1].scope: must be regional or global, got 'local'",
        "prices[1].tier: must be a tier name like standard, flex, priority or batch, got 'Fast Tier'",
        "prices[1].per_million.cache_write_2h: unknown part (the parts are input, output, cache_read,"
        " cache_write_5m, cache_write_1h)",
        "prices[2]: must be a mapping with model, region, scope, tier, per_million, got 'just a string'",
    ]


def test_duplicate_prices_are_an_error() -> None:
    rates = "{input: 1, output: 2, cache_read: 0, cache_write_5m: 0, cache_write_1h: 0}"
    found = problems(f"""
currency: USD
source: s
prices:
  - {{model: {SONNET}, region: "*", scope: regional, per_million: {rates}}}
  - {{model: {SONNET}, region: "*", scope: global, per_million: {rates}}}
  - {{model: {SONNET}, region: "*", scope: regional, tier: standard, per_million: {rates}}}
""")
    assert found == [f"prices[2]: the same model, region, scope and tier as prices[0] ({SONNET} * regional standard)"]


@pytest.mark.parametrize(("text", "expected"), [
    (entry(f"model: {SONNET}, region: '*'"), "prices[0].scope: must be regional or global, got None"),
    (entry(f"model: {SONNET}, scope: global"), 'prices[0].region: required: "*" (any region) or a region code'),
    (entry("region: '*', scope: global"), "prices[0].model: required: a base model ID"),
    (entry(f"model: 'arn:aws:bedrock:us-east-1::foundation-model/{SONNET}', region: '*', scope: global"),
     f"is not a base model ID: write {SONNET} with scope regional"),
    (entry("model: 'arn:aws:bedrock:us-east-1:111122223333:provisioned-model/x', region: '*', scope: global"),
     "is not a base model ID (provider.model"),
    (entry(f"model: {SONNET}, region: '*', scope: global", "{input: 1.0000001, output: 2, cache_read: 0,"
           " cache_write_5m: 0, cache_write_1h: 0}"),
     "prices[0].per_million.input: 1.0000001 has more than 6 decimal places (the table's precision)"),
    (entry(f"model: {SONNET}, region: '*', scope: global", "{input: true, output: 2, cache_read: 0,"
           " cache_write_5m: 0, cache_write_1h: 0}"), "prices[0].per_million.input: must be a number >= 0, got True"),
    (entry(f"model: {SONNET}, region: '*', scope: global", "{input: 1e12, output: 2, cache_read: 0,"
           " cache_write_5m: 0, cache_write_1h: 0}"), "must be a number >= 0"),  # YAML 1.1: 1e12 is a string
    (entry(f"model: {SONNET}, region: '*', scope: global", "[1, 2]"),
     "prices[0].per_million: required: a mapping of input, output"),
    (entry(f"model: {SONNET}, region: '*', scope: global, tier: {'x' * 30}"), "prices[0].tier: must be a tier name"),
    ("currency: USD\nsource: s\nprices: []\n", "prices: required: a list of prices"),
    ("currency: USD\nsource: s\n", "prices: required: a list of prices"),
    (f"currency: USD\nsource: '{'s' * 600}'\nprices: []\n", "source: is longer than 512 characters"),
])
def test_each_kind_of_mistake(text: str, expected: str) -> None:
    assert any(expected in p for p in problems(text)), problems(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("prices: [", "not valid YAML"),
    ("- a list", "the price file must be a mapping"),
    ("{\"currency\": \"USD\",", "not valid JSON"),
    ("currency: USD\ncurrency: USD\n", "'currency' is written twice"),
    ('{"currency": "USD", "currency": "EUR"}', "'currency' is written twice"),
    (entry(f"model: {SONNET}, region: '*', scope: global", "{input: 1, input: 2, output: 2, cache_read: 0,"
           " cache_write_5m: 0, cache_write_1h: 0}"), "'input' is written twice"),
])
def test_unreadable_files(text: str, expected: str) -> None:
    found = problems(text)
    assert len(found) == 1 and expected in found[0], found
