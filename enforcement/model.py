"""The enforcer's records (pure): a person's block, an audit action, the result of an action, and the
closed sets of states they take (stored in MySQL as the enums' string values)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bedrock_usage.quota import Decision, Kind, Quota, Scope

# When several quotas are used up, the block that stands — and is named in its reason and message — is
# the one that lasts longest: a monthly quota before a daily one. For the same period, cost before
# requests: money is what the budget is for, and "$50.00 of $50.00" tells the person more than a
# request count. Lowest rank first (the rank is the index).
BLOCKING_ORDER = (Quota.DAILY_REQUESTS, Quota.DAILY_COST, Quota.MONTHLY_REQUESTS, Quota.MONTHLY_COST)


def blocking_rank(quota: Quota | str) -> int:
    """Higher: the block named when several quotas are used up at once (see BLOCKING_ORDER)."""
    return BLOCKING_ORDER.index(Quota(quota))


def handling_order(decision: Decision) -> int:
    """Sort key of a batch of decisions: quotas used up first, the longest-lasting block first, so that
    the others of the same call find it standing and the person hears of that one alone; warnings after,
    in stream order (a stable sort)."""
    return -1 - blocking_rank(decision.quota) if decision.kind is Kind.EXCEEDED else 0


class Origin(StrEnum):
    QUOTA = "quota"  # a quota was exceeded (the person's or their team's)
    ADMIN = "admin"  # bedrockctl block


class IamState(StrEnum):
    """Where a block's deny stands in IAM."""

    NONE = "none"  # no deny was ever asked for (a row made by an unblock, a shield)
    PENDING = "pending"  # the desired state is written, IAM not yet changed (or not yet known to be)
    APPLIED = "applied"  # the deny is in IAM
    SHADOW = "shadow"  # ENFORCEMENT_MODE=shadow: the deny would be in IAM
    REFUSED = "refused"  # not in IAM, alerted: it could not be scoped to the one person, or the breaker
    LIFTED = "lifted"  # the deny was lifted
    LIFT_REFUSED = "lift_refused"  # the lift failed (a hand-edited policy): the deny stays until repaired


# A deny in IAM (or, in shadow mode, one that would be).
DENY_IN_FORCE = frozenset({IamState.APPLIED, IamState.SHADOW})
# A deny in force or about to be: what the `denied` gauge counts and what a lift has to undo.
DENY_WANTED = DENY_IN_FORCE | {IamState.PENDING}


class ActorKind(StrEnum):
    """Who acted: the enforcer or the reconciler by themselves (their name is the actor), or an admin
    (the actor is the admin's name, as given to bedrockctl)."""

    SYSTEM = "system"
    RECONCILER = "reconciler"
    ADMIN = "admin"

    @classmethod
    def of(cls, actor: str) -> ActorKind:
        return cls(actor) if actor in (cls.SYSTEM, cls.RECONCILER) else cls.ADMIN


class Action(StrEnum):
    WARN = "warn"
    BLOCK = "block"
    UNBLOCK = "unblock"


class Outcome(StrEnum):
    APPLIED = "applied"  # IAM changed
    UNCHANGED = "unchanged"  # IAM already in that state
    SHADOW = "shadow"  # ENFORCEMENT_MODE=shadow: recorded, IAM untouched
    NOTIFIED = "notified"  # warnings: a notification only
    REFUSED = "refused"  # nothing applied: not scoped to the one person, or the breaker's cap
    PROTECTED = "protected"  # a protected principal: never denied
    SHIELDED = "shielded"  # an admin's unblock --protect is in force
    STALE = "stale"  # the decision's period is over
    SUPERSEDED = "superseded"  # a warning crossed by the same call that used the quota up: the block says it


@dataclass(frozen=True)
class Block:
    """One row of `blocks`: the desired state of one person."""

    principal: str
    blocked: bool
    origin: Origin
    reason: str
    actor: str
    scope: Scope | None = None
    quota: Quota | None = None
    period: str | None = None
    usage: int | None = None
    limit: int | None = None
    blocked_at: datetime | None = None
    blocked_until: datetime | None = None  # None while blocked: indefinite
    protected_until: datetime | None = None
    iam_target: str | None = None
    iam_state: IamState = IamState.NONE
    iam_detail: str | None = None
    shadow: bool = False
    team: str | None = None  # of a team-quota block: the team whose quota it was
    # The action that last asked for this deny: a deny a crash left pending is completed under its key.
    action_key: str | None = None

    def active(self, now: datetime) -> bool:
        return self.blocked and (self.blocked_until is None or self.blocked_until > now)

    def shielded(self, now: datetime) -> bool:
        return self.protected_until is not None and self.protected_until > now


@dataclass(frozen=True)
class AuditAction:
    action_key: str
    at: datetime
    actor: str
    action: Action
    outcome: Outcome
    principal: str
    reason: str
    scope: Scope | None = None
    quota: Quota | None = None
    period: str | None = None
    usage: int | None = None
    limit: int | None = None
    decision_id: str | None = None
    blocked_until: datetime | None = None
    iam_change: str | None = None
    shadow: bool = False


@dataclass(frozen=True)
class QuotaContext:
    """Which quota a block is for, and the usage and limit when it was decided."""

    scope: Scope
    quota: Quota
    period: str
    usage: int
    limit: int
    team: str | None = None
    decision_id: str | None = None


@dataclass(frozen=True)
class Result:
    """What one action did to one person (returned to the loop, the reconciler's report, bedrockctl)."""

    principal: str
    action: Action
    outcome: Outcome
    detail: str
    blocked_until: datetime | None = None
