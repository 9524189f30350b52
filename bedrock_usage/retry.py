"""Retry on named transient errors only, with full-jitter capped exponential backoff.

Anything not named is a bug or bad data and propagates: retrying it would spin forever.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def backoff_delay(attempt: int, base: float = 0.2, cap: float = 30.0) -> float:
    return random.uniform(0, min(cap, base * 2**attempt))


def retry_transient(
    fn: Callable[[], T],
    transient: tuple[type[BaseException], ...],
    *,
    on_retry: Callable[[BaseException, int], None] = lambda error, attempt: None,
    max_attempts: int | None = None,
    cap: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    attempt = 0
    while True:
        try:
            return fn()
        except transient as error:
            attempt += 1
            if max_attempts is not None and attempt >= max_attempts:
                raise
            on_retry(error, attempt)
            delay = backoff_delay(attempt, cap=cap)
            log.warning("dependency unavailable, retrying", extra={
                "error": f"{type(error).__name__}: {error}", "attempt": attempt, "delay_s": round(delay, 2)})
            sleep(delay)
