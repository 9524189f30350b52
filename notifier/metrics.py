"""The notifier's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.sent = Counter("bedrock_usage_notifier_sent", "Deliveries sent, by kind and channel.",
                            ["kind", "channel"], registry=registry)
        self.failed = Counter("bedrock_usage_notifier_failed", "Failed delivery attempts (retried), by kind and"
                              " channel.", ["kind", "channel"], registry=registry)
        self.dead = Counter("bedrock_usage_notifier_dead", "Deliveries given up after NOTIFY_MAX_ATTEMPTS, by kind"
                            " and channel (see `bedrockctl notify outbox --failed`).", ["kind", "channel"],
                            registry=registry)
        self.unrouted = Counter("bedrock_usage_notifier_unrouted", "Notifications with nobody to tell (no email"
                                " known, no channel configured), by kind.", ["kind"], registry=registry)
        self.outbox_depth = Gauge("bedrock_usage_notifier_outbox_depth", "Messages not yet delivered.",
                                  registry=registry)
        self.oldest_pending = Gauge("bedrock_usage_notifier_oldest_pending_seconds",
                                    "Age of the oldest message not yet delivered.", registry=registry)
