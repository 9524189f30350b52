"""A decision from the stream, turned into actions: a warning, or a quota block for the person — or, for a
team's quota, for each person counted in the team in that period, and one message for the team."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bedrock_usage import periods
from bedrock_usage.ids import digest
from bedrock_usage.quota import Decision, Kind, Quota, Scope
from bedrock_usage.teams import is_team
from enforcement.blocks import Enforcer
from enforcement.lanes import Lanes
from enforcement.model import Action, ActorKind, AuditAction, Outcome, QuotaContext, Result
from enforcement.notices import warning_reason
from enforcement.settings import EnforcerSettings

log = logging.getLogger(__name__)


def period_end(quota: Quota | str, period: str, settings: EnforcerSettings) -> datetime:
    """When a quota period resets in QUOTA_TIMEZONE: the next local midnight, or the 1st of the next month."""
    return periods.period_end(Quota(quota).value, period, settings.quota_timezone)


class DecisionHandler:
    def __init__(self, enforcer: Enforcer, *, members: Callable[[str, str], list[str]],
                 lanes: Lanes | None = None) -> None:
        """`members(team, period)`: the people counted in a team in a quota period, whom its block covers;
        `lanes`: a team's members denied several at a time (else one after another)."""
        self.enforcer, self.members, self.lanes = enforcer, members, lanes
        self.settings, self.store, self.metrics = enforcer.settings, enforcer.store, enforcer.metrics

    def handle(self, decision: Decision, published_at: datetime | None = None) -> list[Result]:
        self.metrics.decisions.labels(decision.kind.value, decision.scope.value).inc()
        if decision.kind is Kind.WARNING:
            return [self._warn(decision)]
        context = QuotaContext(decision.scope, decision.quota, decision.period, decision.usage, decision.limit,
                               decision.team, decision.decision_id)
        if decision.scope is Scope.USER:
            members = [decision.subject]
        elif not is_team(decision.subject, self.settings.default_team):
            # People without a team are not a team: nothing decides for them together (the consumer
            # never publishes this; a decision from an older version is dropped, loudly).
            log.error("team decision for people without a team ignored", extra={"decision": decision.to_fields()})
            return []
        else:
            # Exactly the people counted in the team in that period: not whoever is in it now.
            members = self.members(decision.subject, decision.period)
        until = period_end(decision.quota, decision.period, self.settings)

        def block(enforcer: Enforcer, key: str) -> Result:
            return enforcer.block_for_quota(key, context, until=until, actor=ActorKind.SYSTEM,
                                            published_at=published_at,
                                            action_key=digest("decision", decision.decision_id, key))

        if self.lanes is not None and len(members) > 1 and until > self.enforcer.clock():
            self.store.ensure_rows(members)  # each lane then locks its person's row alone (see the port)
            self.store.commit()
            results = self.lanes.map(members, block)
        else:
            results = [block(self.enforcer, key) for key in members]
        if decision.scope is Scope.TEAM and any(r.outcome is not Outcome.STALE for r in results):
            self.store.enqueue(self.enforcer.notices.team_blocked(decision, until, len(members)))
            self.store.commit()
        return results

    def _warn(self, decision: Decision) -> Result:
        now, store = self.enforcer.clock(), self.store
        person = store.principal(decision.subject) if decision.scope is Scope.USER else None
        key = digest("decision", decision.decision_id)
        reason = warning_reason(decision)
        # One call can cross 85 % and 100 % at once: the person then gets the block notice, not both.
        # A warning about a period already over (a first start reading old decisions) warns no one.
        if period_end(decision.quota, decision.period, self.settings) <= now:
            outcome = Outcome.STALE
        elif decision.usage >= decision.limit:
            outcome = Outcome.SUPERSEDED
        else:
            outcome = Outcome.NOTIFIED
        store.record(AuditAction(
            key, now, ActorKind.SYSTEM, Action.WARN, outcome, decision.subject, reason, decision.scope,
            decision.quota, decision.period, decision.usage, decision.limit, decision.decision_id,
            shadow=self.enforcer.shadow))
        if outcome is Outcome.NOTIFIED:
            store.enqueue(self.enforcer.notices.warning(decision, person, key, reason, now))
        store.commit()
        self.metrics.actions.labels(Action.WARN, outcome, ActorKind.SYSTEM).inc()
        return Result(decision.subject, Action.WARN, outcome, reason)
