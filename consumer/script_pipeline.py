"""Many script calls (EVALSHA) and single-key commands in one round trip, on a single Redis or a Redis Cluster.

On a single Redis this is redis-py's own pipeline, unchanged (it checks the scripts are loaded before
sending, SCRIPT EXISTS, and loads those Redis has lost).

On a cluster redis-py's ClusterPipeline refuses EVALSHA, so the calls are grouped by the node serving
their first key's slot (every key of one call shares a hash tag: bedrock_usage.keys) and each node gets a
plain pipeline of its own. Those are sent without SCRIPT EXISTS (one round trip less per node), so a node
that never saw the script (a new or failed-over master) answers NOSCRIPT; a slot that moved answers MOVED or
ASK. Either way only that call is sent again, alone, through the cluster client, which loads the script on
every master and follows the redirection (and refreshes its slot map). A call is never sent twice after an
answer other than those: the counting script's reply tells which events were new, so a second run would
report them as duplicates.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script

from bedrock_usage.redis_state import RedisClient

# Answers meaning "not run: ask again elsewhere or after loading the script".
_RETRY_ALONE: tuple[type[BaseException], ...] = (
    redis.exceptions.NoScriptError,
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
)


@dataclass(frozen=True)
class _Call:
    script: Script | None  # None: a plain command (args[0] its name)
    keys: tuple[str, ...]
    args: tuple[Any, ...]

    def send(self, target: Any) -> Any:
        """Queue on a node's pipeline, or run on the cluster client."""
        if self.script is None:
            return target.execute_command(*self.args)
        return target.evalsha(self.script.sha, len(self.keys), *self.keys, *self.args)


class ScriptPipeline:
    """Queue `script()` and `command()` calls, then `execute()`: their replies in order (the first error
    raised, as redis-py's pipeline does)."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._cluster = isinstance(client, redis.RedisCluster)
        self._pipe = None if self._cluster else client.pipeline(transaction=False)
        self._calls: list[_Call] = []

    def __len__(self) -> int:
        return len(self._calls)

    def script(self, script: Script, keys: list[str], args: list[Any]) -> None:
        if self._pipe is not None:
            script(keys=keys, args=args, client=self._pipe)
        self._calls.append(_Call(script, tuple(keys), tuple(args)))

    def command(self, name: str, key: str, *args: Any) -> None:
        """A command on one key (its only key, or the one that names its slot)."""
        if self._pipe is not None:
            self._pipe.execute_command(name, key, *args)
        self._calls.append(_Call(None, (key,), (name, key, *args)))

    def execute(self) -> list[Any]:
        calls, self._calls = self._calls, []
        if self._pipe is not None:
            return list(self._pipe.execute())
        if not calls:
            return []
        assert isinstance(self._client, redis.RedisCluster)
        return _execute_on_cluster(self._client, calls)


def _execute_on_cluster(client: redis.RedisCluster, calls: list[_Call]) -> list[Any]:
    by_node: dict[str, tuple[Any, list[int]]] = {}
    for i, call in enumerate(calls):
        slot: int = client.keyslot(call.keys[0])  # type: ignore[no-untyped-call]
        node = client.nodes_manager.get_node_from_slot(slot)
        if node.name not in by_node:
            by_node[node.name] = (client.get_redis_connection(node).pipeline(transaction=False), [])
        pipe, positions = by_node[node.name]
        call.send(pipe)
        positions.append(i)
    replies: list[Any] = [None] * len(calls)
    try:
        for pipe, positions in by_node.values():
            for i, reply in zip(positions, pipe.execute(raise_on_error=False), strict=True):
                replies[i] = reply
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        # A node gone (a failover): the batch is retried by the caller; let the client learn the new map.
        _refresh(client)
        raise
    for i, reply in enumerate(replies):
        if isinstance(reply, _RETRY_ALONE):
            replies[i] = _alone(client, calls[i])
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _alone(client: redis.RedisCluster, call: _Call) -> Any:
    if call.script is None:
        return client.execute_command(*call.args)  # type: ignore[no-untyped-call]
    # Script.__call__ loads the script on every master on NOSCRIPT; the client follows MOVED and ASK.
    return call.script(keys=list(call.keys), args=list(call.args), client=client)


def _refresh(client: redis.RedisCluster) -> None:
    # Still unreachable: the next attempt refreshes again.
    with contextlib.suppress(redis.exceptions.RedisError):
        client.nodes_manager.initialize()
