"""The Redis marker: how a process tells the Redis it counts in from one that forgot.

Redis is a cache of the record (MySQL), and it can lose everything without an error: FLUSHALL, a failover to
an empty replica, a restart without persistence. Counting on such a Redis would start everyone's quota from
zero again. So one random *epoch* id is written both in MySQL (`redis_marker`, the truth) and in Redis
(`Keys.marker`); the counting scripts are given the id the consumer expects and refuse to count when Redis
holds another one or none (the refusal is a Redis error reply starting with `REFUSAL`). The consumer then
rebuilds Redis from MySQL under a MySQL lock and writes a new epoch (consumer/redis_guard.py).

While a rebuild runs, Redis holds `rebuilding:<new epoch>` and MySQL says `rebuilding`: the rebuild counts
with that placeholder, every other consumer is refused and waits.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import redis
from pymysql.connections import Connection

from bedrock_usage.keys import Keys
from bedrock_usage.redis_state import RedisClient

# The counting scripts' error reply when the marker is not the expected one (checked before counting).
REFUSAL = "BUMARKER"


class MarkerState(StrEnum):
    READY = "ready"
    REBUILDING = "rebuilding"


class RedisForgot(Exception):
    """A counting script refused: Redis does not hold the marker this process expects (lost data, or a
    marker written since by a rebuild). Nothing of the refused script was counted; the batch is redone once
    Redis is marked again. Retried like an outage (nothing is checkpointed meanwhile)."""


@dataclass(frozen=True)
class Marker:
    epoch: str
    state: MarkerState
    written_at: datetime
    written_by: str

    @property
    def ready(self) -> bool:
        return self.state is MarkerState.READY


def new_epoch() -> str:
    return uuid.uuid4().hex


def placeholder(epoch: str) -> str:
    """What Redis holds while a rebuild towards `epoch` runs: no consumer expects it, so all wait."""
    return f"rebuilding:{epoch}"


def writer() -> str:
    """Who wrote a marker: host and process, for the operator reading `bedrockctl counters marker`."""
    return f"{socket.gethostname()}:{os.getpid()}"[:255]


def refused(error: BaseException) -> bool:
    """A Redis error (alone, or as a pipeline annotates it) that is the scripts' marker refusal."""
    return isinstance(error, redis.exceptions.ResponseError) and REFUSAL in str(error)


def lock_name(database: str, prefix: str) -> str:
    """The MySQL GET_LOCK of one deployment's rebuild. Locks are server-wide: named after the database and the
    key prefix, so deployments sharing a MySQL server never wait for each other (names: 64 characters at most)."""
    return "bu_redis_rebuild:" + hashlib.sha256(f"{database}\0{prefix}".encode()).hexdigest()[:32]


# -- MySQL: the marker of record ------------------------------------------------------------------

def read(conn: Connection) -> Marker | None:
    """The current marker (a fresh read: the snapshot of an earlier statement is not reused)."""
    conn.commit()
    with conn.cursor() as cur:
        cur.execute("SELECT epoch, state, written_at, written_by FROM redis_marker WHERE id = 1")
        row: Any = cur.fetchone()
    conn.commit()
    if row is None:
        return None
    return Marker(str(row[0]), MarkerState(str(row[1])), row[2].replace(tzinfo=UTC), str(row[3]))


def write(conn: Connection, epoch: str, state: MarkerState, by: str) -> None:
    """Set the marker of record (the caller commits)."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO redis_marker (id, epoch, state, written_at, written_by)"
            " VALUES (1, %s, %s, UTC_TIMESTAMP(3), %s)"
            " ON DUPLICATE KEY UPDATE epoch = VALUES(epoch), state = VALUES(state), written_at = VALUES(written_at),"
            " written_by = VALUES(written_by)",
            (epoch, state.value, by[:255]),
        )


def forget(conn: Connection) -> None:
    """Delete the marker of record: the next consumer treats Redis as new (writes a marker if MySQL holds no
    counted rows, else rebuilds first). For tools that empty Redis and MySQL together (the benchmark)."""
    with conn.cursor() as cur:
        cur.execute("DELETE FROM redis_marker")
    conn.commit()


def anything_counted(conn: Connection) -> bool:
    """Whether MySQL holds rows a Redis would have counted: an unmarked Redis then needs a rebuild."""
    with conn.cursor() as cur:
        cur.execute("SELECT EXISTS(SELECT 1 FROM bedrock_calls) OR EXISTS(SELECT 1 FROM invocation_logs)")
        row: Any = cur.fetchone()
    conn.commit()
    return bool(row and row[0])


# -- Redis: the copy the scripts check --------------------------------------------------------------

def in_redis(client: RedisClient, keys: Keys) -> str | None:
    """The marker Redis holds; on a cluster, the one every slot holds (None if any slot lost its own)."""
    if isinstance(client, redis.RedisCluster):
        values = set(client.mget_nonatomic(keys.markers()))
        value = values.pop() if len(values) == 1 else None
    else:
        value = client.get(keys.marker())
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def put(client: RedisClient, keys: Keys, value: str) -> None:
    """Write `value` into every marker key (no expiry: the marker lives as long as Redis's data)."""
    if isinstance(client, redis.RedisCluster):
        client.mset_nonatomic(dict.fromkeys(keys.markers(), value))
        return
    pipe = client.pipeline(transaction=False)
    for key in keys.markers():
        pipe.set(key, value)
    pipe.execute()


def stamp(conn: Connection, client: RedisClient, keys: Keys, by: str | None = None) -> str:
    """Write a fresh marker, ready, to MySQL and Redis at once, with no rebuild: for a Redis known to hold
    exactly what MySQL says (both new, or emptied together by a test or the benchmark). Returns the epoch."""
    epoch = new_epoch()
    write(conn, epoch, MarkerState.READY, by or writer())
    conn.commit()
    put(client, keys, epoch)
    return epoch
