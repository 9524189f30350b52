"""A long-running loop's health: healthy while an iteration has succeeded lately; otherwise the /health
answer says for how long not, and the last error."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

HEALTHY_WITHIN_SECONDS = 60.0


@dataclass
class Heartbeat:
    within_seconds: float = HEALTHY_WITHIN_SECONDS
    last_ok: float = field(default_factory=time.monotonic)
    last_error: str = ""

    def beat(self) -> None:
        self.last_ok = time.monotonic()

    def failed(self, error: BaseException) -> str:
        self.last_error = f"{type(error).__name__}: {error}"
        return self.last_error

    def healthy(self) -> tuple[bool, str]:
        idle = time.monotonic() - self.last_ok
        if idle <= self.within_seconds:
            return True, "ok"
        return False, f"no successful iteration for {idle:.0f}s: {self.last_error}"
