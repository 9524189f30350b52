"""MySQL adapter of the enforcer: people, blocks, the audit trail and the notification outbox.

`MySQLBlockStore` is the enforcer's `ports.BlockStore` on a session's connection; the functions below it
(the outbox writer, the audit trail reader, dead letters) take a connection, for the other writers of the
outbox and for bedrockctl. Neither commits on its own: the caller does, so that a block, its audit row and
its notification commit together. DATETIME columns hold UTC (see bedrock_usage.db); enums are stored as
their string values and read back as enums here, at the boundary.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import astuple, fields
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from pymysql.connections import Connection

from bedrock_usage.db import from_db, to_db
from bedrock_usage.identity import IdentityType
from bedrock_usage.limits import identity_type_of_key
from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.notifications import Notification
from bedrock_usage.quota import Quota, Scope
from enforcement.model import DENY_WANTED, Action, ActorKind, AuditAction, Block, IamState, Origin, Outcome
from enforcement.targets import PrincipalRecord


def _db(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_db(value)
    if isinstance(value, dict):  # a notification's payload: the JSON column
        return json.dumps(value, default=str)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _columns(names: list[str]) -> list[str]:
    # `usage` and `limit` are reserved words in SQL: their columns are usage_count and limit_count.
    return [{"usage": "usage_count", "limit": "limit_count"}.get(n, n) for n in names]


_PRINCIPAL_COLUMNS = "quota_key, identity_type, arn, account_id, display_name, email, team, role_arn, role_id," \
                     " session_name"
_BLOCK_FIELDS = [f.name for f in fields(Block)]
_BLOCK_COLUMNS = _columns(_BLOCK_FIELDS)
_ACTION_FIELDS = [f.name for f in fields(AuditAction)]
_ACTION_COLUMNS = _columns(_ACTION_FIELDS)
_NOTE_FIELDS = [f.name for f in fields(Notification)]
_NOTE_COLUMNS = _columns(_NOTE_FIELDS)


def _block(row: Sequence[Any]) -> Block:
    values = dict(zip(_BLOCK_FIELDS, row, strict=True))
    for name in ("blocked_at", "blocked_until", "protected_until"):
        values[name] = from_db(values[name])
    values["blocked"], values["shadow"] = bool(values["blocked"]), bool(values["shadow"])
    values["origin"] = Origin(values["origin"])
    values["scope"] = Scope(values["scope"]) if values["scope"] else None
    values["quota"] = Quota(values["quota"]) if values["quota"] else None
    values["iam_state"] = IamState(values["iam_state"])
    return Block(**values)


def _in(values: Iterable[StrEnum]) -> str:
    """An SQL list of enum values (constants of ours, never input)."""
    return ", ".join(f"'{v.value}'" for v in sorted(values))


# A block put in force for a quota, as the circuit breaker counts it (a refusal did not deny anyone).
_DENIED = (Outcome.APPLIED, Outcome.UNCHANGED, Outcome.SHADOW)


class MySQLBlockStore:
    """The enforcer's storage in MariaDB (`ports.BlockStore`): each call on the session's current
    connection, which the loop resets after a failure."""

    def __init__(self, session: MySQLSession) -> None:
        self._session = session

    @property
    def conn(self) -> Connection:
        return self._session.conn

    def commit(self) -> None:
        self.conn.commit()

    # -- people ----------------------------------------------------------------------------------

    def principal(self, key: str) -> PrincipalRecord | None:
        """The person as the consumer recorded them; for a never-seen IAM user or role, what the key says."""
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT {_PRINCIPAL_COLUMNS} FROM principals WHERE quota_key = %s", (key,))
            row = cur.fetchone()
        if row:
            return PrincipalRecord(row[0], IdentityType(row[1]), *row[2:])
        try:
            kind = identity_type_of_key(key)
        except ValueError:
            return None
        if kind in (IdentityType.IAM_USER, IdentityType.ROLE):
            return PrincipalRecord(key, kind, arn=key, account_id=key.split(":")[4])
        return PrincipalRecord(key, kind)

    # -- blocks ----------------------------------------------------------------------------------

    def block_of(self, key: str, *, for_update: bool = False) -> Block | None:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(_BLOCK_COLUMNS)} FROM blocks WHERE principal = %s"
                        + (" FOR UPDATE" if for_update else ""), (key,))
            row = cur.fetchone()
        return _block(row) if row else None

    def blocks(self, *, blocked_only: bool = False, principal: str | None = None) -> list[Block]:
        where, params = [], []
        if blocked_only:
            where.append("blocked = 1")
        if principal:
            where.append("principal = %s")
            params.append(principal)
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(_BLOCK_COLUMNS)} FROM blocks"
                        + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY principal", params)
            return [_block(r) for r in cur.fetchall()]

    def due(self, now: datetime) -> list[Block]:
        """Blocks whose time is up (indefinite blocks never are)."""
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(_BLOCK_COLUMNS)} FROM blocks WHERE blocked = 1 AND blocked_until <= %s"
                        " ORDER BY blocked_until", (to_db(now),))
            return [_block(r) for r in cur.fetchall()]

    def ensure_rows(self, keys: Sequence[str]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany("INSERT IGNORE INTO blocks (principal, blocked, origin, reason, actor)"
                            " VALUES (%s, 0, %s, '', %s)",
                            [(key, Origin.QUOTA.value, ActorKind.SYSTEM.value) for key in keys])

    def save_block(self, block: Block) -> None:
        values = [_db(v) for v in astuple(block)]
        updates = ", ".join(f"{c} = VALUES({c})" for c in _BLOCK_COLUMNS[1:])
        with self.conn.cursor() as cur:
            cur.execute(f"INSERT INTO blocks ({', '.join(_BLOCK_COLUMNS)}) VALUES ({', '.join(['%s'] * len(values))})"
                        f" ON DUPLICATE KEY UPDATE {updates}", values)

    def denied_count(self, now: datetime) -> int:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM blocks WHERE blocked = 1 AND iam_state IN ({_in(DENY_WANTED)})"
                        " AND (blocked_until IS NULL OR blocked_until > %s)", (to_db(now),))
            (count,) = cur.fetchone() or (0,)
        return int(count)

    # -- audit and outbox ------------------------------------------------------------------------

    def record(self, action: AuditAction) -> bool:
        """Insert the audit row; False if this action (same key) was recorded already."""
        values = [_db(getattr(action, n)) for n in _ACTION_FIELDS]
        with self.conn.cursor() as cur:
            return bool(cur.execute(
                f"INSERT IGNORE INTO enforcement_actions ({', '.join(_ACTION_COLUMNS)})"
                f" VALUES ({', '.join(['%s'] * len(values))})", values))

    def enqueue(self, note: Notification) -> bool:
        return enqueue(self.conn, note)

    def quota_denies_since(self, since: datetime, *, also: Collection[str] = ()) -> int:
        denied = (f"FROM enforcement_actions WHERE at >= %s AND action = %s AND outcome IN ({_in(_DENIED)})"
                  " AND actor IN (%s, %s)")
        params = (to_db(since), Action.BLOCK.value, ActorKind.SYSTEM.value, ActorKind.RECONCILER.value)
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(DISTINCT principal) {denied}", params)
            (count,) = cur.fetchone() or (0,)
            if also:  # the people being denied who are not in the trail already
                cur.execute(f"SELECT DISTINCT principal {denied} AND principal IN ({', '.join(['%s'] * len(also))})",
                            (*params, *also))
                count += len(set(also) - {row[0] for row in cur.fetchall()})
        return int(count)


# -- for other writers of the outbox, and bedrockctl --------------------------------------------------


def enqueue(conn: Connection, note: Notification) -> bool:
    """Queue a notification for the notifier; False if its dedupe key is queued already."""
    values = [_db(getattr(note, n)) for n in _NOTE_FIELDS]
    with conn.cursor() as cur:
        return bool(cur.execute(
            f"INSERT IGNORE INTO notifications ({', '.join(_NOTE_COLUMNS)}, next_attempt_at)"
            f" VALUES ({', '.join(['%s'] * len(values))}, %s)", [*values, to_db(note.created_at)]))


def actions(conn: Connection, *, principal: str | None = None, since: datetime | None = None,
            limit: int = 100) -> list[dict[str, Any]]:
    where: list[str] = []
    params: list[Any] = []
    if principal:
        where.append("principal = %s")
        params.append(principal)
    if since:
        where.append("at >= %s")
        params.append(to_db(since))
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(_ACTION_COLUMNS)} FROM enforcement_actions"
                    + (" WHERE " + " AND ".join(where) if where else "")
                    + " ORDER BY id DESC LIMIT %s", [*params, limit])
        rows = [dict(zip(_ACTION_FIELDS, r, strict=True)) for r in cur.fetchall()]
    for row in rows:
        row["at"], row["blocked_until"] = from_db(row["at"]), from_db(row["blocked_until"])
        row["shadow"] = bool(row["shadow"])
    return rows[::-1]


def dead_letter(conn: Connection, *, dedupe_key: str, source: str, reason: str, detail: str, raw: bytes,
                now: datetime) -> None:
    with conn.cursor() as cur:
        cur.execute("INSERT IGNORE INTO dead_letters (dedupe_key, source, reason, detail, raw, received_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s)", (dedupe_key, source, reason, detail[:1024], raw, to_db(now)))
