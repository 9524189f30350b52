"""The enforcer's actions: take a decision, block, unblock, expire, re-apply — each idempotent.

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

from pymysql.connections import Connection

from bedrock_usage import periods
from bedrock_usage.db import to_db
from bedrock_usage.ids import digest
from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.notifications import Notification, NotificationKind
from bedrock_usage.periods import periods_of
from bedrock_usage.quota import Decision, Kind, Quota, Scope, format_usd
from enforcement import store
from enforcement.iam import Change, IamPolicies, IamRefused
from enforcement.metrics import EnforcerMetrics
from enforcement.model import Action, AuditAction, Block, Origin, Outcome, blocking_rank
from enforcement.settings import EnforcerSettings
from enforcement.targets import PrincipalRecord, Refusal, Target, target_of

log = logging.getLogger(__name__)

SYSTEM = "system"
RECONCILER = "reconciler"


@dataclass(frozen=True)
class Result:
    principal: str
    action: Action
    outcome: Outcome
    detail: str
    blocked_until: datetime | None = None


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


def period_end(quota: Quota | str, period: str, settings: EnforcerSettings) -> datetime:
    """When a quota period resets in QUOTA_TIMEZONE: the next local midnight, or the 1st of the next month."""
    return periods.period_end(Quota(quota).value, period, settings.quota_timezone)


def _quota_label(quota: str | None) -> str:
    return {"daily_requests": "daily", "monthly_requests": "monthly", "daily_cost": "daily cost",
            "monthly_cost": "monthly cost"}.get(quota or "", quota or "")


def amount(quota: Quota | str, value: int) -> str:
    """A usage or limit as people read it: dollars for a cost quota (nano-dollars in the records)."""
    return format_usd(value) if Quota(quota).cost else str(value)


def _used(quota: Quota | str, usage: int, limit: int) -> str:
    """`5 of 4`, `$41.20 of $40.00`."""
    return f"{amount(quota, usage)} of {amount(quota, limit)}"


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


def _actor_kind(actor: str) -> str:
    return actor if actor in (SYSTEM, RECONCILER) else "admin"


class Enforcer:
    def __init__(self, settings: EnforcerSettings, *, session: MySQLSession, iam: IamPolicies | None, account_id: str,
                 metrics: EnforcerMetrics, members: Callable[[str, str], list[str]],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """`members(team, period)`: the people counted in a team in a quota period, whom its block covers."""
        if iam is None and not settings.shadow:
            raise ValueError("an IAM adapter is needed unless ENFORCEMENT_MODE=shadow")
        self.settings, self._session, self.iam = settings, session, iam
        self.members = members
        self.account_id, self.metrics, self.clock = account_id, metrics, clock
        self.shadow = settings.shadow

    @property
    def conn(self) -> Connection:
        return self._session.conn

    def _target(self, person: PrincipalRecord | None, key: str) -> Target | Refusal:
        if person is None:
            return Refusal("unknown_principal", f"{key}: not a known principal")
        return target_of(person, self.account_id, self.settings.session_roles)

    def is_protected(self, key: str) -> bool:
        return any(fnmatchcase(key, pattern) for pattern in self.settings.protected_principals)

    # -- decisions --------------------------------------------------------------------------------

    def handle(self, decision: Decision, published_at: datetime | None = None) -> list[Result]:
        self.metrics.decisions.labels(decision.kind.value, decision.scope.value).inc()
        if decision.kind is Kind.WARNING:
            return [self._warn(decision)]
        context = QuotaContext(decision.scope, decision.quota, decision.period, decision.usage, decision.limit,
                               decision.team, decision.decision_id)
        if decision.scope is Scope.USER:
            members = [decision.subject]
        elif decision.subject in (self.settings.default_team, ""):
            # People without a team are not a team: nothing decides for them together (the consumer
            # never publishes this; a decision from an older version is dropped, loudly).
            log.error("team decision for people without a team ignored", extra={"decision": decision.to_fields()})
            return []
        else:
            # Exactly the people counted in the team in that period: not whoever is in it now.
            members = self.members(decision.subject, decision.period)
        until = period_end(decision.quota, decision.period, self.settings)
        results = [self.block_for_quota(key, context, until=until, actor=SYSTEM, published_at=published_at,
                                        action_key=digest("decision", decision.decision_id, key))
                   for key in members]
        if decision.scope is Scope.TEAM and any(r.outcome is not Outcome.STALE for r in results):
            self._note_team(decision, context, until, len(members))
        return results

    def _note_team(self, decision: Decision, context: QuotaContext, until: datetime, members: int) -> None:
        """One message for the team's admins and the chat channels per team decision (each member gets
        their own by email)."""
        reason = (f"team {decision.subject} exceeded its {_quota_label(decision.quota)} quota:"
                  f" {_used(decision.quota, decision.usage, decision.limit)};"
                  f" Bedrock paused for the {members} people counted in it")
        store.enqueue(self.conn, Notification(
            digest("team_blocked", decision.subject, decision.quota, decision.period, decision.limit),
            NotificationKind.TEAM_BLOCKED, Scope.TEAM.value, decision.subject, self.clock(), team=decision.subject,
            quota=context.quota.value, quota_scope=Scope.TEAM.value, period=decision.period, percent=100,
            usage=decision.usage, limit=decision.limit, access_returns_at=until, actor=SYSTEM, reason=reason,
            action_key=digest("decision", decision.decision_id), shadow=self.shadow))
        self.conn.commit()

    def _warn(self, decision: Decision) -> Result:
        now, conn = self.clock(), self.conn
        person = store.principal(conn, decision.subject) if decision.scope is Scope.USER else None
        key = digest("decision", decision.decision_id)
        reason = (f"{decision.percent}% of the {_quota_label(decision.quota)} quota:"
                  f" {_used(decision.quota, decision.usage, decision.limit)}")
        # One call can cross 85 % and 100 % at once: the person then gets the block notice, not both.
        # A warning about a period already over (a first start reading old decisions) warns no one.
        if period_end(decision.quota, decision.period, self.settings) <= now:
            outcome = Outcome.STALE
        elif decision.usage >= decision.limit:
            outcome = Outcome.SUPERSEDED
        else:
            outcome = Outcome.NOTIFIED
        store.record(conn, AuditAction(
            key, now, SYSTEM, Action.WARN, outcome, decision.subject, reason, decision.scope,
            decision.quota, decision.period, decision.usage, decision.limit, decision.decision_id,
            shadow=self.shadow))
        if outcome is Outcome.NOTIFIED:
            self._enqueue_warning(decision, person, key, reason, now)
        conn.commit()
        self.metrics.actions.labels(Action.WARN, outcome, SYSTEM).inc()
        return Result(decision.subject, Action.WARN, outcome, reason)

    def _enqueue_warning(self, decision: Decision, person: PrincipalRecord | None, key: str, reason: str,
                         now: datetime) -> None:
        store.enqueue(self.conn, Notification(
            digest("warning", decision.scope, decision.subject, decision.quota, decision.period, decision.percent),
            NotificationKind.WARNING, decision.scope.value, decision.subject, now,
            display_name=person.display_name if person else None, email=person.email if person else None,
            team=decision.team, quota=decision.quota, period=decision.period, percent=decision.percent,
            usage=decision.usage, limit=decision.limit,
            access_returns_at=None, actor=SYSTEM, reason=reason, action_key=key, shadow=self.shadow))

    # -- blocking ---------------------------------------------------------------------------------

    def block_for_quota(self, key: str, context: QuotaContext, *, until: datetime, actor: str, action_key: str,
                        published_at: datetime | None = None, reason: str | None = None) -> Result:
        label = _quota_label(context.quota)
        if reason is None:
            used = _used(context.quota, context.usage, context.limit)
            reason = (f"{label} quota exceeded: {used}" if context.scope is Scope.USER
                      else f"team {context.team} exceeded its {label} quota: {used}")
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
        conn, now = self.conn, self.clock()
        person = store.principal(conn, key)
        conn.commit()
        # The person's row stays locked from this read to the write of the desired state (or the skip):
        # an admin command or a second enforcer acting on the same person waits, and cannot lose an update.
        current = store.block_of(conn, key, for_update=True)

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
            block = current.but(iam_target=iam_target, iam_state="pending", shadow=self.shadow)
            if context is not None and current.origin is Origin.QUOTA and current.quota and current.scope:
                # The same message as the standing block's own (its dedupe key): queued once in all.
                named = QuotaContext(Scope(current.scope), Quota(current.quota), current.period or "",
                                     current.usage or 0, current.limit or 0, current.team)
                notify = (NotificationKind.BLOCKED, digest("blocked", key, named.quota, named.period, named.limit))
                note_context, note_reason = named, current.reason
        else:
            block = Block(
                principal=key, blocked=True, origin=origin, reason=reason, actor=actor,
                scope=context.scope.value if context else None, quota=context.quota.value if context else None,
                period=context.period if context else None, usage=context.usage if context else None,
                limit=context.limit if context else None,
                blocked_at=current.blocked_at if current is not None and was_active else now,
                blocked_until=merged_until,
                protected_until=None if origin is Origin.ADMIN or current is None else current.protected_until,
                iam_target=iam_target, iam_state="pending", shadow=self.shadow,
                team=context.team if context and context.scope is Scope.TEAM else None,
            )
        in_force = was_active and current is not None and current.iam_state in ("applied", "shadow")
        if isinstance(target, Target) and origin is Origin.QUOTA and not in_force:
            target = self._within_rate(target)
        if isinstance(target, Refusal):
            return self._refuse(block, target, audit(Outcome.REFUSED), person)
        store.save_block(conn, block)
        conn.commit()  # the desired state first: the reconciler completes what a crash interrupts

        try:
            change, outcome, state = self._apply(target)
        except IamRefused as refused:
            return self._refuse(block, refused.refusal, audit(Outcome.REFUSED), person)
        store.save_block(conn, block.but(iam_state=state, iam_detail=change.description[:512]))
        inserted = store.record(conn, audit(outcome, change.description, merged_until))
        kind, dedupe = notify
        store.enqueue(conn, self._note(kind, dedupe, person, key, context=note_context, access_returns_at=merged_until,
                                       actor=actor, reason=note_reason, action_key=action_key))
        conn.commit()
        self.metrics.actions.labels(Action.BLOCK, outcome, _actor_kind(actor)).inc()
        if published_at is not None and inserted:
            self.metrics.decision_to_deny.observe(max(0.0, (self.clock() - published_at).total_seconds()))
        self.refresh_denied()
        log.info("blocked", extra={"principal": key, "outcome": outcome.value, "until": str(merged_until),
                                   "reason": reason, "actor": actor, "iam": change.description})
        return Result(key, Action.BLOCK, outcome, change.description, merged_until)

    def _apply(self, target: Target) -> tuple[Change, Outcome, str]:
        if self.iam is None:
            return Change(False, f"shadow: would deny {target}"), Outcome.SHADOW, "shadow"
        change = self.iam.apply(target)
        return change, (Outcome.APPLIED if change.changed else Outcome.UNCHANGED), "applied"

    def _within_rate(self, target: Target) -> Target | Refusal:
        """The circuit breaker (cloud-custodian's `max-resources`, for people): past
        MAX_QUOTA_DENIES_PER_HOUR new quota denies in an hour, something is more likely wrong (a limit
        set to 1, a bad quota file) than that many people over quota at once. Further quota denies are
        refused and alerted until the hour's count falls or an admin raises the setting; the
        reconciler applies them then. Admin blocks are not limited."""
        cap = self.settings.max_quota_denies_per_hour
        if cap == 0:
            return target
        since = to_db(self.clock() - timedelta(hours=1))
        with self.conn.cursor() as cur:
            cur.execute("SELECT COUNT(DISTINCT principal) FROM enforcement_actions WHERE at >= %s AND action = 'block'"
                        " AND outcome IN ('applied', 'unchanged', 'shadow') AND actor IN (%s, %s)",
                        (since, SYSTEM, RECONCILER))
            (count,) = cur.fetchone() or (0,)
        if int(count) < cap:
            return target
        return Refusal("rate_limit", f"{count} people were denied for quotas in the last hour"
                                     f" (MAX_QUOTA_DENIES_PER_HOUR={cap}): check the limits, or raise the setting")

    def _skip(self, action: AuditAction, detail: str) -> Result:
        store.record(self.conn, action)
        self.conn.commit()
        self.metrics.actions.labels(action.action, action.outcome, _actor_kind(action.actor)).inc()
        log.info("not blocked", extra={"principal": action.principal, "outcome": action.outcome.value,
                                       "detail": detail})
        return Result(action.principal, action.action, action.outcome, detail)

    def _refuse(self, block: Block, refusal: Refusal, action: AuditAction, person: PrincipalRecord | None) -> Result:
        conn = self.conn
        store.save_block(conn, block.but(iam_state="refused", iam_target=None, iam_detail=refusal.detail[:512]))
        store.record(conn, AuditAction(**{**action.__dict__, "iam_change": f"refused ({refusal.reason}): "
                                                                          f"{refusal.detail}"[:1024]}))
        # One alert per person, reason and day: a reconciler retrying every few minutes does not spam.
        store.enqueue(conn, Notification(
            digest("alert", block.principal, refusal.reason, self.clock().date()), NotificationKind.ALERT, "admins",
            block.principal, self.clock(), display_name=person.display_name if person else None,
            team=person.team if person else None, quota=block.quota, period=block.period, usage=block.usage,
            limit=block.limit, actor=action.actor,
            reason=f"could not deny {block.principal} alone ({refusal.reason}): {refusal.detail}",
            action_key=action.action_key, shadow=self.shadow))
        conn.commit()
        self.metrics.refusals.labels(refusal.reason).inc()
        self.metrics.actions.labels(Action.BLOCK, Outcome.REFUSED, _actor_kind(action.actor)).inc()
        log.error("deny refused: it could not be scoped to the one person", extra={
            "principal": block.principal, "reason": refusal.reason, "detail": refusal.detail})
        return Result(block.principal, Action.BLOCK, Outcome.REFUSED, refusal.detail, block.blocked_until)

    def reapply(self, block: Block, *, reason: str) -> Result:
        """The reconciler's repair of an active block whose deny is not in IAM (removed by hand, a crash
        between the row and the IAM call, a refusal whose cause is gone)."""
        conn, now = self.conn, self.clock()
        person = store.principal(conn, block.principal)
        conn.commit()
        target = self._target(person, block.principal)
        action = AuditAction(digest("reapply", uuid.uuid4()), now, RECONCILER, Action.BLOCK, Outcome.REFUSED,
                             block.principal, reason, block.scope, block.quota, block.period, block.usage,
                             block.limit, None, block.blocked_until, None, self.shadow)
        if isinstance(target, Target) and block.origin is Origin.QUOTA and block.iam_state in ("refused", "pending"):
            target = self._within_rate(target)
        try:
            if isinstance(target, Refusal):
                raise IamRefused(target)
            change, outcome, state = self._apply(target)
        except IamRefused as refused:
            if block.iam_state == "refused":  # still refused: counted, not recorded again
                conn.commit()
                self.metrics.refusals.labels(refused.refusal.reason).inc()
                return Result(block.principal, Action.BLOCK, Outcome.REFUSED, refused.refusal.detail)
            return self._refuse(block, refused.refusal, action, person)
        store.save_block(conn, block.but(iam_target=str(target), iam_state=state, iam_detail=change.description[:512]))
        store.record(conn, AuditAction(**{**action.__dict__, "outcome": outcome, "iam_change": change.description}))
        conn.commit()
        self.metrics.actions.labels(Action.BLOCK, outcome, RECONCILER).inc()
        log.warning("deny re-applied", extra={"principal": block.principal, "reason": reason,
                                              "iam": change.description})
        return Result(block.principal, Action.BLOCK, outcome, change.description, block.blocked_until)

    # -- lifting ----------------------------------------------------------------------------------

    def admin_unblock(self, key: str, *, actor: str, reason: str, protect: bool) -> Result:
        """Lift a block now. With `protect`, quotas do not block the person again until the end of the
        current period (the blocked quota's period; the day for an admin block or no block)."""
        now = self.clock()
        current = store.block_of(self.conn, key, for_update=True)  # held until the lift is recorded
        protect_until = None
        if protect:
            periods = periods_of(now, self.settings.quota_timezone)
            monthly = current is not None and current.quota is not None and Quota(current.quota).monthly
            protect_until = periods.month_ends_at if monthly else periods.day_ends_at
        block = current or Block(key, False, Origin.ADMIN, reason, actor)
        action_key = digest("admin", uuid.uuid4())
        return self._lift(block, actor=actor, reason=reason, action_key=action_key, protect_until=protect_until,
                          notify=(NotificationKind.ADMIN_UNBLOCKED, action_key))

    def expire_due(self) -> list[Result]:
        """Lift every block whose period reset (or whose admin duration ended) — the daily reset."""
        due = store.due(self.conn, self.clock())
        self.conn.commit()
        results = []
        for listed in due:
            # As it is now, and locked until the lift is recorded: an admin may have just acted on it.
            block = store.block_of(self.conn, listed.principal, for_update=True)
            if block is None or block.active(self.clock()) or not block.blocked:
                self.conn.commit()
                continue
            reason = "quota period reset" if block.origin is Origin.QUOTA else "block duration ended"
            key = digest("expire", block.principal, block.blocked_at, block.blocked_until)
            results.append(self._lift(block, actor=SYSTEM, reason=reason, action_key=key, protect_until=None,
                                      notify=(NotificationKind.UNBLOCKED, key)))
        return results

    def lift_for(self, block: Block, *, reason: str) -> Result:
        """The reconciler's lift (limit raised, protected principal)."""
        key = digest("reconcile-lift", uuid.uuid4())
        return self._lift(block, actor=RECONCILER, reason=reason, action_key=key, protect_until=None,
                          notify=(NotificationKind.UNBLOCKED, key))

    def _lift(self, block: Block, *, actor: str, reason: str, action_key: str, protect_until: datetime | None,
              notify: tuple[NotificationKind, str]) -> Result:
        conn, now = self.conn, self.clock()
        if self.iam is not None and block.iam_target and block.iam_state not in ("refused", "lifted", "none"):
            try:
                change = self.iam.lift(Target.parse(block.iam_target))
            except IamRefused as refused:
                return self._lift_refused(block, refused.refusal, actor=actor, reason=reason, action_key=action_key)
            outcome = Outcome.APPLIED if change.changed else Outcome.UNCHANGED
        elif self.iam is None and block.blocked:
            change, outcome = Change(False, f"shadow: would lift {block.iam_target}"), Outcome.SHADOW
        else:
            change, outcome = Change(False, "no deny in IAM"), Outcome.UNCHANGED
        person = store.principal(conn, block.principal)
        context = QuotaContext(Scope(block.scope), Quota(block.quota), block.period or "", block.usage or 0,
                               block.limit or 0) if block.scope and block.quota else None
        store.save_block(conn, block.but(
            blocked=False, actor=actor, reason=reason, iam_state="lifted" if block.blocked else block.iam_state,
            iam_detail=change.description[:512], protected_until=protect_until or block.protected_until))
        store.record(conn, AuditAction(
            action_key, now, actor, Action.UNBLOCK, outcome, block.principal, reason, block.scope, block.quota,
            block.period, block.usage, block.limit, None, protect_until, change.description[:1024], self.shadow))
        kind, dedupe = notify
        had_effect = block.blocked and block.iam_state in ("applied", "shadow", "pending")
        if had_effect or (kind is NotificationKind.ADMIN_UNBLOCKED and (block.blocked or protect_until)):
            store.enqueue(conn, self._note(kind, dedupe, person, block.principal, context=context,
                                           access_returns_at=None, actor=actor, reason=reason, action_key=action_key,
                                           protected_until=protect_until))
        conn.commit()
        self.metrics.actions.labels(Action.UNBLOCK, outcome, _actor_kind(actor)).inc()
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
        conn, now = self.conn, self.clock()
        store.save_block(conn, block.but(blocked=False, actor=actor, reason=reason, iam_state="lift_refused",
                                         iam_detail=refusal.detail[:512]))
        store.record(conn, AuditAction(
            action_key, now, actor, Action.UNBLOCK, Outcome.REFUSED, block.principal, reason, block.scope,
            block.quota, block.period, block.usage, block.limit, None, None,
            f"refused ({refusal.reason}): {refusal.detail}"[:1024], self.shadow))
        store.enqueue(conn, Notification(
            digest("alert", block.principal, "lift", refusal.reason, now.date()), NotificationKind.ALERT, "admins",
            block.principal, now, quota=block.quota, period=block.period, actor=actor,
            reason=f"could not lift the deny of {block.principal} ({refusal.reason}): {refusal.detail}",
            action_key=action_key, shadow=self.shadow))
        conn.commit()
        self.metrics.refusals.labels(refusal.reason).inc()
        self.metrics.actions.labels(Action.UNBLOCK, Outcome.REFUSED, _actor_kind(actor)).inc()
        log.error("lift refused: the deny stays in IAM until its policy is repaired", extra={
            "principal": block.principal, "reason": refusal.reason, "detail": refusal.detail})
        return Result(block.principal, Action.UNBLOCK, Outcome.REFUSED, refusal.detail)

    # -- helpers ----------------------------------------------------------------------------------

    def _note(self, kind: NotificationKind, dedupe: str, person: PrincipalRecord | None, key: str, *,
              context: QuotaContext | None, access_returns_at: datetime | None, actor: str, reason: str,
              action_key: str, protected_until: datetime | None = None) -> Notification:
        return Notification(
            digest(kind, dedupe), kind, "user", key, self.clock(),
            display_name=person.display_name if person else None, email=person.email if person else None,
            team=(person.team if person and person.team else None) or (context.team if context else None),
            quota=context.quota.value if context else None,
            quota_scope=context.scope.value if context else None, period=context.period if context else None,
            percent=100 if kind is NotificationKind.BLOCKED else None,
            usage=context.usage if context else None, limit=context.limit if context else None,
            access_returns_at=access_returns_at, protected_until=protected_until, actor=actor, reason=reason,
            action_key=action_key, shadow=self.shadow)

    def refresh_denied(self) -> int:
        with self.conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM blocks WHERE blocked = 1 AND iam_state IN ('applied', 'shadow', "
                        "'pending') AND (blocked_until IS NULL OR blocked_until > %s)",
                        (to_db(self.clock()),))
            (count,) = cur.fetchone() or (0,)
        self.conn.commit()
        self.metrics.denied.set(int(count))
        return int(count)

    def status(self, key: str | None = None) -> list[dict[str, object]]:
        now = self.clock()
        rows = store.blocks(self.conn, principal=key)
        self.conn.commit()
        if key and not rows:
            rows = [Block(key, False, Origin.QUOTA, "", "")]

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return [{
            "principal": b.principal, "blocked": b.active(now), "blocked_until": iso(b.blocked_until) if b.blocked
            else None, "indefinite": b.active(now) and b.blocked_until is None, "reason": b.reason or None,
            "origin": b.origin.value if b.blocked else None, "actor": b.actor or None, "quota": b.quota,
            "period": b.period, "blocked_at": iso(b.blocked_at),
            "protected_until": iso(b.protected_until) if b.shielded(now) else None,
            "protected_principal": self.is_protected(b.principal), "iam_state": b.iam_state,
            "iam_target": b.iam_target, "shadow": b.shadow,
        } for b in rows if key or b.active(now) or b.shielded(now)]
