"""The consumer's Prometheus metrics.

The KCL daemon runs one processor process per shard, so metrics are written in prometheus-client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `bedrockctl consumer run`) and served once by the
supervisor. Tests pass their own CollectorRegistry.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.records = Counter(
            "bedrock_usage_records", "Kinesis records (or file documents) taken in.", registry=registry
        )
        self.events = Counter(
            "bedrock_usage_events",
            "Decoded events by kind (call, invocation_log) and outcome: new (first sighting: counted once),"
            " failed_call (of the new, those that failed: recorded, no quota used), duplicate (seen before),"
            " beyond_horizon (too old for Redis: MySQL only), held (of the new, those of people whose team"
            " was not known yet: counted for them, held for the team).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.invocation_logs = Counter(
            "bedrock_usage_invocation_logs", "Invocation logs metered, by outcome: new (charged once),"
            " duplicate (seen before: charged nothing).", ["outcome"], registry=registry,
        )
        self.cost = Counter(
            "bedrock_usage_cost_usd", "Dollars charged to new invocation logs, by the team charged (a person's"
            " team not known yet: '(not known yet)'). A float for Prometheus; the exact sums are in MySQL.",
            ["team"], registry=registry,
        )
        self.tokens = Counter(
            "bedrock_usage_tokens", "Tokens of new invocation logs, by part.", ["part"], registry=registry,
        )
        self.unpriced_calls = Counter(
            "bedrock_usage_unpriced_calls", "Logged calls of models the price table lacks, charged at the"
            " PRICE_FALLBACK price, by model (`bedrockctl prices missing`).", ["model"], registry=registry,
        )
        self.dead_letters = Counter(
            "bedrock_usage_dead_letters", "Records sent to the dead-letter table, by reason.", ["reason"],
            registry=registry,
        )
        self.skipped = Counter(
            "bedrock_usage_skipped", "Well-formed input that uses no quota, by reason.", ["reason"],
            registry=registry,
        )
        self.decisions = Counter(
            "bedrock_usage_decisions", "Decisions published, by kind and scope.", ["kind", "scope"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "bedrock_usage_batch_seconds", "Time to process one batch end to end (decode → MySQL commit).",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.decision_latency = Histogram(
            "bedrock_usage_decision_latency_seconds", "Batch received by the processor → decision published.",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.arrival_to_decision = Histogram(
            "bedrock_usage_arrival_to_decision_seconds",
            "Record's arrival in Kinesis → decision published (includes polling delay).",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.millis_behind_latest = Gauge(
            "bedrock_usage_millis_behind_latest", "KCL MillisBehindLatest of the last batch, per shard.",
            ["shard"], multiprocess_mode="livemax", registry=registry,
        )
        self.dependency_retries = Counter(
            "bedrock_usage_dependency_retries", "Batch attempts that failed on a dependency and were retried (nothing"
            " checkpointed meanwhile), by dependency: redis (unreachable, failing over), redis_full (at maxmemory"
            " under noeviction), redis_marker (Redis without the marker expected: repaired, then redone), mysql,"
            " prices.",
            ["dependency"], registry=registry,
        )
        self.lookup_failures = Counter(
            "bedrock_usage_lookup_failures",
            "Team lookups (Identity Store, IAM tags) that failed and will be retried, by error code; lasting"
            " is true once AccessDenied has repeated (a permission to fix).",
            ["code", "lasting"], registry=registry,
        )
        self.unresolved_people = Gauge(
            "bedrock_usage_unresolved_people",
            "People whose team is not known yet (their calls held for it), in this consumer process.",
            multiprocess_mode="livesum", registry=registry,
        )
        self.settled_people = Counter(
            "bedrock_usage_settled_people",
            "People whose held calls were moved to their team once it became known.", registry=registry,
        )
        self.redis_data_lost = Counter(
            "bedrock_usage_redis_data_lost", "Times Redis was found without its marker (emptied: FLUSHALL, a failover"
            " to an empty replica, a restart without persistence) and rebuilt from MySQL before counting resumed.",
            registry=registry,
        )
        self.redis_unmarked = Gauge(
            "bedrock_usage_redis_unmarked", "1 while this consumer counts nothing because Redis does not hold the"
            " marker it expects (being rebuilt, by it or another consumer); 0 once counting resumed.",
            multiprocess_mode="livemax", registry=registry,
        )
        self.redis_rebuilding = Gauge(
            "bedrock_usage_redis_rebuilding", "1 while this consumer rebuilds Redis from MySQL.",
            multiprocess_mode="livemax", registry=registry,
        )
        self.redis_rebuild_seconds = Histogram(
            "bedrock_usage_redis_rebuild_seconds", "Time to rebuild Redis from MySQL after it lost its data.",
            buckets=(1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0), registry=registry,
        )
        self.checkpoints = Counter(
            "bedrock_usage_checkpoints", "Checkpoints taken.", registry=registry
        )
