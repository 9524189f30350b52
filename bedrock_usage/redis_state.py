"""Reading counters and keeping the limit-override cache in Redis (used by bedrockctl, the consumer
at start-up, and the enforcer's reconciler)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

import redis

from bedrock_usage.keys import Keys
from bedrock_usage.quota import Limits, Scope
from bedrock_usage.settings import SharedSettings

# Either client: a single Redis, or a Redis Cluster (REDIS_CLUSTER=true). Every key a script or a multi-key
# command touches shares one hash tag (bedrock_usage.keys), so the same code runs on both; what differs is
# how a batch of calls is pipelined (consumer/script_pipeline.py) and what "every key" means (each master).
RedisClient: TypeAlias = redis.Redis | redis.RedisCluster


def redis_client(settings: SharedSettings) -> RedisClient:
    """The Redis client every process uses (timeouts, so an outage is an error to retry, not a hang). On a
    cluster, REDIS_URL names any node (or ElastiCache's configuration endpoint): the client discovers the
    others and follows the slots (MOVED, ASK) itself."""
    options: dict[str, Any] = {"socket_timeout": 10, "socket_connect_timeout": 5, "health_check_interval": 30}
    if settings.redis_cluster:
        return redis.RedisCluster.from_url(settings.redis_url, **options)
    return redis.Redis.from_url(settings.redis_url, **options)


def text(value: Any) -> str:
    """A Redis reply value (bytes from redis-py) as str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def as_counts(raw: dict[Any, Any]) -> dict[str, int]:
    """A counter hash as redis-py returns it (bytes) → {field: count}."""
    return {text(k): int(v) for k, v in raw.items()}


class RedisState:
    def __init__(self, client: RedisClient, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def usage(self, scope: Scope, subject: str, period_id: str) -> dict[str, int]:
        raw: dict[Any, Any] = self._redis.hgetall(self._keys.counter(scope, subject, period_id))
        return as_counts(raw)

    def limit_overrides(self, scope: Scope, subject: str) -> Limits:
        raw: dict[Any, Any] = self._redis.hgetall(self._keys.limits(scope, subject))
        values = as_counts(raw)
        return Limits(values.get("daily"), values.get("monthly"), values.get("daily_cost"),
                      values.get("monthly_cost"))

    def set_limit_overrides(self, overrides: Iterable[tuple[Scope, str, Limits]]) -> int:
        """Replace the cached overrides of the given scopes (a None limit removes that override)."""
        pipe = self._redis.pipeline(transaction=False)
        count = 0
        for scope, subject, limits in overrides:
            key = self._keys.limits(scope, subject)
            pipe.delete(key)
            # Field names are the counting script's (Limits.fields); cost limits in nano-dollars.
            mapping = {name: value for name, value in limits.fields().items() if value is not None}
            if mapping:
                pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
            count += 1
        pipe.execute()
        return count
