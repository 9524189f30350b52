"""The block/lift state machine: block, unblock, expire, re-apply — each idempotent.

Order of writes, so that a crash anywhere loses nothing and doubles nothing:
- blocking: the block row (the desired state) is committed first, then IAM is changed, then the block's
  IAM state, the audit row and the notification commit together. A crash in between re-delivers the
  decision (or the reconciler finds the row), and doing it again changes nothing: IAM calls are
  idempotent, the audit row and the notification have unique keys.
- lifting: IAM first, then the row, audit and notification together. A crash in between leaves the
  row blocked and due, so the lift is simply done again (finding IAM already clear).

Safety before speed: protected principals are never denied, a person an admin shielded is not
re-blocked by a quota, and a deny that cannot name the one person is refused (recorded and alerted),
never widened.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

from bedrock_usage.ids import digest
from bedrock_usage.notifications import NotificationKind
from bedrock_usage.periods import periods_of
from bedrock_usage.quota import Scope
from enforcement.breaker import QuotaDenyBreaker
from enforcement.iam import Change, IamRefused
from enforcement.metrics import EnforcerMetrics
from enforcement.model import (
    DENY_IN_FORCE,
    DENY_WANTED,
    Action,
    ActorKind,
    AuditAction,
    Block,
    IamState,
    Origin,
    Outcome,
    QuotaContext,
    Result,
    blocking_rank,
)
from enforcement.notices import Notices, quota_block_reason
from enforcement.ports import BlockStore, IamDenies
from enforcement.settings import EnforcerSettings
from enforcement.targets import PrincipalRecord, Refusal, RefusalReason, Target, is_protected, target_of

log = logging.getLogger(__name__)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return None if a is None or b is None else max(a, b)


def _stands(current: Block, until: datetime | None, context: QuotaContext | None) -> bool:
    """Whether an active block stays as it is when another block (`until`, `context`) comes: it lasts
    longer, or as long and is for a quota that ranks higher (cost before requests, see BLOCKING_ORDER)."""
    merged = _later(current.blocked_until, until)
    if merged != current.blocked_until:
        return False
    if merged != until:
        return True
    return (context is not None and current.origin is Origin.QUOTA and current.quota is not None
            and blocking_rank(current.quota) > blocking_rank(context.quota))


class Enforcer:
    def __init__(self, settings: EnforcerSettings, *, store: BlockStore, iam: IamDenies | None, account_id: str,
                 metrics: EnforcerMetrics, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 breaker: QuotaDenyBreaker | None = None) -> None:
        """`breaker`: shared by the enforcers of one process that act at once (lanes.Lanes), else its own."""
        if iam is None and not settings.shadow:
            raise ValueError("an IAM adapter is needed unless ENFORCEMENT_MODE=shadow")
        self.settings, self.store, self.iam = settings, store, iam
        self.account_id, self.metrics, self.clock = account_id, metrics, clock
        self.shadow = settings.shadow
        self.notices = Notices(shadow=self.shadow, clock=clock)
        self.breaker = breaker or QuotaDenyBreaker(max_per_hour=settings.max_quota_denies_per_hour, clock=clock)

    def _target(self, person: PrincipalRecord | None, key: str) -> Target | Refusal:
        if person is None:
            return Refusal(RefusalReason.UNKNOWN_PRINCIPAL, f"{key}: not a known principal")
        return target_of(person, self.account_id, self.settings.session_roles)

    def is_protected(self, key: str) -> bool:
        return is_protected(key, self.settings.protected_principals)

    # -- blocking ---------------------------------------------------------------------------------

    def block_for_quota(self, key: str, context: QuotaContext, *, until: datetime, actor: str, action_key: str,
                        published_at: datetime | None = None, reason: str | None = None) -> Result:
        reason = quota_block_reason(context) if reason is None else reason
        return self._deny(key, origin=Origin.QUOTA, actor=actor, reason=reason, until=until, action_key=action_key,
                          context=context, published_at=published_at,
                          # With the limit: blocked again after a raised limit was used up too, a new message.
                          notify=(NotificationKind.BLOCKED,
                                  digest("blocked", key, context.quota, context.period, context.limit)))

    def admin_block(self, key: str, *, actor: str, reason: str, until: datetime | None) -> Result:
        action_key = digest("admin", uuid.uuid4())
        return self._deny(key, origin=Origin.ADMIN, actor=actor, reason=reason, until=until, action_key=action_key,
                          context=None, published_at=None, notify=(NotificationKind.ADMIN_BLOCKED, action_key))

    def _deny(self, key: str, *, origin: Origin, actor: str, reason: str, until: datetime | None, action_key: str,
              context: QuotaContext | None, published_at: datetime | None,
              notify: tuple[NotificationKind, str]) -> Result:
        store, now = self.store, self.clock()
        person = store.principal(key)
        store.commit()
        # The person's row stays locked from this read to the write of the desired state (or the skip):
        # an admin command or a second enforcer acting on the same person waits, and cannot lose an update.
        current = store.block_of(key, for_update=True)

        def audit(outcome: Outcome, change: str | None = None, blocked_until: datetime | None = until) -> AuditAction:
            return AuditAction(
                action_key, now, actor, Action.BLOCK, outcome, key, reason,
                context.scope if context else None, context.quota if context else None,
                context.period if context else None, context.usage if context else None,
                context.limit if context else None, context.decision_id if context else None,
                blocked_until, change, self.shadow)

        if until is not None and until <= now:
            return self._skip(audit(Outcome.STALE), "the quota period is over")
        if self.is_protected(key):
            return self._skip(audit(Outcome.PROTECTED), "protected principal: never denied")
        if origin is Origin.QUOTA and current is not None and current.shielded(now):
            return self._skip(audit(Outcome.SHIELDED), f"protected by an admin until {current.protected_until}")

        was_active = current is not None and current.active(now)
        note_context, note_reason = context, reason  # what the person's message names
        merged_until = _later(current.blocked_until, until) if current and was_active else until
        target = self._target(person, key)
        iam_target = str(target) if isinstance(target, Target) else None
        if current is not None and was_active and _stands(current, until, context):
            # Already blocked for longer (an indefinite admin block, a monthly quota), or as long for a quota
            # named first (model.BLOCKING_ORDER): that block stands, with its origin and reason; this action
            # only makes sure its deny is in place, and the person's message names the block that stands.
            block = replace(current, iam_target=iam_target, iam_state=IamState.PENDING, shadow=self.shadow,
                            action_key=action_key)
            if context is not None and current.origin is Origin.QUOTA and current.quota and current.scope:
                # The same message as the standing block's own (its dedupe key): queued once in all.
                named = QuotaContext(current.scope, current.quota, current.period or "", current.usage or 0,
                                     current.limit or 0, current.team)
                notify = (NotificationKind.BLOCKED, digest("blocked", key, named.quota, named.period, named.limit))
                note_context, note_reason = named, current.reason
        else:
            block = Block(
                principal=key, blocked=True, origin=origin, reason=reason, actor=actor,
                scope=context.scope if context else None, quota=context.quota if context else None,
                period=context.period if context else None, usage=context.usage if context else None,
                limit=context.limit if context else None,
                blocked_at=current.blocked_at if current is not None and was_active else now,
                blocked_until=merged_until,
                protected_until=None if origin is Origin.ADMIN or current is None else current.protected_until,
                iam_target=iam_target, iam_state=IamState.PENDING, shadow=self.shadow,
                team=context.team if context and context.scope is Scope.TEAM else None, action_key=action_key,
            )
        in_force = was_active and current is not None and current.iam_state in DENY_IN_FORCE
        with self._admitted(target, key, ask=origin is Origin.QUOTA and not in_force) as target:
            if isinstance(target, Refusal):
                return self._refuse(block, target, audit(Outcome.REFUSED), person)
            store.save_block(block)
            store.commit()  # the desired state first: the reconciler completes what a crash interrupts

            try:
                change, outcome, state = self._apply(target)
            except IamRefused as refused:
                return self._refuse(block, refused.refusal, audit(Outcome.REFUSED), person)
            store.save_block(replace(block, iam_state=state, iam_detail=change.description[:512]))
            inserted = store.record(audit(outcome, change.description, merged_until))
            kind, dedupe = notify
            store.enqueue(self.notices.to_person(kind, dedupe, person, key, context=note_context,
                                                 access_returns_at=merged_until, actor=actor, reason=note_reason,
                                                 action_key=action_key))
            store.commit()
            self.metrics.actions.labels(Action.BLOCK, outcome, ActorKind.of(actor)).inc()
            if published_at is not None and inserted:
                self.metrics.decision_to_deny.observe(max(0.0, (self.clock() - published_at).total_seconds()))
            self.refresh_denied()
            log.info("blocked", extra={"principal": key, "outcome": outcome.value, "until": str(merged_until),
                                       "reason": reason, "actor": actor, "iam": change.description})
            return Result(key, Action.BLOCK, outcome, change.description, merged_until)

    def _apply(self, target: Target) -> tuple[Change, Outcome, IamState]:
        if self.iam is None:
            return Change(False, f"shadow: would deny {target}"), Outcome.SHADOW, IamState.SHADOW
        change = self.iam.apply(target)
        return change, (Outcome.APPLIED if change.changed else Outcome.UNCHANGED), IamState.APPLIED

    def _skip(self, action: AuditAction, detail: str) -> Result:
        self.store.record(action)
        self.store.commit()
        self.metrics.actions.labels(action.action, action.outcome, ActorKind.of(action.actor)).inc()
        log.info("not blocked", extra={"principal": action.principal, "outcome": action.outcome.value,
                                       "detail": detail})
        return Result(action.principal, action.action, action.outcome, detail)

    def _refuse(self, block: Block, refusal: Refusal, action: AuditAction, person: PrincipalRecord | None) -> Result:
        store = self.store
        store.save_block(replace(block, iam_state=IamState.REFUSED, iam_target=None, iam_detail=refusal.detail[:512]))
        store.record(replace(action, iam_change=f"refused ({refusal.reason}): {refusal.detail}"[:1024]))
        store.enqueue(self.notices.deny_refused(block, refusal, person, actor=action.actor,
                                                action_key=action.action_key))
        store.commit()
        self.metrics.refusals.labels(refusal.reason).inc()
        self.metrics.actions.labels(Action.BLOCK, Outcome.REFUSED, ActorKind.of(action.actor)).inc()
        # The breaker refuses a deny it could scope: say which kind of refusal this is.
        why = ("the circuit breaker's hourly cap" if refusal.reason is RefusalReason.RATE_LIMIT
               else "it could not be scoped to the one person")
        log.error(f"deny refused: {why}", extra={
            "principal": block.principal, "reason": refusal.reason, "detail": refusal.detail})
        return Result(block.principal, Action.BLOCK, Outcome.REFUSED, refusal.detail, block.blocked_until)

    def reapply(self, block: Block, *, reason: str) -> Result:
        """The reconciler's repair of an active block whose deny is not in IAM (removed by hand, a crash
        between the row and the IAM call, a refusal whose cause is gone)."""
        store, now = self.store, self.clock()
        person = store.principal(block.principal)
        store.commit()
        target = self._target(person, block.principal)
        action = AuditAction(self._repair_key(block), now, ActorKind.RECONCILER, Action.BLOCK,
                             Outcome.REFUSED, block.principal, reason, block.scope, block.quota, block.period,
                             block.usage, block.limit, None, block.blocked_until, None, self.shadow)
        ask = block.origin is Origin.QUOTA and block.iam_state in (IamState.REFUSED, IamState.PENDING)
        with self._admitted(target, block.principal, ask=ask) as target:
            try:
                if isinstance(target, Refusal):
                    raise IamRefused(target)
                change, outcome, state = self._apply(target)
            except IamRefused as refused:
                if block.iam_state is IamState.REFUSED:  # still refused: counted, not recorded again
                    store.commit()
                    self.metrics.refusals.labels(refused.refusal.reason).inc()
                    return Result(block.principal, Action.BLOCK, Outcome.REFUSED, refused.refusal.detail)
                return self._refuse(block, refused.refusal, action, person)
            store.save_block(replace(block, iam_target=str(target), iam_state=state,
                                     iam_detail=change.description[:512]))
            store.record(replace(action, outcome=outcome, iam_change=change.description))
            store.commit()
            self.metrics.actions.labels(Action.BLOCK, outcome, ActorKind.RECONCILER).inc()
            log.warning("deny re-applied", extra={"principal": block.principal, "reason": reason,
                                                  "iam": change.description})
            return Result(block.principal, Action.BLOCK, outcome, change.description, block.blocked_until)

    @contextmanager
    def _admitted(self, target: Target | Refusal, key: str, *, ask: bool) -> Iterator[Target | Refusal]:
        """The circuit breaker's answer for a quota deny (`ask`), held until the deny is recorded or has
        failed: in between, the breaker counts it (lanes deny several people at once)."""
        if not (ask and isinstance(target, Target)):
            yield target
            return
        admitted = self.breaker.admit(target, key, self.store)
        try:
            yield admitted
        finally:
            if isinstance(admitted, Target):
                self.breaker.release(key)

    @staticmethod
    def _repair_key(block: Block) -> str:
        """A pending deny is the unfinished action that asked for it: finished under that action's key, it
        is one audit row whether the reconciler or the re-delivered decision gets there first (a kill
        mid-deny once left two). A deny removed by hand, or a refusal retried, is a new action."""
        if block.iam_state is IamState.PENDING and block.action_key:
            return block.action_key
        return digest("reapply", uuid.uuid4())

    def complete(self, block: Block) -> None:
        """A pending deny found in IAM: applied, then interrupted before its row and audit said so. The
        row says so now, and the action is recorded under its own key (nothing if it already was)."""
        store = self.store
        store.save_block(replace(block, iam_state=IamState.APPLIED))
        if block.action_key:
            store.record(AuditAction(
                block.action_key, self.clock(), ActorKind.RECONCILER, Action.BLOCK, Outcome.APPLIED,
                block.principal, "completing a deny left pending (found in IAM)", block.scope, block.quota,
                block.period, block.usage, block.limit, None, block.blocked_until,
                f"found in IAM: {block.iam_target}", self.shadow))
        store.commit()

    # -- lifting ----------------------------------------------------------------------------------

    def admin_unblock(self, key: str, *, actor: str, reason: str, protect: bool) -> Result:
        """Lift a block now. With `protect`, quotas do not block the person again until the end of the
        current period (the blocked quota's period; the day for an admin block or no block)."""
        now = self.clock()
        current = self.store.block_of(key, for_update=True)  # held until the lift is recorded
        protect_until = None
        if protect:
            periods = periods_of(now, self.settings.quota_timezone)
            monthly = current is not None and current.quota is not None and current.quota.monthly
            protect_until = periods.month_ends_at if monthly else periods.day_ends_at
        block = current or Block(key, False, Origin.ADMIN, reason, actor)
        action_key = digest("admin", uuid.uuid4())
        return self._lift(block, actor=actor, reason=reason, action_key=action_key, protect_until=protect_until,
                          notify=(NotificationKind.ADMIN_UNBLOCKED, action_key))

    def expire_due(self) -> list[Result]:
        """Lift every block whose period reset (or whose admin duration ended) — the daily reset."""
        store = self.store
        due = store.due(self.clock())
        store.commit()
        results = []
        for listed in due:
            # As it is now, and locked until the lift is recorded: an admin may have just acted on it.
            block = store.block_of(listed.principal, for_update=True)
            if block is None or block.active(self.clock()) or not block.blocked:
                store.commit()
                continue
            reason = "quota period reset" if block.origin is Origin.QUOTA else "block duration ended"
            key = digest("expire", block.principal, block.blocked_at, block.blocked_until)
            results.append(self._lift(block, actor=ActorKind.SYSTEM, reason=reason, action_key=key,
                                      protect_until=None, notify=(NotificationKind.UNBLOCKED, key)))
        return results

    def lift_for(self, block: Block, *, reason: str) -> Result:
        """The reconciler's lift (limit raised, protected principal)."""
        key = digest("reconcile-lift", uuid.uuid4())
        return self._lift(block, actor=ActorKind.RECONCILER, reason=reason, action_key=key, protect_until=None,
                          notify=(NotificationKind.UNBLOCKED, key))

    def _lift(self, block: Block, *, actor: str, reason: str, action_key: str, protect_until: datetime | None,
              notify: tuple[NotificationKind, str]) -> Result:
        store, now = self.store, self.clock()
        no_deny = (IamState.REFUSED, IamState.LIFTED, IamState.NONE)
        if self.iam is not None and block.iam_target and block.iam_state not in no_deny:
            try:
                change = self.iam.lift(Target.parse(block.iam_target))
            except IamRefused as refused:
                return self._lift_refused(block, refused.refusal, actor=actor, reason=reason, action_key=action_key)
            outcome = Outcome.APPLIED if change.changed else Outcome.UNCHANGED
        elif self.iam is None and block.blocked:
            change, outcome = Change(False, f"shadow: would lift {block.iam_target}"), Outcome.SHADOW
        else:
            change, outcome = Change(False, "no deny in IAM"), Outcome.UNCHANGED
        person = store.principal(block.principal)
        context = QuotaContext(block.scope, block.quota, block.period or "", block.usage or 0,
                               block.limit or 0) if block.scope and block.quota else None
        store.save_block(replace(
            block, blocked=False, actor=actor, reason=reason,
            iam_state=IamState.LIFTED if block.blocked else block.iam_state,
            iam_detail=change.description[:512], protected_until=protect_until or block.protected_until))
        store.record(AuditAction(
            action_key, now, actor, Action.UNBLOCK, outcome, block.principal, reason, block.scope, block.quota,
            block.period, block.usage, block.limit, None, protect_until, change.description[:1024], self.shadow))
        kind, dedupe = notify
        had_effect = block.blocked and block.iam_state in DENY_WANTED
        if had_effect or (kind is NotificationKind.ADMIN_UNBLOCKED and (block.blocked or protect_until)):
            store.enqueue(self.notices.to_person(kind, dedupe, person, block.principal, context=context,
                                                 access_returns_at=None, actor=actor, reason=reason,
                                                 action_key=action_key, protected_until=protect_until))
        store.commit()
        self.metrics.actions.labels(Action.UNBLOCK, outcome, ActorKind.of(actor)).inc()
        self.refresh_denied()
        log.info("unblocked", extra={"principal": block.principal, "outcome": outcome.value, "reason": reason,
                                     "actor": actor, "iam": change.description})
        return Result(block.principal, Action.UNBLOCK, outcome, change.description, None)

    def _lift_refused(self, block: Block, refusal: Refusal, *, actor: str, reason: str,
                      action_key: str) -> Result:
        """The deny could not be lifted (its session policy was edited by hand and is no longer the
        product's shape). The block ends as far as we are concerned; the deny stays until someone
        repairs the policy, so admins are alerted and the reconciler keeps trying. No "access is back"
        message goes to the person: it is not."""
        store, now = self.store, self.clock()
        store.save_block(replace(block, blocked=False, actor=actor, reason=reason, iam_state=IamState.LIFT_REFUSED,
                                 iam_detail=refusal.detail[:512]))
        store.record(AuditAction(
            action_key, now, actor, Action.UNBLOCK, Outcome.REFUSED, block.principal, reason, block.scope,
            block.quota, block.period, block.usage, block.limit, None, None,
            f"refused ({refusal.reason}): {refusal.detail}"[:1024], self.shadow))
        store.enqueue(self.notices.lift_refused(block, refusal, actor=actor, action_key=action_key, now=now))
        store.commit()
        self.metrics.refusals.labels(refusal.reason).inc()
        self.metrics.actions.labels(Action.UNBLOCK, Outcome.REFUSED, ActorKind.of(actor)).inc()
        log.error("lift refused: the deny stays in IAM until its policy is repaired", extra={
            "principal": block.principal, "reason": refusal.reason, "detail": refusal.detail})
        return Result(block.principal, Action.UNBLOCK, Outcome.REFUSED, refusal.detail)

    def refresh_denied(self) -> int:
        count = self.store.denied_count(self.clock())
        self.store.commit()
        self.metrics.denied.set(count)
        return count
