"""One AWS Price List product (a `GetProducts` PriceList document) -> one classified per-token price, or
the reason it is not one. Pure: no AWS client, tested on recorded documents (tests/events/pricing/).

What a row is, read from its attributes (confirmed on published Price List data):
- part: from the usage type first ("…-input-tokens", "…_OutputTokenCount-Units",
  "…-cache-read-input-token-count", "…_CacheWrite1hInputTokenCount…", "…_cache_write_tokens_1h_…"), else
  from `inferenceType` ("Input tokens", "Prompt cache read input tokens"). `inferenceType` alone is not
  enough: cache rows of some models carry "Input tokens", and some cache-write rows carry none.
- scope: `global` when the usage type (or `inferenceType`) says global ("…-cross-region-global",
  "…_Global-Units", "…_global_standard-Units"): the rate of `global.` profiles. Everything else is
  `regional`: the in-Region rate, which geographic profiles (`us.`, `eu.`…) are billed at too.
- tier: flex, priority, batch or latency-optimized from the usage type, `inferenceType`, `feature`
  ("Batch Inference"), `service_tier`, or a title ending in "Latency Optimized"; standard otherwise. Two
  different tiers named at once: skipped (ambiguous), never picked.
- region: `regionCode`, else the usage type's Region prefix (USE1-, EU-…).
- price: the single OnDemand price dimension in USD; "1K tokens" x 1000, "1M tokens" as is. Several
  dimensions (volume tiers), another unit, no USD, or a zero price: skipped. A zero would make a model free.

Skipped on purpose (the price table has no column for them, or they are not per-token): reserved and
provisioned capacity, model customization, images/audio/video/speech, long-context rates, 30-minute cache
writes, and bedrock-mantle usage types (the OpenAI-compatible endpoint's meters, which repeat the classic
usage types' rates under an ID without its version).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bedrock_usage.pricing import price_list_titles
from bedrock_usage.pricing.rates import STANDARD_TIER, PriceScope

TIERS = (STANDARD_TIER, "flex", "priority", "batch", "latency-optimized")

_PREFIX = re.compile(r"^([A-Z]{2,4}[0-9]?)-(?:MP:[A-Z0-9]+_)?")
# The usage-type Region prefixes (AWS billing codes), for rows without a `regionCode`.
REGION_PREFIXES: Mapping[str, str] = {
    "USE1": "us-east-1", "USE2": "us-east-2", "USW1": "us-west-1", "USW2": "us-west-2",
    "UGW1": "us-gov-west-1", "UGE1": "us-gov-east-1", "CAN1": "ca-central-1", "SAE1": "sa-east-1",
    "EU": "eu-west-1", "EUW2": "eu-west-2", "EUW3": "eu-west-3", "EUC1": "eu-central-1", "EUC2": "eu-central-2",
    "EUN1": "eu-north-1", "EUS1": "eu-south-1", "EUS2": "eu-south-2", "APN1": "ap-northeast-1",
    "APN2": "ap-northeast-2", "APN3": "ap-northeast-3", "APS1": "ap-southeast-1", "APS2": "ap-southeast-2",
    "APS3": "ap-south-1", "APS4": "ap-southeast-3", "APS5": "ap-south-2", "MEC1": "me-central-1",
    "MES1": "me-south-1", "AFS1": "af-south-1", "ILC1": "il-central-1",
}
_PER_MILLION = {"1k tokens": Decimal(1000), "1m tokens": Decimal(1), "million tokens": Decimal(1)}
_CAPACITY = {"reserved", "tpm", "provisioned", "throughput", "commit"}
_CUSTOMIZATION = {"custom", "customization", "training", "storage"}
_NON_TEXT = {"image", "images", "audio", "video", "speech"}


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One per-token price of a model, in USD per million tokens."""

    title: str
    model: str
    region: str
    scope: PriceScope
    tier: str
    part: str  # one of PARTS
    usd_per_million: Decimal
    usagetype: str
    published: str = ""  # the document's publicationDate


@dataclass(frozen=True, slots=True)
class Skip:
    """Why a product is not a price of the table. `title`: set when the reason is an unmapped title."""

    reason: str
    title: str | None = None


