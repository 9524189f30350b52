"""Every form a `modelId` takes in an invocation log or a CloudTrail event, mapped to what prices it.

    anthropic.claude-sonnet-4-5-20250929-v1:0                     base model ID           regional
    us.anthropic.claude-sonnet-4-5-20250929-v1:0                  geographic profile      regional
    global.anthropic.claude-sonnet-4-5-20250929-v1:0              global profile          global
    arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.anthropic.claude-…      as its profile ID
    arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-…                       regional
    arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3          resolve it first
    arn:aws:bedrock:us-east-1:111122223333:provisioned-model/a1b2c3                      cost 0
    arn:aws:bedrock:…:custom-model/…, imported-model/…, custom-model-deployment/…,
    prompt/…, prompt-router/…, default-prompt-router/…                                   no price

A geographic profile (`us.`, `eu.`, `apac.`, `jp.`, `au.`, `ca.`, `us-gov.`…) bills at the rate of the
Region the call was made in, like the base model; only `global.` bills at the global rate.

Nothing here raises: a log whose modelId is garbage still cost someone money, so it parses to an
UNKNOWN ref (no base model), which `PriceBook.charge` charges at the fallback price and `prices missing`
lists under the modelId as logged. Pure, cached: the consumer parses every log's modelId.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from bedrock_usage.pricing.rates import PriceScope


class ModelIdKind(StrEnum):
    BASE = "base"  # anthropic.claude-…
    GEO_PROFILE = "geo_profile"  # us.anthropic.claude-…, or its inference-profile ARN
    GLOBAL_PROFILE = "global_profile"  # global.anthropic.claude-…, or its inference-profile ARN
    FOUNDATION_MODEL = "foundation_model"  # arn:…:foundation-model/anthropic.claude-…
    APPLICATION_PROFILE = "application_profile"  # arn:…:application-inference-profile/ID: resolve it
    PROVISIONED = "provisioned"  # arn:…:provisioned-model/ID: Provisioned Throughput, paid by the hour
    CUSTOM = "custom"  # custom, imported, deployed custom models, prompts, prompt routers: no price of their own
    UNKNOWN = "unknown"  # not a model ID at all


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What a logged modelId means for pricing. `model` is the base model ID to look up in the price table,
    or None: an application profile still to resolve (`application_profile` holds its ARN), a provisioned
    model (cost 0), or a model with no price of its own (custom, imported, unknown: the fallback)."""

    model_id: str  # as logged
    kind: ModelIdKind
    model: str | None
    scope: PriceScope
    provider: str | None  # anthropic, amazon, meta…: what the `provider` fallback compares
    provisioned: bool = False
    application_profile: str | None = None

    def resolved(self, model: str, scope: PriceScope) -> ModelRef:
        """This application profile once bedrock:GetInferenceProfile has named its model and scope."""
        return ModelRef(self.model_id, self.kind, model, scope, provider_of(model), False, self.application_profile)


# Geographic prefixes of system-defined cross-Region inference profiles known today. Any other short
# prefix (2 to 4 letters, optionally with a suffix like `-gov`) in front of `provider.model` is taken as a
# new geography, unless it is a provider's name (meta., qwen., zai. are short too).
GEO_PREFIXES = frozenset({"us", "eu", "apac", "jp", "au", "ca", "us-gov"})
GLOBAL_PREFIX = "global"
KNOWN_PROVIDERS = frozenset({
    "ai21", "amazon", "anthropic", "cohere", "deepseek", "google", "luma", "meta", "minimax", "mistral",
    "moonshot", "moonshotai", "nvidia", "openai", "qwen", "stability", "twelvelabs", "writer", "zai",
})
_SHORT_GEO = re.compile(r"[a-z]{2,4}(-[a-z]{2,4})?")
_PROVIDER = re.compile(r"[a-z][a-z0-9-]{1,31}")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_ARN = re.compile(r"arn:aws[a-z-]*:bedrock:([a-z0-9-]*):(\d{12})?:([a-z-]+)/(.+)")
_UNPRICED_RESOURCES = frozenset({
    "custom-model", "imported-model", "custom-model-deployment", "prompt", "prompt-router",
    "default-prompt-router", "marketplace-model-endpoint",
})
_MAX_LENGTH = 2048


