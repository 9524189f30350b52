"""Price List products -> per-million rates by model, region, scope and tier: classification of every
usage-type convention, what is skipped and why, and the rules that assemble a table (no AWS client)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bedrock_usage.pricing.price_list import build_table
from bedrock_usage.pricing.price_list_rows import PriceRow, Skip, classify
from bedrock_usage.pricing.rates import PriceScope, Rates

PAGES = Path(__file__).parents[1] / "events" / "pricing"
DAY = date(2025, 11, 3)


def product(usagetype: str, usd: str, *, unit: str = "1K tokens", model: str | None = "Nova Pro",
            region: str | None = "us-east-1", **attributes: Any) -> str:
    """A PriceList document as GetProducts returns it: a JSON string."""
    attrs: dict[str, Any] = {"usagetype": usagetype, "feature": "On-demand Inference", **attributes}
    if model is not None:
        attrs["model"] = model
    if region is not None:
        attrs["regionCode"] = region
    return json.dumps({
        "product": {"attributes": attrs, "sku": "SKU1"}, "serviceCode": "AmazonBedrock",
        "terms": {"OnDemand": {"SKU1.T": {"priceDimensions": {"SKU1.T.R": {
            "unit": unit, "beginRange": "0", "endRange": "Inf", "pricePerUnit": {"USD": usd}}}}}},
        "publicationDate": "2025-10-01T00:00:00Z"})


def marketplace(usagetype: str, usd: str, name: str = "Claude Sonnet 4.5") -> str:
    doc = json.loads(product(usagetype, usd, unit="1M tokens", model=None, region=None))
    doc["product"]["attributes"]["servicename"] = f"{name} (Amazon Bedrock Edition)"
    return json.dumps(doc)


def row(document: str) -> PriceRow:
    result = classify(document)
    assert isinstance(result, PriceRow), result
    return result


@pytest.mark.parametrize(("usagetype", "part", "scope", "tier"), [
    ("USE1-MP:USE1_InputTokenCount-Units", "input", PriceScope.REGIONAL, "standard"),
    ("USE1-MP:USE1_OutputTokenCount_Global-Units", "output", PriceScope.GLOBAL, "standard"),
    ("USE1-MP:USE1_CacheReadInputTokenCount-Units", "cache_read", PriceScope.REGIONAL, "standard"),
    ("USE1-MP:USE1_CacheWriteInputTokenCount_Global-Units", "cache_write_5m", PriceScope.GLOBAL, "standard"),
    ("USE1-MP:USE1_CacheWrite1hInputTokenCount-Units", "cache_write_1h", PriceScope.REGIONAL, "standard"),
    ("USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units", "cache_write_1h", PriceScope.GLOBAL, "standard"),
    ("USE1-MP:USE1_InputTokenCount_Global_Batch-Units", "input", PriceScope.GLOBAL, "batch"),
    ("USE1-MP:USE1_InputTokenCount_LatencyOptimized-Units", "input", PriceScope.REGIONAL, "latency-optimized"),
    ("USE1-MP:USE1_input_tokens_standard-Units", "input", PriceScope.REGIONAL, "standard"),
    ("USE1-MP:USE1_output_tokens_global_standard-Units", "output", PriceScope.GLOBAL, "standard"),
    ("USE1-MP:USE1_cache_read_tokens_global_standard-Units", "cache_read", PriceScope.GLOBAL, "standard"),
    ("USE1-MP:USE1_cache_write_tokens_1h_global_standard-Units", "cache_write_1h", PriceScope.GLOBAL, "standard"),
    ("USE1-MP:USE1_MillionBatchInputTokens-Units", "input", PriceScope.REGIONAL, "batch"),
])
def test_marketplace_usage_types_of_both_conventions(usagetype: str, part: str, scope: PriceScope,
                                                      tier: str) -> None:
    priced = row(marketplace(usagetype, "3.3000000000"))
    assert (priced.part, priced.scope, priced.tier) == (part, scope, tier)
    assert priced.model == "anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert priced.region == "us-east-1"  # from the USE1 prefix: these rows carry no regionCode here
    assert priced.usd_per_million == Decimal("3.3")  # per 1M already


@pytest.mark.parametrize(("usagetype", "inference", "part", "scope", "tier"), [
    ("USE1-NovaPro-input-tokens", "Input tokens", "input", PriceScope.REGIONAL, "standard"),
    ("USE1-NovaPro-output-tokens-flex", "Output tokens flex", "output", PriceScope.REGIONAL, "flex"),
    ("USE1-NovaPro-input-tokens-priority", "Input tokens priority", "input", PriceScope.REGIONAL, "priority"),
    # cache rows may say "Input tokens": the usage type decides the part
    ("USE1-NovaPro-cache-read-input-token-count", "Input tokens", "cache_read", PriceScope.REGIONAL, "standard"),
    ("USE1-NovaPro-input-tokens-cross-region-global", "Input tokens", "input", PriceScope.GLOBAL, "standard"),
    ("USE1-Nova2.0Pro-text-input-tokens-priority-cross-region-global", "Input tokens", "input",
     PriceScope.GLOBAL, "priority"),
    # the batch rate of a global product says "Input tokens": the usage type's "batch" decides the tier
    ("USE1-Claude4Sonnet-input-tokens-cross-region-global-batch", "Input tokens", "input", PriceScope.GLOBAL,
     "batch"),
    ("USE1-Claude4Sonnet-cache-write-input-token-count-cross-region-global", "", "cache_write_5m",
     PriceScope.GLOBAL, "standard"),
    # no part in the usage type: inferenceType gives it
    ("USE1-NovaPro-tokens", "Prompt cache read input tokens", "cache_read", PriceScope.REGIONAL, "standard"),
])
def test_amazon_bedrock_usage_types(usagetype: str, inference: str, part: str, scope: PriceScope,
                                    tier: str) -> None:
    priced = row(product(usagetype, "0.0008000000", inferenceType=inference))
    assert (priced.part, priced.scope, priced.tier) == (part, scope, tier)
    assert priced.usd_per_million == Decimal("0.8")  # 1K tokens x 1000


def test_the_tier_comes_from_feature_service_tier_or_a_latency_optimized_title() -> None:
    assert row(product("USE1-NovaPro-input-tokens", "0.0004", feature="Batch Inference")).tier == "batch"
    assert row(product("USE1-NovaPro-input-tokens", "0.0004", service_tier="flex")).tier == "flex"
    optimized = row(product("USE2-NovaProLatOpt-input-tokens", "0.001", model="Nova Pro Latency Optimized",
                            region="us-east-2"))
    assert (optimized.model, optimized.tier) == ("amazon.nova-pro-v1:0", "latency-optimized")


@pytest.mark.parametrize(("document", "reason"), [
    (product("USE1-NovaPro-input-tokens-flex", "0.0004", service_tier="priority"), "ambiguous tier"),
    (product("USE1-MP:USE1_Reserved_1Month_InputTPM_Geo-Units", "0.198"), "reserved or provisioned capacity"),
    (product("USE1-NovaPro-ProvisionedThroughput-NoCommit-ModelUnits", "24.5", unit="hour"),
     "reserved or provisioned capacity"),
    (product("USE1-NovaPro-input-tokens-custom-model", "0.0008", feature="Model Customization"),
     "model customization"),
    (product("USE1-NovaPro-input-image-token-count", "0.001", inferenceType="Input Image Token Count"),
     "not text tokens (image, audio, video, speech)"),
    (product("USE1-Guardrail-ContentPolicyTextUnitsConsumed", "0.15", model=None), "not a per-token price"),
    (product("USE1-MP:USE1_input_tokens_long_ctx_global_standard-Units", "6"),
     "long-context rate (not in the price table)"),
    (product("USE1-MP:USE1_cache_write_tokens_30m_standard-Units", "5"),
     "30-minute cache write (not in the price table)"),
    (product("USE1-qwen.qwen3-32b-mantle-input-tokens-standard", "0.00015", model="Qwen3 32B"),
     "bedrock-mantle usage type"),
    (product("USE1-Thing-input-tokens", "0.001", model=None), "no model name"),
    (product("XX9-NovaPro-input-tokens", "0.0008", region=None), "no region"),
    (product("USE1-NovaPro-input-tokens", "0.0008", unit="1B tokens"), "unit not per 1K or 1M tokens"),
    (product("USE1-NovaPro-input-tokens", "not-a-number"), "unparsable price"),
    (product("USE1-NovaPro-input-tokens", "0.0000000000"), "zero price"),
    ("<html>404</html>", "not a Price List product"),
])
def test_what_cannot_be_priced_is_skipped_with_its_reason(document: str, reason: str) -> None:
    assert classify(document) == Skip(reason)


def test_an_unmapped_title_is_skipped_and_named() -> None:
    assert classify(marketplace("USE1-MP:USE1_InputTokenCount-Units", "9", "Claude Mythical 9")) == Skip(
        "model title not in the mapping table", "Claude Mythical 9")


def test_several_price_dimensions_are_not_guessed_between() -> None:
    doc = json.loads(product("USE1-NovaPro-input-tokens", "0.0008"))
    term = doc["terms"]["OnDemand"]["SKU1.T"]["priceDimensions"]
    term["SKU1.T.R2"] = {**term["SKU1.T.R"], "beginRange": "1000000", "pricePerUnit": {"USD": "0.0006"}}
    assert classify(json.dumps(doc)) == Skip("several price dimensions (volume tiers)")


def table(*documents: str) -> Any:
    return build_table((("AmazonBedrock", d) for d in documents), endpoint="us-east-1", effective_from=DAY)


def test_conflicting_prices_keep_the_higher_and_are_reported() -> None:
    result = table(product("USE1-NovaPro-input-tokens", "0.0008"),
                   product("USE1-NovaPro-text-input-tokens", "0.00088"),
                   product("USE1-NovaPro-input-tokens", "0.0008"),  # an equal duplicate is no conflict
                   product("USE1-NovaPro-output-tokens", "0.0032"))
    (entry,) = result.table.entries
    assert entry.rates.input == Decimal("0.88")
    assert len(result.conflicts) == 1 and "$0.8" in result.conflicts[0] and "kept $0.88" in result.conflicts[0]


def test_a_part_the_model_never_has_is_zero_but_one_it_has_elsewhere_makes_the_group_incomplete() -> None:
    result = table(product("USE1-NovaPro-input-tokens", "0.0008"), product("USE1-NovaPro-output-tokens", "0.0032"),
                   product("USE1-NovaPro-cache-read-input-token-count", "0.0002"),
                   product("USE1-NovaPro-input-tokens-priority", "0.0014"),
                   product("USE1-NovaPro-output-tokens-priority", "0.0056"))
    (entry,) = result.table.entries
    assert (entry.tier, entry.rates) == ("standard", Rates(Decimal("0.8"), Decimal("3.2"), Decimal("0.2"),
                                                           Decimal(0), Decimal(0)))
    assert result.incomplete == ["amazon.nova-pro-v1:0 us-east-1 regional priority: no cache_read price"
                                 " (the model has one elsewhere)"]


def test_an_embedding_model_without_output_is_priced_but_nothing_without_input() -> None:
    result = table(product("USE1-TitanEmbed-input-tokens", "0.00002", model="Claude 3 Haiku"),
                   product("USE1-NovaPro-cache-read-input-token-count", "0.0002"))
    (entry,) = result.table.entries
    assert entry.rates.output == 0 and entry.rates.input == Decimal("0.02")
    assert result.incomplete == ["amazon.nova-pro-v1:0 us-east-1 regional standard: no input price"
                                 " (the model has one elsewhere)"]


def test_rates_are_rounded_up_to_the_tables_six_decimals() -> None:
    (entry,) = table(product("USE1-NovaPro-input-tokens", "0.0000000012"),
                     product("USE1-NovaPro-output-tokens", "0.0032")).table.entries
    assert entry.rates.input == Decimal("0.000002")  # 0.0000012 per million, never down to 0.000001


def test_the_recorded_pages_make_the_expected_table() -> None:
    documents = [(path.name, doc) for path in sorted(PAGES.glob("*.json"))
                 for doc in json.loads(path.read_text())["PriceList"]]
    result = build_table(documents, endpoint="us-east-1", effective_from=DAY)
    prices = {(e.model, e.region, e.scope.value, e.tier): e.rates for e in result.table.entries}
    d = Decimal
    assert prices[("anthropic.claude-sonnet-4-5-20250929-v1:0", "us-east-1", "regional", "standard")] == Rates(
        d("3.3"), d("16.5"), d("0.33"), d("4.125"), d("6.6"))
    assert prices[("anthropic.claude-sonnet-4-5-20250929-v1:0", "us-east-1", "global", "standard")] == Rates(
        d("3"), d("15"), d("0.3"), d("3.75"), d("6"))
    assert prices[("anthropic.claude-opus-4-5-20251101-v1:0", "us-east-1", "global", "standard")] == Rates(
        d("5"), d("25"), d("0.5"), d("6.25"), d("10"))
    # AmazonBedrockService's global Claude Sonnet 4: no 1-hour cache writes anywhere -> 0
    assert prices[("anthropic.claude-sonnet-4-20250514-v1:0", "us-east-1", "global", "standard")] == Rates(
        d("3"), d("15"), d("0.3"), d("3.75"), d(0))
    assert prices[("amazon.nova-pro-v1:0", "eu-west-1", "regional", "standard")].input == d("1.04")
    assert {tier for (model, _, _, tier) in prices if model == "qwen.qwen3-32b-v1:0"} == {
        "standard", "flex", "priority", "batch"}
    assert prices[("qwen.qwen3-32b-v1:0", "us-east-1", "regional", "priority")].output == d("1.05")
    assert prices[("meta.llama3-1-70b-instruct-v1:0", "us-east-2", "regional", "latency-optimized")].input == d(
        "0.99")
    assert len(prices) == 13 and result.products == 57
    assert result.unmapped == {"Claude Mythical 9": 1, "Titan Text Embeddings V2": 1}
    assert result.skipped["bedrock-mantle usage type"] == 1 and result.skipped["long-context rate (not in the"
                                                                                " price table)"] == 1
    assert len(result.incomplete) == 4 and not result.conflicts
    assert result.table.currency == "USD" and result.table.effective_from == DAY
    assert "published 2025-10-30T20:16:15Z" in result.table.source