def classify(document: str | Mapping[str, Any]) -> PriceRow | Skip:
    """A PriceList entry (a JSON string, as GetProducts returns them, or its parsed form)."""
    try:
        doc = json.loads(document) if isinstance(document, str) else document
        attributes: Mapping[str, str] = doc["product"]["attributes"]
    except (ValueError, TypeError, KeyError):
        return Skip("not a Price List product")
    usagetype = str(attributes.get("usagetype") or "")
    words = _words(usagetype)
    inference = _words(str(attributes.get("inferenceType") or ""), usage=False)
    feature = str(attributes.get("feature") or "").lower()
    if words & _CAPACITY or any(w in feature for w in ("provisioned", "reserved")):
        return Skip("reserved or provisioned capacity")
    if words & _CUSTOMIZATION or any(w in feature for w in ("customization", "training")):
        return Skip("model customization")
    if (words | inference) & _NON_TEXT:
        return Skip("not text tokens (image, audio, video, speech)")
    part = _part(words) or _part(inference)
    if part is None:
        return Skip("not a per-token price")
    if "long" in words and ({"ctx", "context"} & words):
        return Skip("long-context rate (not in the price table)")
    if part == "cache_write_30m":
        return Skip("30-minute cache write (not in the price table)")
    if "mantle" in words:
        return Skip("bedrock-mantle usage type")
    title = price_list_titles.title_of(attributes)
    if title is None:
        return Skip("no model name")
    title, latency_optimized = price_list_titles.split_latency_optimized(title)
    model = price_list_titles.model_id(title)
    if model is None:
        return Skip("model title not in the mapping table", title)
    region = _region(attributes, usagetype)
    if region is None:
        return Skip("no region")
    tier = _tier(words | inference, feature, str(attributes.get("service_tier") or ""), latency_optimized)
    if tier is None:
        return Skip("ambiguous tier")
    price = _usd_per_million(doc)
    if isinstance(price, Skip):
        return price
    scope = PriceScope.GLOBAL if "global" in (words | inference) else PriceScope.REGIONAL
    return PriceRow(title, model, region, scope, tier, part, price, usagetype, str(doc.get("publicationDate") or ""))


def _words(text: str, *, usage: bool = True) -> frozenset[str]:
    """"USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units" -> {cache, write, 1h, input, token, count,
    global}; kebab, snake and CamelCase spellings all give the same words."""
    if usage:
        text = _PREFIX.sub("", text)
        text = re.sub(r"-Units$", "", text)
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).lower()
    text = re.sub(r"(cache)(read|write)", r"\1_\2", text)
    text = re.sub(r"(write)(1h|5m|30m)", r"\1_\2", text)
    return frozenset(w for w in re.split(r"[^a-z0-9]+", text) if w)


def _part(words: frozenset[str]) -> str | None:
    if "cache" in words and "read" in words:
        return "cache_read"
    if "cache" in words and "write" in words:
        if "1h" in words:
            return "cache_write_1h"
        return "cache_write_30m" if "30m" in words else "cache_write_5m"
    if "input" in words:
        return "input"
    if "output" in words or "response" in words:
        return "output"
    return None


def _tier(words: frozenset[str], feature: str, service_tier: str, latency_optimized: bool) -> str | None:
    named: set[str] = {tier for tier in ("flex", "priority", "batch") if tier in words}
    if "batch" in feature:
        named.add("batch")
    if latency_optimized or ("latency" in words and "optimized" in words) or "latency optimized" in feature:
        named.add("latency-optimized")
    declared = service_tier.strip().lower().replace("_", "-")
    if declared in TIERS and declared != STANDARD_TIER:
        named.add(declared)
    if len(named) > 1:
        return None
    return named.pop() if named else STANDARD_TIER


def _region(attributes: Mapping[str, str], usagetype: str) -> str | None:
    code = str(attributes.get("regionCode") or "").strip()
    if code:
        return code
    prefix = _PREFIX.match(usagetype)
    return REGION_PREFIXES.get(prefix.group(1)) if prefix else None


def _usd_per_million(doc: Mapping[str, Any]) -> Decimal | Skip:
    terms = (doc.get("terms") or {}).get("OnDemand") or {}
    dimensions = [d for term in terms.values() for d in (term.get("priceDimensions") or {}).values()]
    if not dimensions:
        return Skip("no on-demand price")
    if len(dimensions) > 1:
        return Skip("several price dimensions (volume tiers)")
    (dimension,) = dimensions
    factor = _PER_MILLION.get(" ".join(str(dimension.get("unit") or "").lower().split()))
    if factor is None:
        return Skip("unit not per 1K or 1M tokens")
    usd = (dimension.get("pricePerUnit") or {}).get("USD")
    if usd is None:
        return Skip("no USD price")
    try:
        price = Decimal(str(usd))
    except InvalidOperation:
        return Skip("unparsable price")
    if not price.is_finite() or price < 0:
        return Skip("unparsable price")
    if price == 0:
        return Skip("zero price")
    return price * factor


def usd_text(value: Decimal) -> str:
    """$3.3 for Decimal("3.300000"): a rate as an admin reads it."""
    text = format(value, "f")
    return "$" + (text.rstrip("0").rstrip(".") if "." in text else text)
