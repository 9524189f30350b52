"""How the AWS Price List names Bedrock models, and the Bedrock model IDs those names stand for.

The Price List carries no model ID (aws/aws-sdk-go-v2#3397): `AmazonBedrock` and `AmazonBedrockService` rows
name the model in the `model` attribute ("Claude 3 Haiku", "Nova Pro", "Llama 3.1 405B"),
`AmazonBedrockFoundationModels` (Marketplace) rows only in `servicename` ("Claude Sonnet 4.5 (Amazon
Bedrock Edition)"). Deriving an ID from a title by rule is how prices land on the wrong model, so this is an
explicit table: a title not in it is skipped and reported (`bedrockctl prices sync` lists it), never guessed.

To add a model: find its title in the sync's "unmapped" list and its ID in `aws bedrock
list-foundation-models`, and add the pair here. Titles are compared after `title_of` (the Marketplace suffix
dropped, spaces collapsed), case-sensitively.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_EDITION = re.compile(r"\s*\(Amazon Bedrock Edition\)\s*$", re.IGNORECASE)
# A title naming the latency-optimized variant of a model ("Nova Pro Latency Optimized"): the tier, not a model.
_LATENCY_OPTIMIZED = re.compile(r"\s+latency[ -]optimized$", re.IGNORECASE)

# Price List title -> base model ID. Only pairs whose ID is confirmed (Bedrock's model catalogue) are listed.
MODEL_IDS: Mapping[str, str] = {
    # Anthropic: older generations in AmazonBedrock, newer in AmazonBedrockFoundationModels (Marketplace)
    # and a few (e.g. "Claude Sonnet 4") also in AmazonBedrockService.
    "Claude Instant": "anthropic.claude-instant-v1",
    "Claude 2.0": "anthropic.claude-v2",
    "Claude 2.1": "anthropic.claude-v2:1",
    "Claude 3 Haiku": "anthropic.claude-3-haiku-20240307-v1:0",
    "Claude 3 Sonnet": "anthropic.claude-3-sonnet-20240229-v1:0",
    "Claude 3 Opus": "anthropic.claude-3-opus-20240229-v1:0",
    "Claude 3.5 Haiku": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "Claude 3.5 Sonnet": "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "Claude 3.5 Sonnet v2": "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "Claude 3.7 Sonnet": "anthropic.claude-3-7-sonnet-20250219-v1:0",
    "Claude Sonnet 4": "anthropic.claude-sonnet-4-20250514-v1:0",
    "Claude Opus 4": "anthropic.claude-opus-4-20250514-v1:0",
    "Claude Opus 4.1": "anthropic.claude-opus-4-1-20250805-v1:0",
    "Claude Sonnet 4.5": "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "Claude Haiku 4.5": "anthropic.claude-haiku-4-5-20251001-v1:0",
    "Claude Opus 4.5": "anthropic.claude-opus-4-5-20251101-v1:0",
    "Claude Opus 4.6": "anthropic.claude-opus-4-6-v1",
    # Amazon
    "Nova Micro": "amazon.nova-micro-v1:0",
    "Nova Lite": "amazon.nova-lite-v1:0",
    "Nova Pro": "amazon.nova-pro-v1:0",
    "Nova Premier": "amazon.nova-premier-v1:0",
    "Nova 2.0 Lite": "amazon.nova-2-lite-v1:0",
    # Meta
    "Llama 3 8B": "meta.llama3-8b-instruct-v1:0",
    "Llama 3 70B": "meta.llama3-70b-instruct-v1:0",
    "Llama 3.1 8B": "meta.llama3-1-8b-instruct-v1:0",
    "Llama 3.1 70B": "meta.llama3-1-70b-instruct-v1:0",
    "Llama 3.1 405B": "meta.llama3-1-405b-instruct-v1:0",
    "Llama 3.2 1B": "meta.llama3-2-1b-instruct-v1:0",
    "Llama 3.2 3B": "meta.llama3-2-3b-instruct-v1:0",
    "Llama 3.2 11B": "meta.llama3-2-11b-instruct-v1:0",
    "Llama 3.2 90B": "meta.llama3-2-90b-instruct-v1:0",
    "Llama 3.3 70B": "meta.llama3-3-70b-instruct-v1:0",
    "Llama 4 Scout 17B": "meta.llama4-scout-17b-instruct-v1:0",
    "Llama 4 Maverick 17B": "meta.llama4-maverick-17b-instruct-v1:0",
    # Mistral AI
    "Mistral 7B": "mistral.mistral-7b-instruct-v0:2",
    "Mixtral 8x7B": "mistral.mixtral-8x7b-instruct-v0:1",
    "Mistral Large 2407": "mistral.mistral-large-2407-v1:0",
    # Others
    "R1": "deepseek.r1-v1:0",
    "gpt-oss-20b": "openai.gpt-oss-20b-1:0",
    "gpt-oss-120b": "openai.gpt-oss-120b-1:0",
    "Qwen3 32B": "qwen.qwen3-32b-v1:0",
}


def title_of(attributes: Mapping[str, str]) -> str | None:
    """The model's name on a Price List product: `model` (AmazonBedrock, AmazonBedrockService), else
    `titleModel`, else the Marketplace `servicename` without " (Amazon Bedrock Edition)". None when the row
    names no model (the service itself: Guardrails, Knowledge Bases…)."""
    for key in ("model", "titleModel"):
        value = (attributes.get(key) or "").strip()
        if value:
            return " ".join(value.split())
    service = (attributes.get("servicename") or "").strip()
    if service and _EDITION.search(service):
        return " ".join(_EDITION.sub("", service).split())
    return None


def split_latency_optimized(title: str) -> tuple[str, bool]:
    """("Nova Pro", True) for "Nova Pro Latency Optimized": the variant is a tier of the model."""
    stripped = _LATENCY_OPTIMIZED.sub("", title)
    return stripped, stripped != title


def model_id(title: str) -> str | None:
    return MODEL_IDS.get(title)
