"""What `bedrockctl producer` reads besides the shared settings: the rule's name, the regions counted, the
invocation-log group subscribed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from bedrock_usage.config import Source, Spec, regions
from bedrock_usage.settings import SharedSettings


@dataclass(frozen=True)
class ProducerSettings(SharedSettings):
    OWN_SPECS: ClassVar[tuple[Spec, ...]] = (
        Spec("RULE_NAME", "bedrock-usage-control", "Name of the EventBridge rule (and prefix of its DLQ and roles)"
             " that `bedrockctl producer apply` manages."),
        Spec("SOURCE_REGIONS", "", "Comma-separated regions whose Bedrock calls are counted (each gets a rule"
             " forwarding them to AWS_REGION's event bus); empty: AWS_REGION only. Calls in a region not listed"
             " are not counted."),
        Spec("INVOCATION_LOG_GROUP", "", "CloudWatch Logs group of Bedrock model invocation logs to subscribe to"
             " the stream (token metering); empty: none."),
    )

    rule_name: str
    source_regions: tuple[str, ...]
    invocation_log_group: str | None

    @classmethod
    def read(cls, source: Source) -> dict[str, Any]:
        get = source.get
        return {
            **super().read(source),
            "rule_name": get("RULE_NAME").strip(),
            "source_regions": regions(get("SOURCE_REGIONS")),
            "invocation_log_group": get("INVOCATION_LOG_GROUP").strip() or None,
        }
