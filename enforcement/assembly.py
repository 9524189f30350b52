"""Build the enforcer's parts from settings and wire them together (the `enforcer run` loop, bedrockctl's
admin commands, tests): the MySQL store, the IAM adapter, the state machine over them, and what uses it."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import REGISTRY, CollectorRegistry

from bedrock_usage import aws
from bedrock_usage.keys import Keys
from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.redis_state import RedisClient, redis_client
from bedrock_usage.usage import UsageReader
from enforcement.blocks import Enforcer
from enforcement.decisions import DecisionHandler
from enforcement.iam import IamPolicies
from enforcement.lanes import Lane, Lanes
from enforcement.metering_watch import MeteringWatch
from enforcement.metrics import EnforcerMetrics
from enforcement.policies import PolicyNames
from enforcement.reconcile import Reconciler
from enforcement.settings import EnforcerSettings
from enforcement.status import StatusView
from enforcement.store import MySQLBlockStore
from enforcement.stream import DecisionStream


@dataclass
class EnforcerParts:
    enforcer: Enforcer  # the block/lift state machine
    decisions: DecisionHandler
    status: StatusView
    reconciler: Reconciler
    stream: DecisionStream
    redis: RedisClient
    session: MySQLSession
    store: MySQLBlockStore
    iam: IamPolicies | None  # None in shadow mode
    metrics: EnforcerMetrics
    metering: MeteringWatch
    lanes: Lanes | None = None  # a team's members denied several at a time (ENFORCER_IAM_CONCURRENCY > 1)

    def close(self) -> None:
        if self.lanes is not None:
            self.lanes.close()
        self.session.close()
        self.redis.close()


def account_of(settings: EnforcerSettings) -> str:
    return aws.account_id(settings)


def assemble_enforcer(settings: EnforcerSettings, *, registry: CollectorRegistry = REGISTRY,
                      account_id: str | None = None,
                      clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> EnforcerParts:
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
            lock=lambda: client.lock(lock_name, timeout=settings.iam_lock_timeout_seconds,
                                     blocking_timeout=settings.iam_lock_timeout_seconds),
            on_retry=lambda code: metrics.iam_retries.labels(code).inc(),
        )
    session = MySQLSession(settings.mysql)
    store = MySQLBlockStore(session)

    def usage(now: datetime) -> UsageReader:
        return UsageReader.for_settings(session.conn, client, settings, now)

    def members(team: str, period: str) -> list[str]:
        return usage(clock()).members_of([team], period).get(team, [])

    enforcer = Enforcer(settings, store=store, iam=iam, account_id=account, metrics=metrics, clock=clock)

    def lane() -> Lane:  # another enforcer on a connection of its own, sharing IAM and the breaker
        lane_session = MySQLSession(settings.mysql)
        return Lane(Enforcer(settings, store=MySQLBlockStore(lane_session), iam=iam, account_id=account,
                             metrics=metrics, clock=clock, breaker=enforcer.breaker), lane_session.reset)

    lanes = Lanes(settings.enforcer_iam_concurrency, lane) if settings.enforcer_iam_concurrency > 1 else None
    stream = DecisionStream(client, keys.decisions, f"{socket.gethostname()}-{os.getpid()}",
                            claim_idle_ms=settings.decision_claim_idle_seconds * 1000)
    metering = MeteringWatch(lambda: session.conn, metrics, after_seconds=settings.unmetered_after_seconds,
                             tz=settings.quota_timezone, clock=clock)
    return EnforcerParts(
        enforcer, DecisionHandler(enforcer, members=members, lanes=lanes),
        StatusView(store, protected_principals=settings.protected_principals, clock=clock),
        Reconciler(enforcer, iam, usage), stream, client, session, store, iam, metrics, metering, lanes)
