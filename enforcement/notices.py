"""The notifications the enforcer queues for the notifier, and the wording of quotas in them (pure).

Each notification carries a dedupe key made from what makes it one message (the person, the quota, the
period, the limit…), so that an action done again queues nothing new.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bedrock_usage.ids import digest
from bedrock_usage.notifications import Notification, NotificationKind, NotificationScope
from bedrock_usage.quota import Decision, Quota, Scope, format_usd
from enforcement.model import ActorKind, Block, QuotaContext
from enforcement.targets import PrincipalRecord, Refusal

_LABELS = {Quota.DAILY_REQUESTS: "daily", Quota.MONTHLY_REQUESTS: "monthly", Quota.DAILY_COST: "daily cost",
           Quota.MONTHLY_COST: "monthly cost"}


def quota_label(quota: Quota) -> str:
    """`daily`, `monthly cost`: how a reason names a quota."""
    return _LABELS[quota]


def amount(quota: Quota | str, value: int) -> str:
    """A usage or limit as people read it: dollars for a cost quota (nano-dollars in the records)."""
    return format_usd(value) if Quota(quota).cost else str(value)


def used(quota: Quota, usage: int, limit: int) -> str:
    """`5 of 4`, `$41.20 of $40.00`."""
    return f"{amount(quota, usage)} of {amount(quota, limit)}"


def quota_block_reason(context: QuotaContext) -> str:
    label, usage = quota_label(context.quota), used(context.quota, context.usage, context.limit)
    if context.scope is Scope.USER:
        return f"{label} quota exceeded: {usage}"
    return f"team {context.team} exceeded its {label} quota: {usage}"


def warning_reason(decision: Decision) -> str:
    return (f"{decision.percent}% of the {quota_label(decision.quota)} quota:"
            f" {used(decision.quota, decision.usage, decision.limit)}")


class Notices:
    """Builds the enforcer's notifications; `shadow` marks them (the notifier says nothing was denied)."""

    def __init__(self, *, shadow: bool, clock: Callable[[], datetime]) -> None:
        self.shadow, self.clock = shadow, clock

    def to_person(self, kind: NotificationKind, dedupe: str, person: PrincipalRecord | None, key: str, *,
                  context: QuotaContext | None, access_returns_at: datetime | None, actor: str, reason: str,
                  action_key: str, protected_until: datetime | None = None) -> Notification:
        """Blocked, unblocked (by a reset or an admin): the message to the person."""
        return Notification(
            digest(kind, dedupe), kind, NotificationScope.USER, key, self.clock(),
            display_name=person.display_name if person else None, email=person.email if person else None,
            team=(person.team if person and person.team else None) or (context.team if context else None),
            quota=context.quota if context else None,
            quota_scope=context.scope if context else None, period=context.period if context else None,
            percent=100 if kind is NotificationKind.BLOCKED else None,
            usage=context.usage if context else None, limit=context.limit if context else None,
            access_returns_at=access_returns_at, protected_until=protected_until, actor=actor, reason=reason,
            action_key=action_key, shadow=self.shadow)

    def warning(self, decision: Decision, person: PrincipalRecord | None, key: str, reason: str,
                now: datetime) -> Notification:
        """A quota nearly used up: to the person (or, for a team quota, the team)."""
        return Notification(
            digest("warning", decision.scope, decision.subject, decision.quota, decision.period, decision.percent),
            NotificationKind.WARNING, NotificationScope(decision.scope.value), decision.subject, now,
            display_name=person.display_name if person else None, email=person.email if person else None,
            team=decision.team, quota=decision.quota, period=decision.period, percent=decision.percent,
            usage=decision.usage, limit=decision.limit,
            access_returns_at=None, actor=ActorKind.SYSTEM, reason=reason, action_key=key, shadow=self.shadow)

    def team_blocked(self, decision: Decision, until: datetime, members: int) -> Notification:
        """One message for the team's admins and the chat channels per team decision (each member gets
        their own by email)."""
        reason = (f"team {decision.subject} exceeded its {quota_label(decision.quota)} quota:"
                  f" {used(decision.quota, decision.usage, decision.limit)};"
                  f" Bedrock paused for the {members} people counted in it")
        return Notification(
            digest("team_blocked", decision.subject, decision.quota, decision.period, decision.limit),
            NotificationKind.TEAM_BLOCKED, NotificationScope.TEAM, decision.subject, self.clock(),
            team=decision.subject, quota=decision.quota, quota_scope=Scope.TEAM, period=decision.period, percent=100,
            usage=decision.usage, limit=decision.limit, access_returns_at=until, actor=ActorKind.SYSTEM,
            reason=reason, action_key=digest("decision", decision.decision_id), shadow=self.shadow)

    def deny_refused(self, block: Block, refusal: Refusal, person: PrincipalRecord | None, *, actor: str,
                     action_key: str) -> Notification:
        """To admins: a deny that could not name the one person. One alert per person, reason and day: a
        reconciler retrying every few minutes does not spam."""
        return Notification(
            digest("alert", block.principal, refusal.reason, self.clock().date()), NotificationKind.ALERT,
            NotificationScope.ADMINS, block.principal, self.clock(),
            display_name=person.display_name if person else None, team=person.team if person else None,
            quota=block.quota, period=block.period, usage=block.usage, limit=block.limit, actor=actor,
            reason=f"could not deny {block.principal} alone ({refusal.reason}): {refusal.detail}",
            action_key=action_key, shadow=self.shadow)

    def lift_refused(self, block: Block, refusal: Refusal, *, actor: str, action_key: str,
                     now: datetime) -> Notification:
        """To admins: a deny that could not be lifted (it stays in IAM until its policy is repaired)."""
        return Notification(
            digest("alert", block.principal, "lift", refusal.reason, now.date()), NotificationKind.ALERT,
            NotificationScope.ADMINS, block.principal, now, quota=block.quota, period=block.period, actor=actor,
            reason=f"could not lift the deny of {block.principal} ({refusal.reason}): {refusal.detail}",
            action_key=action_key, shadow=self.shadow)
