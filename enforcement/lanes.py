"""Several people's denies at once: a team decision expanded to its members (issue 12).

A team of 100 denied one after another took 8.6 s, nearly all of it waiting for IAM. `Lanes` runs up to
ENFORCER_IAM_CONCURRENCY of them at a time, each through the ordinary state machine (blocks.Enforcer:
block row → IAM deny → audit → notice, exactly once) on a lane of its own: its own MySQL connection (a
person's row lock, a commit, are a connection's), the process's IAM adapter (writes of the session deny
policies still take the IAM lock one at a time) and the process's one circuit breaker (which counts a
lane's deny from its admission, so the cap holds however many lanes run).

A lane whose deny fails (IAM throttled past its retries, MySQL gone) drops its connection; the others
finish theirs, and the first failure is raised: the decision stays unacknowledged and comes again, and
what was done is found done.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from enforcement.blocks import Enforcer
from enforcement.model import Result

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lane:
    enforcer: Enforcer
    reset: Callable[[], None]  # drop the lane's connection (after a failure: no transaction left open)


class Lanes:
    def __init__(self, size: int, make: Callable[[], Lane]) -> None:
        """`size` lanes at most, each made by `make` when first needed and kept."""
        self.size, self._make = size, make
        self._idle: queue.SimpleQueue[Lane] = queue.SimpleQueue()
        self._made: list[Lane] = []
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="enforcer-lane")

    def map(self, keys: Sequence[str], act: Callable[[Enforcer, str], Result]) -> list[Result]:
        """`act(enforcer, key)` for every key, `size` at a time; the results in the keys' order."""
        futures: list[Future[Result]] = [self._pool.submit(self._run, act, key) for key in keys]
        errors = [f.exception() for f in futures]  # waits for every one: no lane is left mid-transaction
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]

    def _run(self, act: Callable[[Enforcer, str], Result], key: str) -> Result:
        lane = self._take()
        try:
            return act(lane.enforcer, key)
        except BaseException:
            lane.reset()
            raise
        finally:
            self._idle.put(lane)

    def _take(self) -> Lane:
        try:
            return self._idle.get_nowait()
        except queue.Empty:  # at most `size` threads ask at once: at most `size` lanes are made
            lane = self._make()
            self._made.append(lane)
            return lane

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for lane in self._made:
            lane.reset()
