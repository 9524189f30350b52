"""The enforcer's Prometheus metrics (one process: the default registry, or a test's own)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


class EnforcerMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.decisions = Counter(
            "bedrock_usage_enforcer_decisions", "Decisions taken from the stream, by kind and scope.",
            ["kind", "scope"], registry=registry,
        )
        self.actions = Counter(
            "bedrock_usage_enforcer_actions",
            "Enforcement actions by action (warn, block, unblock), outcome (applied, unchanged, shadow,"
            " notified, refused, protected, shielded, stale) and actor kind (system, reconciler, admin).",
            ["action", "outcome", "actor"], registry=registry,
        )
        self.decision_to_deny = Histogram(
            "bedrock_usage_enforcer_decision_to_deny_seconds",
            "Decision published by the consumer → deny in IAM (or recorded, in shadow mode).",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.without_team = Gauge(
            "bedrock_usage_people_without_team",
            "People who called Bedrock today with no team (status none: no quota-file team, Team tag or"
            " Identity Center group) or one not known yet (status unresolved: a lookup still failing).",
            ["status"], registry=registry,
        )
        self.denied = Gauge(
            "bedrock_usage_enforcer_denied_people", "People blocked now (IAM deny in force, or shadow).",
            registry=registry,
        )
        self.drift = Counter(
            "bedrock_usage_enforcer_drift",
            "Differences the reconciler found and fixed: missing (a deny that should be in IAM was not),"
            " unexpected (a deny in IAM nobody should have), missed (over quota with no block), limit_raised.",
            ["kind"], registry=registry,
        )
        self.refusals = Counter(
            "bedrock_usage_enforcer_refusals",
            "Denies refused because they could not be scoped to the one person, by reason.",
            ["reason"], registry=registry,
        )
        self.iam_retries = Counter(
            "bedrock_usage_enforcer_iam_retries", "IAM calls retried after throttling, by error code.",
            ["code"], registry=registry,
        )
        self.dependency_errors = Counter(
            "bedrock_usage_enforcer_dependency_errors",
            "Loop iterations that failed on Redis, MySQL or AWS and were retried (decisions stay unacked).",
            ["dependency"], registry=registry,
        )
        self.stream_lag = Gauge(
            "bedrock_usage_enforcer_pending_decisions",
            "Decisions in the stream not yet acknowledged by the enforcer (delivered or not).",
            registry=registry,
        )
        self.reconcile_seconds = Histogram(
            "bedrock_usage_enforcer_reconcile_seconds", "Duration of one reconciliation.",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.last_reconcile = Gauge(
            "bedrock_usage_enforcer_last_reconcile_timestamp_seconds",
            "When the last reconciliation finished (Unix time).", registry=registry,
        )
        # Calls without a cost (enforcement/metering_watch.py): successful calls whose invocation log has not
        # come UNMETERED_AFTER_SECONDS after them, by the region they were made in.
        self.unmetered = Gauge(
            "bedrock_usage_unmetered_calls",
            "Successful calls of the last 24 hours whose invocation log has not come within UNMETERED_AFTER_SECONDS"
            " (no cost known: invocation logging off in the region, or an endpoint that logs nothing).",
            ["region"], registry=registry,
        )
        self.unmetered_recent = Gauge(
            "bedrock_usage_unmetered_calls_recent",
            "The same, for the last hour of that window only (what the alert reads: it clears an hour after"
            " logging is fixed).", ["region"], registry=registry,
        )
        self.calls_recent = Gauge(
            "bedrock_usage_calls_recent",
            "Successful calls (metered or not) in that same hour, by region: the denominator of the unmetered share.",
            ["region"], registry=registry,
        )
        self.unpriced_alerts = Counter(
            "bedrock_usage_unpriced_model_alerts",
            "Admin alerts queued for a model charged at the fallback price (one per model, ever).",
            registry=registry,
        )
