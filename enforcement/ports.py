"""What the enforcer needs of its storage, of IAM and of the usage counters, as small interfaces.

The block/lift state machine, the decision dispatch, the breaker, the status view and the reconciler
depend on these, not on MySQL, Redis or boto3: `store.MySQLBlockStore`, `iam.IamPolicies` and
`bedrock_usage.usage.UsageReader` are the adapters run (and tested against MariaDB, Redis and moto);
tests/unit/memory_enforcer_stores.py holds in-memory ones for tests that run without servers.

The transaction is the store's: writes are not durable until `commit()`, so that a block, its audit row
and its notification are kept together or not at all (see blocks.py for the order of writes).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Protocol

from bedrock_usage.notifications import Notification
from bedrock_usage.usage import PersonUsage, TeamUsage
from enforcement.iam import Change
from enforcement.model import AuditAction, Block
from enforcement.targets import PrincipalRecord, Target


class BlockStore(Protocol):
    def principal(self, key: str) -> PrincipalRecord | None:
        """The person as the consumer recorded them; for a never-seen IAM user or role, what the key says."""

    def block_of(self, key: str, *, for_update: bool = False) -> Block | None:
        """The person's block; `for_update` holds the person's row until the transaction ends, so that two
        actors on the same person cannot lose an update."""

    def blocks(self, *, blocked_only: bool = False, principal: str | None = None) -> list[Block]:
        ...

    def due(self, now: datetime) -> list[Block]:
        """Blocks whose time is up (indefinite blocks never are)."""

    def ensure_rows(self, keys: Sequence[str]) -> None:
        """A row for each person where none exists yet (not blocked: the same as no row), so that locking
        a person's row locks that row alone. Locking a row that does not exist locks the gap around it,
        and two actors inserting into one gap deadlock: lanes denying a team's new members at once did."""

    def save_block(self, block: Block) -> None:
        ...

    def record(self, action: AuditAction) -> bool:
        """Add the audit row; False if this action (same key) was recorded already."""

    def enqueue(self, note: Notification) -> bool:
        """Queue a notification for the notifier; False if its dedupe key is queued already."""

    def quota_denies_since(self, since: datetime, *, also: Collection[str] = ()) -> int:
        """The circuit breaker's count: people whose block was put in force for a quota (by the enforcer
        or the reconciler, not by an admin) since then, together with the people `also` (being denied,
        not yet recorded), each person once."""

    def denied_count(self, now: datetime) -> int:
        """People whose deny is in force or wanted now."""

    def commit(self) -> None:
        ...


class IamDenies(Protocol):
    """The IAM side of a block: put a person's deny in place, and take it away (both idempotent). A deny
    that cannot be scoped to the one person raises `iam.IamRefused`."""

    def apply(self, target: Target) -> Change:
        ...

    def lift(self, target: Target) -> Change:
        ...


class IamDrift(IamDenies, Protocol):
    """IAM as the reconciler compares it with the blocks (`iam.IamPolicies` in enforce mode): besides
    denying and lifting, what is denied now and a shared role's session policies put back. A policy it
    cannot read or change raises `iam.IamRefused`."""

    def actual(self) -> set[str]:
        """Every target the product's policies deny now, as `str(Target)` (`user:…`, `role:…`, `session:…`)."""

    def ensure_pool_attached(self, role_name: str) -> list[str]:
        """Re-attach to a shared role the session policies it no longer carries (a session deny works only
        through them); what was done, empty when nothing was missing."""


class QuotaUsage(Protocol):
    """Counters and limits as the reconciler reads them (`bedrock_usage.usage.UsageReader`: MySQL and Redis)."""

    def people(self, day: date, *, include_idle: bool = False) -> list[PersonUsage]:
        """Each person's usage and limits that day (`include_idle`: those without calls too)."""

    def teams(self, day: date, names: Sequence[str] | None = None) -> list[TeamUsage]:
        """Each team's usage and limits that day (never DEFAULT_TEAM)."""

    def members_of(self, teams: Sequence[str], period_id: str) -> dict[str, list[str]]:
        """The people counted in each team in a period (`YYYY-MM-DD` or `YYYY-MM`): whom its block covers."""
