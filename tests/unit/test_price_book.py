"""bedrock_usage.pricing.book: what PriceBook.charge charges a call (exact nano-dollars, rounded once),
and which price it picks: effective dating, region over '*', scope and tier fallbacks, provisioned
models, and the never-free fallback policies."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from bedrock_usage.pricing.book import NoPrices, PriceBook, PriceRow
from bedrock_usage.pricing.model_ids import parse_model_id
from bedrock_usage.pricing.rates import Charge, PriceScope, PriceStatus, Rates, Tokens

SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
OPUS = "anthropic.claude-opus-4-1-20250805-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
NOVA = "amazon.nova-pro-v1:0"
MICRO = "amazon.nova-micro-v1:0"
REGIONAL, GLOBAL = PriceScope.REGIONAL, PriceScope.GLOBAL
DAY = date(2026, 11, 15)
MILLION = Tokens(input=1_000_000)


def rates(input_: str, output: str = "0", cache_read: str = "0", cw5: str = "0", cw1: str = "0") -> Rates:
    return Rates(Decimal(input_), Decimal(output), Decimal(cache_read), Decimal(cw5), Decimal(cw1))


def row(model: str, input_: str, output: str = "0", *, region: str = "*", scope: PriceScope = REGIONAL,
        tier: str = "standard", since: date = date(2026, 1, 1)) -> PriceRow:
    return PriceRow(model, region, scope, tier, since, rates(input_, output))


def charge(book: PriceBook, model_id: str, tokens: Tokens = MILLION, *, region: str = "us-east-1",
           tier: str = "standard", day: date = DAY) -> Charge:
    return book.charge(parse_model_id(model_id), region, tier, day, tokens)


def test_every_part_priced_exactly_in_nanos() -> None:
    book = PriceBook([PriceRow(SONNET, "*", REGIONAL, "standard", date(2026, 1, 1),
                               rates("3.30", "16.50", "0.33", "4.125", "6.60"))], "provider")
    tokens = Tokens(input=1234, output=567, cache_read=8901, cache_write_5m=2345, cache_write_1h=678)
    # 1234*3.30 + 567*16.50 + 8901*0.33 + 2345*4.125 + 678*6.60 = 30 512.955 $/M, times 1000 nanos
    assert charge(book, f"us.{SONNET}", tokens) == Charge(30_512_955, PriceStatus.PRICED, SONNET, REGIONAL)


def test_rounded_once_per_call_half_up() -> None:
    book = PriceBook([row(MICRO, "0.035", "0.14")], "provider")
    assert charge(book, MICRO, Tokens(input=1)).nanos == 35  # $0.035 per million: 35 nano-dollars a token
    # $0.0004 per million: 0.4 nanos a token. Three parts of 0.4 make 1 (rounded once per call), not 0
    # (rounded per part).
    book = PriceBook([PriceRow(MICRO, "*", REGIONAL, "standard", date(2026, 1, 1),
                               rates("0.0004", "0.0004", "0.0004"))], "provider")
    assert charge(book, MICRO, Tokens(input=1)).nanos == 0
    assert charge(book, MICRO, Tokens(input=1, output=1, cache_read=1)).nanos == 1  # 1.2 → 1
    book = PriceBook([row(MICRO, "0.0005")], "provider")
    assert charge(book, MICRO, Tokens(input=1)).nanos == 1  # 0.5 → 1 (half up)


def test_the_price_in_force_on_the_call_day() -> None:
    book = PriceBook([row(SONNET, "3", since=date(2026, 1, 1)), row(SONNET, "4", since=date(2026, 11, 1)),
                      row(SONNET, "5", since=date(2026, 12, 1))], "provider")
    assert charge(book, SONNET, day=date(2026, 10, 31)).nanos == 3_000_000_000
    assert charge(book, SONNET, day=date(2026, 11, 1)).nanos == 4_000_000_000
    assert charge(book, SONNET, day=date(2026, 11, 30)).nanos == 4_000_000_000
    assert charge(book, SONNET, day=date(2027, 3, 1)).nanos == 5_000_000_000
    # Before the first price: the first price (a backfill is not charged the fallback).
    assert charge(book, SONNET, day=date(2025, 6, 1)) == Charge(3_000_000_000, PriceStatus.PRICED, SONNET, REGIONAL)


def test_a_regions_own_row_beats_any_region() -> None:
    book = PriceBook([row(NOVA, "0.80"), row(NOVA, "1.05", region="eu-west-3")], "provider")
    assert charge(book, NOVA, region="eu-west-3").nanos == 1_050_000_000
    assert charge(book, f"eu.{NOVA}", region="eu-west-1").nanos == 800_000_000


def test_a_region_without_a_row_and_no_star_is_unpriced() -> None:
    book = PriceBook([row(NOVA, "0.80", region="us-east-1"), row(MICRO, "0.035")], "provider")
    assert charge(book, NOVA, region="us-east-1").status == PriceStatus.PRICED
    assert charge(book, MICRO, region="eu-west-1").status == PriceStatus.PRICED
    # Nova Pro in eu-west-1 has no price: the fallback, Amazon's dearest model — Nova Pro itself, at its
    # dearest known price since it has no row for eu-west-1 either.
    assert charge(book, NOVA, region="eu-west-1") == Charge(800_000_000, PriceStatus.FALLBACK, NOVA, REGIONAL)


def test_scope_asked_for_else_the_other_scope() -> None:
    book = PriceBook([row(SONNET, "3", scope=GLOBAL), row(SONNET, "3.30"), row(OPUS, "15")], "provider")
    assert charge(book, f"global.{SONNET}") == Charge(3_000_000_000, PriceStatus.PRICED, SONNET, GLOBAL)
    assert charge(book, f"us.{SONNET}") == Charge(3_300_000_000, PriceStatus.PRICED, SONNET, REGIONAL)
    # A global call with only a regional price pays the regional one (never less than global).
    assert charge(book, f"global.{OPUS}") == Charge(15_000_000_000, PriceStatus.PRICED, OPUS, REGIONAL)


def test_scope_beats_region() -> None:
    # A global call in eu-west-1: the global '*' price, not the regional price of eu-west-1.
    book = PriceBook([row(SONNET, "3", scope=GLOBAL), row(SONNET, "3.50", region="eu-west-1")], "provider")
    assert charge(book, f"global.{SONNET}", region="eu-west-1").nanos == 3_000_000_000


def test_tier_asked_for_else_standard() -> None:
    book = PriceBook([row(NOVA, "0.80"), row(NOVA, "0.40", tier="flex"), row(NOVA, "0.50", scope=GLOBAL, tier="flex")],
                     "provider")
    assert charge(book, NOVA, tier="flex").nanos == 400_000_000
    assert charge(book, f"global.{NOVA}", tier="flex").nanos == 500_000_000
    assert charge(book, NOVA, tier="priority") == Charge(800_000_000, PriceStatus.PRICED, NOVA, REGIONAL)
    # The tier beats the scope: a global flex call with only a regional flex row pays that (half price),
    # not the global standard price.
    book = PriceBook([row(NOVA, "0.80", scope=GLOBAL), row(NOVA, "0.40", tier="flex")], "provider")
    assert charge(book, f"global.{NOVA}", tier="flex") == Charge(400_000_000, PriceStatus.PRICED, NOVA, REGIONAL)


def test_provisioned_throughput_costs_nothing_per_call() -> None:
    book = PriceBook([row(SONNET, "3")], "provider")
    assert charge(book, "arn:aws:bedrock:us-east-1:111122223333:provisioned-model/abc123") == Charge(
        0, PriceStatus.PROVISIONED, None, REGIONAL)
    assert PriceBook([], "provider").charge(  # even with no prices at all
        parse_model_id("arn:aws:bedrock:us-east-1:111122223333:provisioned-model/abc123"), "us-east-1",
        "standard", DAY, MILLION).nanos == 0


BOOK_ROWS = [row(SONNET, "3", "15"), row(OPUS, "15", "75"), row(HAIKU, "0.25", "1.25"),
             row(NOVA, "0.80", "3.20"), row(MICRO, "0.035", "0.14"), row("meta.llama3-3-70b-instruct-v1:0", "0.72",
                                                                        "0.72")]


@pytest.mark.parametrize(("model_id", "fallback"), [
    ("anthropic.claude-unknown-v9:0", OPUS),  # the dearest Anthropic model
    ("us.amazon.nova-mega-v1:0", NOVA),  # the dearest Amazon model
    ("mistral.mistral-large-2407-v1:0", OPUS),  # no Mistral price at all: the dearest overall
    ("arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/unresolved", OPUS),
    ("arn:aws:bedrock:us-east-1:111122223333:custom-model/amazon.nova-lite-v1:0:300k/abc", NOVA),
    ("arn:aws:bedrock:us-east-1:111122223333:imported-model/abc", OPUS),
    ("!!garbage!!", OPUS),
])
def test_provider_fallback(model_id: str, fallback: str) -> None:
    book = PriceBook(BOOK_ROWS, "provider")
    expected = {OPUS: 15_000_000_000, NOVA: 800_000_000}[fallback]
    assert charge(book, model_id) == Charge(expected, PriceStatus.FALLBACK, fallback, REGIONAL)


def test_dearest_and_explicit_fallbacks() -> None:
    assert charge(PriceBook(BOOK_ROWS, "dearest"), "amazon.nova-mega-v1:0") == Charge(
        15_000_000_000, PriceStatus.FALLBACK, OPUS, REGIONAL)
    assert charge(PriceBook(BOOK_ROWS, SONNET), "amazon.nova-mega-v1:0") == Charge(
        3_000_000_000, PriceStatus.FALLBACK, SONNET, REGIONAL)
    # A fallback model with no price of its own: the dearest (never free).
    assert charge(PriceBook(BOOK_ROWS, "amazon.nope-v1:0"), "amazon.nova-mega-v1:0").price_model == OPUS


def test_fallback_is_charged_as_the_fallback_model_with_the_same_rules() -> None:
    rows = [row(OPUS, "15", "75"), row(OPUS, "16.50", "82.50", region="eu-west-1"),
            row(OPUS, "7.50", "37.50", tier="batch")]
    book = PriceBook(rows, "provider")
    assert charge(book, "anthropic.claude-new-v1:0", region="eu-west-1").nanos == 16_500_000_000
    assert charge(book, "anthropic.claude-new-v1:0", tier="batch").nanos == 7_500_000_000


def test_fallback_model_without_a_row_for_the_region_is_charged_its_dearest_price() -> None:
    book = PriceBook([row(OPUS, "15", "75", region="us-east-1"), row(OPUS, "16.50", "82.50", region="us-west-2")],
                     "provider")
    assert charge(book, "anthropic.claude-new-v1:0", region="eu-west-1") == Charge(
        16_500_000_000, PriceStatus.FALLBACK, OPUS, REGIONAL)


def test_dearness_prefers_standard_tier_rows() -> None:
    # Priority prices are dearer but do not make the model the fallback; standard rows decide.
    book = PriceBook([row(SONNET, "3", "15"), row(SONNET, "30", "150", tier="priority"), row(OPUS, "15", "75")],
                     "provider")
    assert book.fallback_model("anthropic") == OPUS


def test_empty_table_never_charges_zero() -> None:
    book = PriceBook([], "provider")
    assert book.empty
    with pytest.raises(NoPrices, match="price table is empty"):
        charge(book, SONNET)


def test_ties_are_broken_the_same_way_every_time() -> None:
    a, b = "anthropic.a-v1:0", "anthropic.b-v1:0"
    assert PriceBook([row(a, "1", "2"), row(b, "2", "1")], "provider").fallback_model("anthropic") == b
    assert PriceBook([row(b, "2", "1"), row(a, "1", "2")], "provider").fallback_model("anthropic") == b
