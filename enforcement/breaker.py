"""The circuit breaker on quota denies (cloud-custodian's `max-resources`, for people).

Past MAX_QUOTA_DENIES_PER_HOUR new quota denies in an hour, something is more likely wrong (a limit set
to 1, a bad quota file) than that many people over quota at once. Further quota denies are refused and
alerted until the hour's count falls or an admin raises the setting; the reconciler applies them then.
Admin blocks are not limited (the state machine does not ask).

The count is the audit trail's (people denied for a quota in the last hour), plus the people admitted
but not yet recorded: a team's members are denied several at a time (blocks.Enforcer's lanes), and each
of them must count from the moment it is admitted, or ten lanes reading 95 at once would deny 105. One
breaker is shared by every lane of a process; an admission is released once its audit row is committed
(the trail counts it from then) or its deny failed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from enforcement.ports import BlockStore
from enforcement.targets import Refusal, RefusalReason, Target

WINDOW = timedelta(hours=1)


class QuotaDenyBreaker:
    def __init__(self, *, max_per_hour: int, clock: Callable[[], datetime]) -> None:
        """`max_per_hour` 0: no limit."""
        self._cap, self._clock = max_per_hour, clock
        self._lock = threading.Lock()
        self._admitted: dict[str, int] = {}  # principal → admissions not yet recorded in the audit trail

    def admit(self, target: Target, principal: str, store: BlockStore) -> Target | Refusal:
        """The target, while the hour's quota denies (recorded, or admitted and in progress) are under the
        cap; else the refusal to record. An admitted target must be `release`d."""
        with self._lock:
            if self._cap:
                others = frozenset(self._admitted) - {principal}
                count = store.quota_denies_since(self._clock() - WINDOW, also=others)
                if count >= self._cap:
                    return Refusal(RefusalReason.RATE_LIMIT, f"{count} people were denied for quotas in the last"
                                   f" hour (MAX_QUOTA_DENIES_PER_HOUR={self._cap}): check the limits, or raise"
                                   " the setting")
            self._admitted[principal] = self._admitted.get(principal, 0) + 1
            return target

    def release(self, principal: str) -> None:
        """The admitted deny is recorded (or failed): the audit trail alone counts it from now on."""
        with self._lock:
            left = self._admitted.get(principal, 0) - 1
            if left > 0:
                self._admitted[principal] = left
            else:
                self._admitted.pop(principal, None)
