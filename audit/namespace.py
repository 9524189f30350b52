"""The isolated namespace a replay runs in: a MySQL database and a Redis key prefix of its own.

`<live database>_replay_<id>` is created and migrated from sql/ for the run, and given a copy of the live
reference data the processor reads to charge a call as live did — people and their teams, teams, limit
overrides, role keys, prices, resolved inference profiles — and nothing of the live record (calls, logs,
decisions). Its Redis keys are `<live prefix>:replay:<id>:…` on the live Redis (the counting scripts need
nothing else, and no live process reads or scans another prefix), with a Redis marker of their own, so the
counting scripts count. The replay's settings point the processor at both; the live database is only read.

Dropped after the run — the database, and the prefix's keys found by SCAN (on a cluster, on every
master) — unless kept for a look (`--keep`: `drop()` is then not called, and the names are printed).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import redis

from bedrock_usage import db, redis_marker
from bedrock_usage.keys import Keys
from bedrock_usage.migrate import migrate
from bedrock_usage.redis_state import RedisClient, redis_client
from consumer.settings import ConsumerSettings

log = logging.getLogger(__name__)

S = TypeVar("S", bound=ConsumerSettings)

# What the processor reads to charge a call to the same person and team, at the same price, as live did.
# In this order (teams before the people who name them). `directory_state` holds the Identity Center rule.
REFERENCE_TABLES = ("teams", "principals", "prices", "inference_profiles", "role_keys", "directory_state")
# A profile resolved live is not asked of Bedrock again during the replay (it would be after this age).
_PROFILES_KEPT_SECONDS = 100 * 365 * 86400
_GLOB_SPECIALS = "\\*?[]"


@dataclass(frozen=True)
class Namespace:
    """One replay's database and key prefix. `settings` are the live ones pointed at them."""

    id: str
    live: ConsumerSettings
    settings: ConsumerSettings

    @property
    def database(self) -> str:
        return self.settings.mysql.database

    @property
    def prefix(self) -> str:
        return self.settings.redis_key_prefix

    @property
    def keys(self) -> Keys:
        return Keys(self.prefix, cluster=self.settings.redis_cluster)

    def drop(self) -> int:
        """Drop the database and delete the prefix's keys; returns how many keys went."""
        conn = db.connect(self.settings.mysql, with_database=False)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{self.database}`")
            conn.commit()
        finally:
            conn.close()
        client = redis_client(self.settings)
        try:
            return delete_prefix(client, self.prefix)
        finally:
            with contextlib.suppress(Exception):
                client.close()


def namespace_settings(live: S, replay_id: str) -> S:
    """The live settings pointed at the namespace `replay_id`: its database and key prefix, nothing looked up."""
    database = f"{live.mysql.database}_replay_{replay_id}"
    if len(database) > 64:  # MySQL's limit on a database name
        database = f"{live.mysql.database[:64 - len(replay_id) - 8]}_replay_{replay_id}"
    return replace(live, mysql=replace(live.mysql, database=database),
                   redis_key_prefix=f"{live.redis_key_prefix}:replay:{replay_id}",
                   team_tag_lookup=False, inference_profile_max_age_seconds=_PROFILES_KEPT_SECONDS)


def create(live: S) -> Namespace:
    """Create, migrate and fill a new namespace (dropped again if any step fails)."""
    replay_id = uuid.uuid4().hex[:10]
    ns = Namespace(replay_id, live, namespace_settings(live, replay_id))
    try:
        migrate(ns.settings.mysql)
        copy_reference(live, ns.settings)
        conn = db.connect(ns.settings.mysql)
        client = redis_client(ns.settings)
        try:
            # Both new: MySQL and Redis hold the same (nothing counted), so a fresh marker needs no rebuild.
            redis_marker.stamp(conn, client, ns.keys, by=f"replay {replay_id}")
        finally:
            conn.close()
            with contextlib.suppress(Exception):
                client.close()
    except BaseException:
        with contextlib.suppress(Exception):
            ns.drop()
        raise
    log.info("replay namespace created", extra={"database": ns.database, "prefix": ns.prefix})
    return ns


@contextlib.contextmanager
def isolated(live: S, *, keep: bool = False) -> Iterator[Namespace]:
    """A namespace for the `with` block, dropped after it unless `keep`."""
    ns = create(live)
    try:
        yield ns
    finally:
        if not keep:
            ns.drop()


def copy_reference(live: ConsumerSettings, target: ConsumerSettings) -> dict[str, int]:
    """Copy REFERENCE_TABLES from the live database into the namespace's (same server), replacing what the
    migration put there (the shipped prices, the directory's first row). Only the columns both have: a
    namespace migrated ahead of a live database still gets what live holds. Returns rows per table."""
    copied: dict[str, int] = {}
    conn = db.connect(target.mysql)
    try:
        with conn.cursor() as cur:
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            for table in REFERENCE_TABLES:
                columns = _shared_columns(cur, live.mysql.database, target.mysql.database, table)
                if not columns:
                    continue
                listed = ", ".join(f"`{c}`" for c in columns)
                cur.execute(f"DELETE FROM `{table}`")
                cur.execute(f"INSERT INTO `{table}` ({listed}) SELECT {listed} FROM `{live.mysql.database}`.`{table}`")
                copied[table] = int(cur.rowcount)
            cur.execute("SET FOREIGN_KEY_CHECKS = 1")
        conn.commit()
    finally:
        conn.close()
    return copied


def _shared_columns(cur: Any, live: str, target: str, table: str) -> list[str]:
    cur.execute(
        "SELECT t.COLUMN_NAME FROM information_schema.COLUMNS t JOIN information_schema.COLUMNS l"
        " ON l.TABLE_SCHEMA = %s AND l.TABLE_NAME = t.TABLE_NAME AND l.COLUMN_NAME = t.COLUMN_NAME"
        " WHERE t.TABLE_SCHEMA = %s AND t.TABLE_NAME = %s ORDER BY t.ORDINAL_POSITION",
        (live, target, table))
    return [str(row[0]) for row in cur.fetchall()]


def delete_prefix(client: RedisClient, prefix: str) -> int:
    """Delete every key under `prefix:` (SCAN, never KEYS: the live Redis keeps serving); on a cluster, the
    keys of every master."""
    pattern = "".join("\\" + c if c in _GLOB_SPECIALS else c for c in prefix) + ":*"
    deleted = 0
    if isinstance(client, redis.RedisCluster):
        nodes: list[Any] = [node.redis_connection or client.get_redis_connection(node)
                            for node in client.get_primaries()]  # type: ignore[no-untyped-call]
    else:
        nodes = [client]
    for node in nodes:
        batch: list[bytes] = []
        for key in node.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += _unlink(node, batch)
                batch = []
        if batch:
            deleted += _unlink(node, batch)
    return deleted


def _unlink(node: Any, keys: list[bytes]) -> int:
    # On a cluster node the keys of one master may still span slots: one UNLINK each, pipelined.
    pipe = node.pipeline(transaction=False)
    for key in keys:
        pipe.unlink(key)
    return sum(int(n) for n in pipe.execute())
