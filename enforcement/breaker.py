"""The circuit breaker on quota denies (cloud-custodian's `max-resources`, for people).

Past MAX_QUOTA_DENIES_PER_HOUR new quota denies in an hour, something is more likely wrong (a limit set
to 1, a bad quota file) than that many people over quota at once. Further quota denies are refused and
alerted until the hour's count falls or an admin raises the setting; the reconciler applies them then.
Admin blocks are not limited (the state machine does not ask).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from enforcement.ports import BlockStore
from enforcement.targets import Refusal, RefusalReason, Target

WINDOW = timedelta(hours=1)


class QuotaDenyBreaker:
    def __init__(self, store: BlockStore, *, max_per_hour: int, clock: Callable[[], datetime]) -> None:
        """`max_per_hour` 0: no limit."""
        self._store, self._cap, self._clock = store, max_per_hour, clock

    def admit(self, target: Target) -> Target | Refusal:
        """The target, while the hour's quota denies are under the cap; else the refusal to record."""
        if self._cap == 0:
            return target
        count = self._store.quota_denies_since(self._clock() - WINDOW)
        if count < self._cap:
            return target
        return Refusal(RefusalReason.RATE_LIMIT, f"{count} people were denied for quotas in the last hour"
                       f" (MAX_QUOTA_DENIES_PER_HOUR={self._cap}): check the limits, or raise the setting")
