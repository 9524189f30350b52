"""What the enforcer needs of its storage and of IAM, as small interfaces.

The block/lift state machine, the decision dispatch, the breaker and the status view depend on these,
not on MySQL or boto3: `store.MySQLBlockStore` and `iam.IamPolicies` are the adapters run (and tested
against MariaDB and moto); tests/unit/memory_enforcer_stores.py holds in-memory ones for tests that run
without servers.

The transaction is the store's: writes are not durable until `commit()`, so that a block, its audit row
and its notification are kept together or not at all (see blocks.py for the order of writes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bedrock_usage.notifications import Notification
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

    def save_block(self, block: Block) -> None:
        ...

    def record(self, action: AuditAction) -> bool:
        """Add the audit row; False if this action (same key) was recorded already."""

    def enqueue(self, note: Notification) -> bool:
        """Queue a notification for the notifier; False if its dedupe key is queued already."""

    def quota_denies_since(self, since: datetime) -> int:
        """The circuit breaker's count: people whose block was put in force for a quota (by the enforcer
        or the reconciler, not by an admin) since then."""

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
