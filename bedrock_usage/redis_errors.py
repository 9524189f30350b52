"""Redis answers that mean "not now": every process retries them with backoff and acknowledges nothing
meanwhile (the consumer checkpoints nothing, the enforcer acks no decision). Anything else from Redis is a bug
or bad data and propagates.

Full is an outage of its own: under `maxmemory-policy noeviction` (the stack's setting: an evicting policy
would silently drop counters, which all carry a TTL) Redis refuses every command that may grow its memory
with "OOM command not allowed when used memory > 'maxmemory'" (redis-py: OutOfMemoryError), while reads and
deletions still work. It lasts until memory is freed (counters expire) or raised, so it is told apart (a
metric label, a log line saying so) from Redis being unreachable.

Scripts (counters.lua, settle.lua) carry no shebang flags, so Redis checks the limit at the script's first
write that may grow memory, and only while the script has written nothing yet: a script is refused before
any of its writes, or runs to its end even past the limit — never half applied (seen on Redis 7.0: a script
whose first write went through ran on past maxmemory). Redis 7 answers the refusal as OOM, which redis-py
raises as OutOfMemoryError; Redis 6 wraps it in "ERR Error running script ... OOM command not allowed ...",
which `full_as_oom` raises as the OutOfMemoryError it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,  # a failover: the node we hold became a replica
    # Redis Cluster (REDIS_CLUSTER=true): a failover in progress, or slots without a master for now.
    redis.exceptions.ClusterDownError,
    redis.exceptions.MasterDownError,
    redis.exceptions.SlotNotCoveredError,
)
FULL: tuple[type[BaseException], ...] = (redis.exceptions.OutOfMemoryError,)
TRANSIENT: tuple[type[BaseException], ...] = UNAVAILABLE + FULL

_OOM_TEXT = "command not allowed when used memory > 'maxmemory'"
FULL_MESSAGE = ("Redis is full (used memory at maxmemory, policy noeviction): nothing is counted until memory is"
                " freed or raised; retrying")


def is_full(error: BaseException) -> bool:
    return isinstance(error, FULL)


@contextmanager
def full_as_oom() -> Iterator[None]:
    """Around a script's execution: Redis 6's wrapped OOM refusal raised as OutOfMemoryError."""
    try:
        yield
    except redis.exceptions.ResponseError as error:
        if not is_full(error) and _OOM_TEXT in str(error):
            raise redis.exceptions.OutOfMemoryError(str(error)) from error
        raise
