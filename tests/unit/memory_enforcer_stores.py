"""In-memory implementations of the enforcer's ports (enforcement/ports.py), for tests without servers.

`MemoryBlockStore` keeps a transaction as MariaDB does for the enforcer: writes are seen by the same
store at once and kept only on `commit()`; `rollback()` (what the loop's session reset amounts to) drops
them. Uniqueness is as in the schema: one block per principal, one audit row per action key, one
notification per dedupe key. `MemoryIam` holds the targets denied (and the shared roles carrying the
session policies), and can be told to fail. `MemoryUsage` is the counters and limits the reconciler reads.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from botocore.exceptions import ClientError

from bedrock_usage.notifications import Notification
from bedrock_usage.usage import PersonUsage, TeamUsage
from enforcement.iam import Change
from enforcement.model import DENY_WANTED, Action, ActorKind, AuditAction, Block, Origin, Outcome
from enforcement.targets import PrincipalRecord, Target

_DENIED = (Outcome.APPLIED, Outcome.UNCHANGED, Outcome.SHADOW)


@dataclass
class _Tables:
    blocks: dict[str, Block] = field(default_factory=dict)
    actions: dict[str, AuditAction] = field(default_factory=dict)  # by action key, in insertion order
    notes: dict[str, Notification] = field(default_factory=dict)  # by dedupe key, in insertion order


class MemoryBlockStore:
    def __init__(self) -> None:
        self.people: dict[str, PrincipalRecord] = {}
        self._committed = _Tables()
        self._working = _Tables()
        self.commits = 0

    # -- the transaction ---------------------------------------------------------------------------

    def commit(self) -> None:
        self._committed = copy.deepcopy(self._working)
        self.commits += 1

    def rollback(self) -> None:
        self._working = copy.deepcopy(self._committed)

    # -- what tests read (committed state only: what a crash would leave) -------------------------

    @property
    def saved_blocks(self) -> dict[str, Block]:
        return dict(self._committed.blocks)

    @property
    def audit(self) -> list[AuditAction]:
        return list(self._committed.actions.values())

    @property
    def outbox(self) -> list[Notification]:
        return list(self._committed.notes.values())

    # -- ports.BlockStore --------------------------------------------------------------------------

    def principal(self, key: str) -> PrincipalRecord | None:
        return self.people.get(key)

    def block_of(self, key: str, *, for_update: bool = False) -> Block | None:
        return self._working.blocks.get(key)

    def blocks(self, *, blocked_only: bool = False, principal: str | None = None) -> list[Block]:
        return [b for k, b in sorted(self._working.blocks.items())
                if (b.blocked or not blocked_only) and (principal is None or k == principal)]

    def due(self, now: datetime) -> list[Block]:
        return sorted((b for b in self._working.blocks.values()
                       if b.blocked and b.blocked_until is not None and b.blocked_until <= now),
                      key=lambda b: b.blocked_until or now)

    def save_block(self, block: Block) -> None:
        self._working.blocks[block.principal] = block

    def ensure_rows(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._working.blocks.setdefault(key, Block(key, False, Origin.QUOTA, "", ActorKind.SYSTEM))

    def record(self, action: AuditAction) -> bool:
        if action.action_key in self._working.actions:
            return False
        self._working.actions[action.action_key] = action
        return True

    def enqueue(self, note: Notification) -> bool:
        if note.dedupe_key in self._working.notes:
            return False
        self._working.notes[note.dedupe_key] = note
        return True

    def quota_denies_since(self, since: datetime, *, also: Collection[str] = ()) -> int:
        return len({a.principal for a in self._working.actions.values()
                    if a.at >= since and a.action is Action.BLOCK and a.outcome in _DENIED
                    and a.actor in (ActorKind.SYSTEM, ActorKind.RECONCILER)} | set(also))

    def denied_count(self, now: datetime) -> int:
        return sum(1 for b in self._working.blocks.values() if b.blocked and b.iam_state in DENY_WANTED
                   and (b.blocked_until is None or b.blocked_until > now))


def throttled(operation: str = "AttachUserPolicy") -> ClientError:
    """What IAM answers when it is overwhelmed: transient, propagated (the decision stays unacknowledged)."""
    return ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, operation)


class MemoryIam:
    """`ports.IamDrift`: the targets denied. `failures` are raised, one per call to apply or lift, before
    anything changes."""

    def __init__(self) -> None:
        self.denied: set[str] = set()
        self.roles_with_pool: set[str] = set()  # shared roles carrying the session policies
        self.failures: list[BaseException] = []
        self.calls = 0

    def _fail(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)

    def apply(self, target: Target) -> Change:
        self._fail()
        if str(target) in self.denied:
            return Change(False, f"{target} already denied")
        self.denied.add(str(target))
        if target.role_name:  # as IamPolicies: a session deny hangs on its role carrying the session policies
            self.roles_with_pool.add(target.role_name)
        return Change(True, f"deny {target}")

    def lift(self, target: Target) -> Change:
        self._fail()
        if str(target) not in self.denied:
            return Change(False, f"{target}: not denied")
        self.denied.discard(str(target))
        return Change(True, f"lift {target}")

    def actual(self) -> set[str]:
        return set(self.denied)

    def ensure_pool_attached(self, role_name: str) -> list[str]:
        if role_name in self.roles_with_pool:
            return []
        self.roles_with_pool.add(role_name)
        return [f"attach the session policies to role {role_name}"]


@dataclass
class MemoryUsage:
    """`ports.QuotaUsage`: the people's and teams' usage as given (whatever the day), and team members."""

    people_usage: list[PersonUsage] = field(default_factory=list)
    teams_usage: list[TeamUsage] = field(default_factory=list)
    members: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # by (team, period)

    def people(self, day: date, *, include_idle: bool = False) -> list[PersonUsage]:
        return list(self.people_usage)

    def teams(self, day: date, names: Sequence[str] | None = None) -> list[TeamUsage]:
        return [t for t in self.teams_usage if names is None or t.team in names]

    def members_of(self, teams: Sequence[str], period_id: str) -> dict[str, list[str]]:
        return {team: self.members[(team, period_id)] for team in teams if (team, period_id) in self.members}
