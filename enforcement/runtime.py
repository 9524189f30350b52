"""Build the enforcer's parts from settings (the `enforcer run` loop, bedrockctl's admin commands, tests)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from prometheus_client import REGISTRY, CollectorRegistry

from bedrock_usage import aws
from bedrock_usage.keys import Keys
from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.redis_state import redis_client
from bedrock_usage.usage import UsageReader
from enforcement.iam import IamPolicies
from enforcement.metering_watch import MeteringWatch
from enforcement.metrics import EnforcerMetrics
from enforcement.policies import PolicyNames
from enforcement.reconcile import Reconciler
from enforcement.service import Enforcer
from enforcement.settings import EnforcerSettings
from enforcement.stream import DecisionStream

LOCK_TIMEOUT_SECONDS = 60


@dataclass
class EnforcerRuntime:
    enforcer: Enforcer
    reconciler: Reconciler
    stream: DecisionStream
    redis: redis.Redis
    session: MySQLSession
    metrics: EnforcerMetrics
    metering: MeteringWatch

    def close(self) -> None:
        self.session.close()
        self.redis.close()


def account_of(settings: EnforcerSettings) -> str:
    return aws.account_id(settings)


def build(settings: EnforcerSettings, *, registry: CollectorRegistry = REGISTRY, account_id: str | None = None,
          clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> EnforcerRuntime:
    client = redis_client(settings)
    keys = Keys(settings.redis_key_prefix)
    metrics = EnforcerMetrics(registry)
    account = account_id or account_of(settings)
    iam = None
    if not settings.shadow:  # shadow mode makes no IAM call at all, not even to create its policies
        lock_name = f"{settings.redis_key_prefix}:enforcer:iam-lock"
        iam = IamPolicies(
            aws.client(settings, "iam", own_retries=True), account,
            PolicyNames(settings.deny_policy_name, settings.session_deny_policies),
            lock=lambda: client.lock(lock_name, timeout=LOCK_TIMEOUT_SECONDS,
                                     blocking_timeout=LOCK_TIMEOUT_SECONDS),
            on_retry=lambda code: metrics.iam_retries.labels(code).inc(),
        )
    session = MySQLSession(settings.mysql)

    def members(team: str, period: str) -> list[str]:
        reader = UsageReader.for_settings(session.conn, client, settings, clock())
        return reader.members_of([team], period).get(team, [])

    enforcer = Enforcer(settings, session=session, iam=iam, account_id=account, metrics=metrics, members=members,
                        clock=clock)
    stream = DecisionStream(client, keys.decisions, f"{socket.gethostname()}-{os.getpid()}")
    metering = MeteringWatch(lambda: session.conn, metrics, after_seconds=settings.unmetered_after_seconds,
                             tz=settings.quota_timezone, clock=clock)
    return EnforcerRuntime(enforcer, Reconciler(enforcer, client), stream, client, session, metrics, metering)
