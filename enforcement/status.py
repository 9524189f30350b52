"""Who is blocked, as `bedrockctl status` (and `block --dry-run`, `unblock`) show it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from enforcement.model import Block, Origin
from enforcement.ports import BlockStore
from enforcement.targets import is_protected


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class StatusView:
    def __init__(self, store: BlockStore, *, protected_principals: Sequence[str],
                 clock: Callable[[], datetime]) -> None:
        self._store, self._protected, self._clock = store, protected_principals, clock

    def rows(self, principal: str | None = None) -> list[dict[str, object]]:
        """The people blocked or shielded now; with `principal`, that one person's state (blocked or not).
        Plain values (strings, booleans, ISO times): printed as a table or as JSON."""
        now = self._clock()
        blocks = self._store.blocks(principal=principal)
        self._store.commit()
        if principal and not blocks:
            blocks = [Block(principal, False, Origin.QUOTA, "", "")]
        return [self._row(b, now) for b in blocks if principal or b.active(now) or b.shielded(now)]

    def _row(self, b: Block, now: datetime) -> dict[str, object]:
        return {
            "principal": b.principal, "blocked": b.active(now),
            "blocked_until": _iso(b.blocked_until) if b.blocked else None,
            "indefinite": b.active(now) and b.blocked_until is None, "reason": b.reason or None,
            "origin": b.origin.value if b.blocked else None, "actor": b.actor or None,
            "quota": b.quota.value if b.quota else None, "period": b.period, "blocked_at": _iso(b.blocked_at),
            "protected_until": _iso(b.protected_until) if b.shielded(now) else None,
            "protected_principal": is_protected(b.principal, self._protected), "iam_state": b.iam_state.value,
            "iam_target": b.iam_target, "shadow": b.shadow,
        }
