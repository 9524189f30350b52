"""The consumer's own settings: the KCL daemon, people lookups, the decision stream, prices, metrics."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from bedrock_usage.config import SettingsError, Source, Spec, boolean, integer
from bedrock_usage.settings import SharedSettings


class KclInitialPosition(StrEnum):
    """Where a shard with no checkpoint starts, spelt as the KCL daemon's `initialPositionInStream` wants it."""

    TRIM_HORIZON = "TRIM_HORIZON"  # the oldest record the stream still holds
    LATEST = "LATEST"  # only records put from now on


@dataclass(frozen=True)
class ConsumerSettings(SharedSettings):
    OWN_SPECS: ClassVar[tuple[Spec, ...]] = (
        Spec("KCL_APPLICATION_NAME", "bedrock-usage-consumer", "KCL application (names the DynamoDB lease table)."),
        Spec("KCL_INITIAL_POSITION", "TRIM_HORIZON", "Where a shard with no checkpoint starts: TRIM_HORIZON or"
             " LATEST."),
        Spec("KCL_POLL_INTERVAL_MS", "250", "Idle time between GetRecords calls per shard (Kinesis allows"
             " 5/s/shard)."),
        Spec("KCL_MAX_RECORDS", "10000", "Most records per GetRecords call."),
        Spec("KCL_FAILOVER_MS", "10000", "Lease failover time: how soon a dead worker's shards are taken over."),
        Spec("KCL_JAR_DIR", None, "Directory of the KCL multilang jars; default: the installed amazon_kclpy jars."),
        Spec("PRICES_REFRESH_SECONDS", "60", "How often each consumer re-reads the price table (after `prices"
             " import` or `prices sync`)."),
        Spec("INFERENCE_PROFILE_MAX_AGE_SECONDS", "86400", "How long an application inference profile's model"
             " (from bedrock:GetInferenceProfile, shared in MySQL) is reused before it is asked again."),
        Spec("TEAM_TAG_LOOKUP", "true", "Read the Team/Person/Email IAM tags of new people's users and roles (in"
             " the consumer's account) to find their team."),
        Spec("TEAM_LOOKUP_WAIT_MS", "2000", "How long a batch waits for the lookups of its new people; who is not"
             " resolved by then is counted for themself and held for their team until it is known."),
        Spec("TEAM_LOOKUP_MAX_AGE_SECONDS", "3600", "How old a person's looked-up team may get before it is"
             " looked up again (a changed tag or group applies from then on)."),
        Spec("DIRECTORY_REFRESH_SECONDS", "10", "How often each consumer process reads the changes to people and"
             " teams made elsewhere (`limits apply`, other consumers' lookups)."),
        Spec("DECISION_STREAM_MAXLEN", "1000000", "Approximate cap on the decision stream's length."),
        Spec("REDIS_REBUILD_WAIT_SECONDS", "60", "How long a consumer that finds Redis without its marker waits,"
             " per attempt, while another consumer rebuilds it from MySQL (counting nothing meanwhile) before"
             " retrying the batch as after an outage."),
        Spec("METRICS_PORT", "9101", "Port of the consumer's Prometheus /metrics and /health endpoint."),
    )

    kcl_application_name: str
    kcl_initial_position: KclInitialPosition
    kcl_poll_interval_ms: int
    kcl_max_records: int
    kcl_failover_ms: int
    kcl_jar_dir: str | None
    prices_refresh_seconds: int
    inference_profile_max_age_seconds: int
    team_tag_lookup: bool
    team_lookup_wait_ms: int
    team_lookup_max_age_seconds: int
    directory_refresh_seconds: int
    decision_stream_maxlen: int
    redis_rebuild_wait_seconds: int
    metrics_port: int

    @classmethod
    def read(cls, source: Source) -> dict[str, Any]:
        get = source.get
        position = get("KCL_INITIAL_POSITION").upper()
        if position not in tuple(KclInitialPosition):
            raise SettingsError(f"KCL_INITIAL_POSITION must be TRIM_HORIZON or LATEST, got {position!r}")
        return {
            **super().read(source),
            "kcl_application_name": get("KCL_APPLICATION_NAME"),
            "kcl_initial_position": KclInitialPosition(position),
            "kcl_poll_interval_ms": integer("KCL_POLL_INTERVAL_MS", get("KCL_POLL_INTERVAL_MS"), 1),
            "kcl_max_records": integer("KCL_MAX_RECORDS", get("KCL_MAX_RECORDS"), 1),
            "kcl_failover_ms": integer("KCL_FAILOVER_MS", get("KCL_FAILOVER_MS"), 1000),
            "kcl_jar_dir": get("KCL_JAR_DIR") or None,
            "prices_refresh_seconds": integer("PRICES_REFRESH_SECONDS", get("PRICES_REFRESH_SECONDS"), 1),
            "inference_profile_max_age_seconds": integer(
                "INFERENCE_PROFILE_MAX_AGE_SECONDS", get("INFERENCE_PROFILE_MAX_AGE_SECONDS"), 60),
            "team_tag_lookup": boolean("TEAM_TAG_LOOKUP", get("TEAM_TAG_LOOKUP")),
            "team_lookup_wait_ms": integer("TEAM_LOOKUP_WAIT_MS", get("TEAM_LOOKUP_WAIT_MS"), 0),
            "team_lookup_max_age_seconds": integer("TEAM_LOOKUP_MAX_AGE_SECONDS", get("TEAM_LOOKUP_MAX_AGE_SECONDS"),
                                                   60),
            "directory_refresh_seconds": integer("DIRECTORY_REFRESH_SECONDS", get("DIRECTORY_REFRESH_SECONDS"), 1),
            "decision_stream_maxlen": integer("DECISION_STREAM_MAXLEN", get("DECISION_STREAM_MAXLEN"), 1000),
            "redis_rebuild_wait_seconds": integer("REDIS_REBUILD_WAIT_SECONDS", get("REDIS_REBUILD_WAIT_SECONDS"), 1),
            "metrics_port": integer("METRICS_PORT", get("METRICS_PORT"), 0),
        }