@lru_cache(maxsize=4096)
def parse_model_id(model_id: str) -> ModelRef:
    """The ModelRef of any logged modelId (never raises; see the module's doc)."""
    text = model_id.strip() if isinstance(model_id, str) else ""
    if not text or len(text) > _MAX_LENGTH or any(c.isspace() for c in text):
        return _unknown(model_id)
    if text.startswith("arn:"):
        return _arn(model_id, text)
    return _plain(model_id, text) or _unknown(model_id)


def provider_of(model: str) -> str | None:
    """The provider (anthropic, amazon, meta…) of any modelId form, or None when it names none."""
    return parse_model_id(model).provider


def _plain(model_id: str, text: str) -> ModelRef | None:
    """A base model ID or a system-defined profile ID (`prefix.provider.model`)."""
    head, _, rest = text.partition(".")
    if not rest:
        return None
    if head == GLOBAL_PREFIX or head in GEO_PREFIXES or (
            head not in KNOWN_PROVIDERS and _SHORT_GEO.fullmatch(head) and "." in rest):
        base = _base(rest)
        if base is None:
            return None
        model, provider = base
        if head == GLOBAL_PREFIX:
            return ModelRef(model_id, ModelIdKind.GLOBAL_PROFILE, model, PriceScope.GLOBAL, provider)
        return ModelRef(model_id, ModelIdKind.GEO_PROFILE, model, PriceScope.REGIONAL, provider)
    base = _base(text)
    if base is None:
        return None
    return ModelRef(model_id, ModelIdKind.BASE, base[0], PriceScope.REGIONAL, base[1])


def _base(text: str) -> tuple[str, str] | None:
    provider, _, name = text.partition(".")
    if not name or not _PROVIDER.fullmatch(provider) or not _MODEL_NAME.fullmatch(name):
        return None
    return text, provider


def _arn(model_id: str, text: str) -> ModelRef:
    match = _ARN.fullmatch(text)
    if match is None:
        return _unknown(model_id)
    _, _, resource, ident = match.groups()
    if resource == "foundation-model":
        base = _base(ident)
        if base is None:
            return _unknown(model_id)
        return ModelRef(model_id, ModelIdKind.FOUNDATION_MODEL, base[0], PriceScope.REGIONAL, base[1])
    if resource == "inference-profile":
        inner = _plain(model_id, ident)
        # A system-defined profile's ID always has a geographic or global prefix; an ARN around a bare
        # model ID is still that model.
        return inner if inner is not None else _unknown(model_id)
    if resource == "application-inference-profile":
        return ModelRef(model_id, ModelIdKind.APPLICATION_PROFILE, None, PriceScope.REGIONAL, None,
                        application_profile=text)
    if resource == "provisioned-model":
        return ModelRef(model_id, ModelIdKind.PROVISIONED, None, PriceScope.REGIONAL, None, provisioned=True)
    if resource in _UNPRICED_RESOURCES:
        # A custom model's ARN may name its base model (custom-model/amazon.nova-lite-v1:0:300k/ID): its
        # provider is still useful to the `provider` fallback.
        first = ident.split("/", 1)[0]
        base = _base(first.rsplit(":", 1)[0]) if "/" in ident else None
        return ModelRef(model_id, ModelIdKind.CUSTOM, None, PriceScope.REGIONAL, base[1] if base else None)
    return _unknown(model_id)


def _unknown(model_id: str) -> ModelRef:
    return ModelRef(model_id, ModelIdKind.UNKNOWN, None, PriceScope.REGIONAL, None)
