"""Assembles the processor core with its real adapters (MariaDB, Redis, AWS) from settings: shared by the
KCL record processor, `bedrockctl ingest`, `bedrockctl counters rebuild` and the benchmark, so all of them
run the same code."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from bedrock_usage import aws, limits
from bedrock_usage.keys import Keys
from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.pricing.profiles import InferenceProfiles
from bedrock_usage.redis_state import RedisClient, RedisState, redis_client
from consumer.counters import Counters
from consumer.decode import Decoder
from consumer.lookups import LookupFailed, Lookups
from consumer.metering import Metering
from consumer.metrics import ConsumerMetrics
from consumer.people import PeopleDirectory
from consumer.processor import Processor
from consumer.redis_guard import RedisGuard
from consumer.role_paths import RolePaths
from consumer.settings import ConsumerSettings
from consumer.store import Store

log = logging.getLogger(__name__)


@dataclass
class ConsumerParts:
    """The processor and what it was assembled from that its callers use or must close."""

    processor: Processor
    metrics: ConsumerMetrics
    redis: RedisClient
    store_session: MySQLSession  # the processor's MySQL thread
    caller_session: MySQLSession  # the caller's thread: people, prices, role keys, limits sync, rebuild
    people: PeopleDirectory
    profiles: InferenceProfiles
    guard: RedisGuard

    def reset_connections(self) -> None:
        """After a transient failure: drop the MySQL connections (Redis reconnects by itself), once
        nothing is running on them."""
        self.processor.drain()
        self.store_session.reset()
        self.caller_session.reset()
        self.profiles.close()  # its session reconnects on next use

    def close(self) -> None:
        self.processor.close()
        self.people.close()
        self.store_session.close()
        self.caller_session.close()
        self.profiles.close()
        with contextlib.suppress(Exception):
            self.redis.close()


def assemble_consumer(
    settings: ConsumerSettings,
    *,
    source: str,
    registry: CollectorRegistry = REGISTRY,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    lookups: bool = True,
    keep_event: Callable[[datetime], bool] | None = None,
) -> ConsumerParts:
    """`lookups` False: nobody is looked up (a rebuild replays rows already charged; a replay charges the
    people as MySQL knows them). `keep_event`: only events whose time it accepts count (a replay's period)."""
    client = redis_client(settings)
    keys = Keys(settings.redis_key_prefix, cluster=settings.redis_cluster)
    store_session = MySQLSession(settings.mysql)
    metrics = ConsumerMetrics(registry)
    caller_session = MySQLSession(settings.mysql)
    # The profile resolver commits and rolls back on its own MySQL session (opened on first use).
    profiles = InferenceProfiles.from_settings(settings, max_age_seconds=settings.inference_profile_max_age_seconds)

    def failed(key: str, error: LookupFailed, lasting: bool) -> None:
        metrics.lookup_failures.labels(error.code, "true" if lasting else "false").inc()

    # IAM of our own account (a caller of another account is not looked up): people's tags, roles' paths.
    iam = aws.client(settings, "iam") if lookups and settings.team_tag_lookup else None
    account = aws.account_id(settings) if iam is not None else ""
    people = PeopleDirectory(
        caller_session, settings.default_team,
        lookups=_lookups(settings, iam, account) if lookups else None,
        wait_seconds=settings.team_lookup_wait_ms / 1000,
        refresh_seconds=settings.directory_refresh_seconds,
        relookup_seconds=settings.team_lookup_max_age_seconds,
        on_failure=failed,
    )
    counters = Counters(
        client,
        keys,
        user_defaults=settings.user_defaults,
        team_defaults=settings.team_defaults,
        warning_percents=settings.warning_thresholds,
        stream_maxlen=settings.decision_stream_maxlen,
        default_team=settings.default_team,
    )
    def replay(marker: str) -> tuple[int, int]:
        from consumer.rebuild import replay as replay_rows  # noqa: PLC0415 (rebuild assembles a consumer itself)

        report = replay_rows(settings, marker, clock())
        return report.rows, report.new

    guard = RedisGuard(client=client, keys=keys, mysql=settings.mysql, counters=counters, metrics=metrics,
                       replay=replay, timezone_=settings.quota_timezone,
                       wait_seconds=settings.redis_rebuild_wait_seconds, clock=clock)
    # Prices and role paths are read on the caller's thread, like the people directory: its session.
    metering = Metering(caller_session, fallback=settings.price_fallback,
                        refresh_seconds=settings.prices_refresh_seconds,
                        profiles=profiles)
    processor = Processor(
        decoder=Decoder(settings.session_roles, keep=keep_event),
        people=people,
        metering=metering,
        role_paths=RolePaths(caller_session, iam=iam, account_id=account),
        counters=counters,
        store=Store(store_session, settings.default_team),
        timezone_=settings.quota_timezone,
        grace_days=settings.counter_grace_days,
        source=source,
        metrics=metrics,
        clock=clock,
        sweep_seconds=settings.directory_refresh_seconds,
        guard=guard,
    )
    return ConsumerParts(processor, metrics, client, store_session, caller_session, people, profiles, guard)


def _lookups(settings: ConsumerSettings, iam: Any | None, account: str) -> Lookups:
    clients: dict[str | None, Any] = {}
    lock = threading.Lock()

    def identity_store(region: str | None) -> Any:
        # The Identity Store's region is the rule's (Identity Center lives in one region). Called from
        # the lookup threads: boto3's default session is not safe to build clients from concurrently.
        with lock:
            if region not in clients:
                clients[region] = aws.client(settings, "identitystore", region=region)
            return clients[region]

    return Lookups(iam=iam, identity_store=identity_store, account_id=account)


def sync_limits(parts: ConsumerParts, keys: Keys) -> int:
    """Refill Redis's cache of limit overrides from MySQL (cheap; done at every start)."""
    count = limits.sync_to_redis(parts.caller_session.conn, RedisState(parts.redis, keys))
    log.info("limit overrides synced to redis", extra={"count": count})
    return count
