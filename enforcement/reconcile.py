"""The reconciler: make IAM and the blocks match what counters, limits and admins say, both ways.

On a timer (and on `bedrockctl reconcile --once`) it:
1. lifts blocks whose period reset (the expiry job, also run every few seconds by the enforcer);
2. blocks people over a quota (their own or their team's) who have no block: a decision that was
   missed, lost or arrived while the enforcer was down;
3. lifts quota blocks whose limit was raised above the usage since, and blocks of principals that
   became protected;
4. in enforce mode, compares the denies in the product's policies with the active blocks: re-applies
   a deny that is missing (removed by hand, a crash mid-way, a refusal whose cause is gone) and lifts
   a deny nobody should have (added by hand, left over).

Every fix is an audited action and a `bedrock_usage_enforcer_drift` count.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bedrock_usage.ids import digest
from bedrock_usage.periods import periods_of
from bedrock_usage.quota import Quota, Scope
from bedrock_usage.usage import PersonUsage, TeamStatus, TeamUsage
from enforcement.blocks import Enforcer
from enforcement.decisions import period_end
from enforcement.iam import IamRefused
from enforcement.model import (
    BLOCKING_ORDER,
    Action,
    ActorKind,
    AuditAction,
    Block,
    IamState,
    Origin,
    Outcome,
    QuotaContext,
    Result,
)
from enforcement.notices import amount
from enforcement.ports import IamDrift, QuotaUsage
from enforcement.targets import Target, target_of

log = logging.getLogger(__name__)


@dataclass
class Report:
    expired: int = 0
    missed: int = 0
    limit_raised: int = 0
    protected: int = 0
    missing: int = 0
    unexpected: int = 0
    results: list[Result] = field(default_factory=list)

    @property
    def drift(self) -> int:
        return self.missed + self.limit_raised + self.protected + self.missing + self.unexpected


def _over(holder: PersonUsage | TeamUsage) -> tuple[Quota, int, int] | None:
    """The quota used up whose block would stand (monthly before daily, cost before requests: the block
    a decision would name, see model.BLOCKING_ORDER), with usage and limit."""
    for quota in reversed(BLOCKING_ORDER):
        limit = holder.limit_of(quota)
        if limit is not None and holder.usage_of(quota) >= limit:
            return quota, holder.usage_of(quota), limit
    return None


class Reconciler:
    def __init__(self, enforcer: Enforcer, iam: IamDrift | None, usage: Callable[[datetime], QuotaUsage]) -> None:
        """`iam`: the one the enforcer acts with (None in shadow mode: nothing to compare); `usage(now)`:
        counters and limits as of now. Ports, not adapters: tests run it on in-memory IAM and usage."""
        self._enforcer, self._iam, self._reader = enforcer, iam, usage

    def run_once(self) -> Report:
        started = time.monotonic()
        enforcer, report = self._enforcer, Report()
        expired = enforcer.expire_due()
        report.expired, report.results = len(expired), list(expired)
        now = enforcer.clock()
        self._quotas(now, report)
        if self._iam is not None:
            self._compare_iam(self._iam, report)
        enforcer.refresh_denied()
        enforcer.metrics.reconcile_seconds.observe(time.monotonic() - started)
        enforcer.metrics.last_reconcile.set(time.time())
        for kind in ("missed", "limit_raised", "protected", "missing", "unexpected"):
            if getattr(report, kind):
                enforcer.metrics.drift.labels(kind).inc(getattr(report, kind))
        if report.drift:
            log.warning("reconciler fixed drift", extra={k: getattr(report, k) for k in (
                "missed", "limit_raised", "protected", "missing", "unexpected")})
        return report

    def _quotas(self, now: datetime, report: Report) -> None:
        enforcer, settings = self._enforcer, self._enforcer.settings
        periods = periods_of(now, settings.quota_timezone)
        reader = self._reader(now)
        people = {p.principal: p for p in reader.people(periods.day, include_idle=True)}
        for status in (TeamStatus.NONE, TeamStatus.UNRESOLVED):
            enforcer.metrics.without_team.labels(status.value).set(sum(
                1 for p in people.values() if p.team_status == status and (p.requests or p.failed)))
        # Every team (never DEFAULT_TEAM: people without a team are not one), with the people counted in
        # it today and this month: a team over its quota covers exactly those.
        teams = {t.team: t for t in reader.teams(periods.day)}
        by_period = {periods.day_id: reader.members_of(list(teams), periods.day_id),
                     periods.month_id: reader.members_of(list(teams), periods.month_id)}
        blocks = {b.principal: b for b in enforcer.store.blocks()}
        enforcer.store.commit()

        overs: dict[str, tuple[Scope, Quota, int, int, str | None]] = {}
        for key, person in people.items():
            own = _over(person)
            if own:
                overs[key] = (Scope.USER, *own, person.team)
        for name, usage_of_team in sorted(teams.items()):
            shared = _over(usage_of_team)
            if not shared:
                continue
            period = periods.month_id if shared[0].monthly else periods.day_id
            for key in by_period[period].get(name, []):
                overs.setdefault(key, (Scope.TEAM, *shared, name))

        for key, (scope, quota, usage, limit, team) in sorted(overs.items()):
            block = blocks.get(key)
            if enforcer.is_protected(key) or (block and (block.active(now) or block.shielded(now))):
                continue
            period = periods.month_id if quota.monthly else periods.day_id
            context = QuotaContext(scope, quota, period, usage, limit, team)
            report.results.append(enforcer.block_for_quota(
                key, context, until=period_end(quota, period, settings), actor=ActorKind.RECONCILER,
                action_key=digest("reconcile", uuid.uuid4()),
                reason=f"over its {'team' if scope is Scope.TEAM else 'own'} {quota.value} quota"
                       f" ({amount(quota, usage)} of {amount(quota, limit)}) with no block: a missed decision"))
            report.missed += 1

        for key, block in blocks.items():
            if not block.active(now):
                continue
            if enforcer.is_protected(key):
                report.results.append(enforcer.lift_for(block, reason="protected principal: never denied"))
                report.protected += 1
                continue
            if block.origin is not Origin.QUOTA or not block.quota or block.limit is None:
                continue
            raised = self._raised_limit(block, people, teams)
            if raised is not None:
                raised_to = amount(block.quota, raised)
                report.results.append(enforcer.lift_for(block, reason=f"limit raised to {raised_to}"))
                report.limit_raised += 1

    def _pools_on_roles(self, iam: IamDrift, active: list[Block], report: Report) -> None:
        """A session deny works only while its role carries the session policies: put back any that were
        detached by hand from a shared role with someone denied on it."""
        enforcer, store = self._enforcer, self._enforcer.store
        roles: set[str] = set()
        for block in active:
            if not (block.iam_target or "").startswith("session:") or block.iam_state is not IamState.APPLIED:
                continue
            person = store.principal(block.principal)
            target = target_of(person, enforcer.account_id, enforcer.settings.session_roles) if person else None
            if isinstance(target, Target) and target.role_name:
                roles.add(target.role_name)
        store.commit()
        for role in sorted(roles):
            try:
                made = iam.ensure_pool_attached(role)
            except IamRefused as refused:
                enforcer.metrics.refusals.labels(refused.refusal.reason).inc()
                continue
            if made:
                store.record(AuditAction(
                    digest("reconcile-pool", uuid.uuid4()), enforcer.clock(), ActorKind.RECONCILER, Action.BLOCK,
                    Outcome.APPLIED, f"role:{role}", "drift: a session policy was missing from the role",
                    iam_change="; ".join(made)[:1024]))
                store.commit()
                report.missing += 1
                log.warning("session policies re-attached to a shared role", extra={"role": role, "iam": made})

    @staticmethod
    def _raised_limit(block: Block, people: Mapping[str, PersonUsage], teams: Mapping[str, TeamUsage]) -> int | None:
        """The new limit when it was raised above both the limit the block was for and today's usage.
        A limit merely read as higher than usage (Redis emptied, say) is not enough to lift."""
        person = people.get(block.principal)
        if person is None:
            return None
        # A team block: the team it was for (the person may have moved since; older rows: their team now).
        holder: PersonUsage | TeamUsage | None = (
            person if block.scope is Scope.USER else teams.get(block.team or person.team))
        if holder is None or block.quota is None:
            return None
        limit, usage = holder.limit_of(block.quota), holder.usage_of(block.quota)
        if limit is not None and limit > (block.limit or 0) and usage < limit:
            return int(limit)
        return None

    def _compare_iam(self, iam: IamDrift, report: Report) -> None:
        enforcer, store = self._enforcer, self._enforcer.store
        # IAM first, then the rows: denies are written row first, IAM second, so a deny applied meanwhile
        # shows up as desired-and-missing (re-applied, harmless), never as unexpected (lifted).
        try:
            actual = iam.actual()
        except IamRefused as refused:  # a policy edited by hand: compare nothing rather than guess
            enforcer.metrics.refusals.labels(refused.refusal.reason).inc()
            log.error("cannot read the product's policies: drift not checked", extra={
                "reason": refused.refusal.reason, "detail": refused.refusal.detail})
            return
        now = enforcer.clock()
        active = [b for b in store.blocks(blocked_only=True) if b.active(now)]
        store.commit()
        desired = {b.iam_target for b in active if b.iam_target and b.iam_state is not IamState.REFUSED}
        for block in active:
            if block.iam_target in actual:
                if block.iam_state is IamState.PENDING:  # applied, then interrupted before the row said so
                    enforcer.complete(block)
                continue
            result = enforcer.reapply(block, reason="drift: the deny was missing from IAM"
                                      if block.iam_state is IamState.APPLIED
                                      else f"completing a deny left {block.iam_state.value}")
            report.results.append(result)
            if result.outcome in (Outcome.APPLIED, Outcome.UNCHANGED):
                report.missing += 1
        self._pools_on_roles(iam, active, report)
        owners = {b.iam_target: b.principal for b in store.blocks() if b.iam_target}
        store.commit()
        for target in sorted(actual - desired):
            try:
                change = iam.lift(Target.parse(target))
            except IamRefused as refused:
                enforcer.metrics.refusals.labels(refused.refusal.reason).inc()
                continue
            principal = owners.get(target, target)
            store.record(AuditAction(
                digest("reconcile-unexpected", uuid.uuid4()), enforcer.clock(), ActorKind.RECONCILER, Action.UNBLOCK,
                Outcome.APPLIED if change.changed else Outcome.UNCHANGED, principal,
                "drift: a deny in IAM with no active block", iam_change=change.description[:1024]))
            store.commit()
            enforcer.metrics.actions.labels(Action.UNBLOCK, Outcome.APPLIED, ActorKind.RECONCILER).inc()
            log.warning("unexpected deny lifted", extra={"target": target, "iam": change.description})
            report.unexpected += 1
            report.results.append(Result(principal, Action.UNBLOCK, Outcome.APPLIED, change.description))
