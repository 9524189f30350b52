"""The enforcer's decisions, block/lift state machine and breaker on in-memory stores: no MariaDB, Redis or
moto. The same paths run against the real adapters in tests/aws/; these pin the order of writes and the
failure paths, which are hard to provoke there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from prometheus_client import CollectorRegistry

from bedrock_usage.identity import IdentityType
from bedrock_usage.notifications import NotificationKind
from bedrock_usage.quota import Decision, Kind, Quota, Scope, State
from bedrock_usage.usage import PersonUsage, TeamStatus
from enforcement.blocks import Enforcer
from enforcement.decisions import DecisionHandler
from enforcement.metrics import EnforcerMetrics
from enforcement.model import Action, ActorKind, IamState, Origin, Outcome
from enforcement.reconcile import Reconciler
from enforcement.settings import EnforcerSettings
from enforcement.status import StatusView
from enforcement.targets import PrincipalRecord
from tests.unit.memory_enforcer_stores import MemoryBlockStore, MemoryIam, MemoryUsage, throttled

ACCOUNT = "123456789012"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # 11:00 in Madrid
DAY = "2026-11-25"
DAY_ENDS = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)  # midnight in Madrid


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Parts:
    """The enforcer wired on memory stores, as enforcement.assembly.assemble_enforcer wires it on MySQL and IAM."""

    def __init__(self, **env: str) -> None:
        self.settings = EnforcerSettings.from_env({"MYSQL_URL": "mysql://nobody@127.0.0.1:1/none",
                                           "REDIS_URL": "redis://127.0.0.1:1/0", "AWS_REGION": "us-east-1",
                                           "QUOTA_TIMEZONE": "Europe/Madrid", **env})
        self.store, self.iam, self.clock = MemoryBlockStore(), MemoryIam(), Clock()
        self.team_members: dict[tuple[str, str], list[str]] = {}
        self.enforcer = Enforcer(self.settings, store=self.store, iam=self.iam, account_id=ACCOUNT,
                                 metrics=EnforcerMetrics(CollectorRegistry()), clock=self.clock)
        self.decisions = DecisionHandler(self.enforcer,
                                         members=lambda team, period: self.team_members.get((team, period), []))
        self.status = StatusView(self.store, protected_principals=self.settings.protected_principals,
                                 clock=self.clock)

    def user(self, name: str, team: str = "research") -> str:
        key = f"arn:aws:iam::{ACCOUNT}:user/{name}"
        self.store.people[key] = PrincipalRecord(key, IdentityType.IAM_USER, arn=key, account_id=ACCOUNT,
                                                 display_name=name, email=f"{name}@example.com", team=team)
        return key


def exceeded(subject: str, *, scope: Scope = Scope.USER, quota: Quota = Quota.DAILY_REQUESTS, usage: int = 10,
             limit: int = 10, kind: Kind = Kind.EXCEEDED, percent: int = 100) -> Decision:
    team = subject if scope is Scope.TEAM else "research"
    return Decision(kind, scope, subject, quota, DAY, percent, usage, limit, f"evt-{subject}-{percent}",
                    NOW.isoformat(), subject, team)


def test_a_quota_decision_blocks_once_and_a_redelivery_changes_nothing() -> None:
    parts = Parts()
    ana = parts.user("ana")

    (first,) = parts.decisions.handle(exceeded(ana))
    (again,) = parts.decisions.handle(exceeded(ana))  # the stream delivers it again after a crash

    assert (first.outcome, again.outcome) == (Outcome.APPLIED, Outcome.UNCHANGED)
    assert first.blocked_until == again.blocked_until == DAY_ENDS
    assert parts.iam.denied == {"user:ana"}
    block = parts.store.saved_blocks[ana]
    assert (block.blocked, block.origin, block.scope, block.quota, block.iam_state) == (
        True, Origin.QUOTA, Scope.USER, Quota.DAILY_REQUESTS, IamState.APPLIED)
    assert [(a.action, a.outcome, a.actor) for a in parts.store.audit] == [
        (Action.BLOCK, Outcome.APPLIED, ActorKind.SYSTEM)]
    (note,) = parts.store.outbox
    assert (note.kind, note.principal, note.reason) == (NotificationKind.BLOCKED, ana, "daily quota exceeded: 10 of 10")
    (status,) = parts.status.rows(ana)
    assert (status["blocked"], status["quota"], status["iam_state"]) == (True, "daily_requests", "applied")


def test_a_team_decision_blocks_the_people_counted_in_it_and_tells_the_team_once() -> None:
    parts = Parts()
    members = [parts.user("t1", "ml"), parts.user("t2", "ml")]
    parts.team_members[("ml", DAY)] = members

    for _ in range(2):
        results = parts.decisions.handle(exceeded("ml", scope=Scope.TEAM, usage=100, limit=100))
        assert [r.principal for r in results] == members

    assert parts.iam.denied == {"user:t1", "user:t2"}
    assert {parts.store.saved_blocks[m].team for m in members} == {"ml"}
    assert sorted(n.kind for n in parts.store.outbox) == [
        NotificationKind.BLOCKED, NotificationKind.BLOCKED, NotificationKind.TEAM_BLOCKED]


def test_the_breaker_refuses_quota_denies_past_the_hourly_cap_while_admin_blocks_pass() -> None:
    parts = Parts(MAX_QUOTA_DENIES_PER_HOUR="2")
    people = [parts.user(f"cb{i}") for i in range(4)]

    outcomes = [parts.decisions.handle(exceeded(p))[0].outcome for p in people[:3]]
    admin = parts.enforcer.admin_block(people[3], actor="ops", reason="manual", until=None)

    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.REFUSED]
    assert admin.outcome is Outcome.APPLIED
    assert parts.iam.denied == {"user:cb0", "user:cb1", "user:cb3"}
    refused = parts.store.saved_blocks[people[2]]
    assert (refused.blocked, refused.iam_state, refused.iam_target) == (True, IamState.REFUSED, None)
    assert [n.kind for n in parts.store.outbox if n.principal == people[2]] == [NotificationKind.ALERT]

    parts.clock.now += timedelta(hours=1, minutes=1)  # the hour's count fell: the reconciler completes it
    repaired = parts.enforcer.reapply(refused, reason="completing a deny left refused")
    assert repaired.outcome is Outcome.APPLIED
    assert "user:cb2" in parts.iam.denied


def test_an_iam_failure_mid_deny_leaves_the_desired_block_and_a_retry_completes_it_once() -> None:
    parts = Parts()
    bo = parts.user("bo")
    parts.iam.failures.append(throttled())

    with pytest.raises(ClientError):
        parts.decisions.handle(exceeded(bo))
    parts.store.rollback()  # the loop resets its session, the decision stays unacknowledged

    pending = parts.store.saved_blocks[bo]
    assert (pending.blocked, pending.iam_state, pending.iam_target) == (True, IamState.PENDING, "user:bo")
    assert parts.store.audit == [] and parts.store.outbox == [] and parts.iam.denied == set()

    (retried,) = parts.decisions.handle(exceeded(bo))  # redelivered

    assert retried.outcome is Outcome.APPLIED
    assert parts.iam.denied == {"user:bo"}
    assert parts.store.saved_blocks[bo].iam_state is IamState.APPLIED
    assert [a.outcome for a in parts.store.audit] == [Outcome.APPLIED]
    assert [n.kind for n in parts.store.outbox] == [NotificationKind.BLOCKED]


def test_a_block_is_lifted_once_after_its_period_is_over() -> None:
    parts = Parts()
    cy = parts.user("cy")
    parts.decisions.handle(exceeded(cy))
    assert parts.enforcer.expire_due() == []  # not yet

    parts.clock.now = DAY_ENDS + timedelta(seconds=1)
    (lifted,) = parts.enforcer.expire_due()

    assert (lifted.action, lifted.outcome) == (Action.UNBLOCK, Outcome.APPLIED)
    assert parts.iam.denied == set()
    block = parts.store.saved_blocks[cy]
    assert (block.blocked, block.iam_state, block.reason) == (False, IamState.LIFTED, "quota period reset")
    assert [n.kind for n in parts.store.outbox] == [NotificationKind.BLOCKED, NotificationKind.UNBLOCKED]
    assert parts.enforcer.expire_due() == []  # done once
    assert parts.status.rows() == []


def test_a_protected_principal_is_never_denied() -> None:
    parts = Parts(PROTECTED_PRINCIPALS=f"arn:aws:iam::{ACCOUNT}:user/breakglass*")
    admin = parts.user("breakglass-1")

    (quota,) = parts.decisions.handle(exceeded(admin))
    by_admin = parts.enforcer.admin_block(admin, actor="ops", reason="test", until=None)

    assert quota.outcome is by_admin.outcome is Outcome.PROTECTED
    assert parts.iam.calls == 0 and parts.iam.denied == set()
    assert admin not in parts.store.saved_blocks and parts.store.outbox == []
    assert [a.outcome for a in parts.store.audit] == [Outcome.PROTECTED, Outcome.PROTECTED]
    assert parts.status.rows(admin)[0]["protected_principal"] is True


def test_a_warning_past_the_limit_is_superseded_by_the_block() -> None:
    parts = Parts()
    di = parts.user("di")

    (warned,) = parts.decisions.handle(exceeded(di, kind=Kind.WARNING, percent=85, usage=8))
    (crossed,) = parts.decisions.handle(exceeded(di, kind=Kind.WARNING, percent=60, usage=10))

    assert (warned.outcome, crossed.outcome) == (Outcome.NOTIFIED, Outcome.SUPERSEDED)
    assert [n.kind for n in parts.store.outbox] == [NotificationKind.WARNING]
    assert parts.iam.calls == 0


def test_the_reconciler_puts_back_a_deny_missing_from_iam_once_and_lifts_one_nobody_asked_for() -> None:
    parts = Parts()
    ana = parts.user("ana")
    parts.decisions.handle(exceeded(ana))
    parts.iam.denied = {"user:bob"}  # by hand: ana's deny detached, bob (never blocked) denied
    # Ana is still over her quota: her block stands, only its deny is to be put back.
    usage = MemoryUsage([PersonUsage(
        principal=ana, display_name="ana", identity_type=IdentityType.IAM_USER, team="research",
        team_status=TeamStatus.TEAM, date=DAY, requests=10, failed=0, daily_limit=10, monthly_requests=10,
        monthly_limit=None, state=State.EXCEEDED)])
    reconciler = Reconciler(parts.enforcer, parts.iam, lambda now: usage)

    first = reconciler.run_once()
    again = reconciler.run_once()

    assert (first.missing, first.unexpected, first.drift) == (1, 1, 2)
    assert again.drift == 0
    assert parts.iam.denied == {"user:ana"}
    assert parts.store.saved_blocks[ana].iam_state is IamState.APPLIED
    assert [(a.action, a.outcome, a.actor, a.principal) for a in parts.store.audit] == [
        (Action.BLOCK, Outcome.APPLIED, ActorKind.SYSTEM, ana),
        (Action.BLOCK, Outcome.APPLIED, ActorKind.RECONCILER, ana),
        (Action.UNBLOCK, Outcome.APPLIED, ActorKind.RECONCILER, "user:bob")]
