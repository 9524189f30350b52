"""MySQL adapter of the enforcer: people, blocks, the audit trail and the notification outbox.

Functions take a connection and leave the transaction to the caller, so that a block, its audit row and
its notification commit together. DATETIME columns hold UTC (see bedrock_usage.db).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import astuple, fields
from datetime import datetime
from typing import Any

from pymysql.connections import Connection

from bedrock_usage.db import from_db, to_db
from bedrock_usage.identity import IdentityType
from bedrock_usage.limits import identity_type_of_key
from bedrock_usage.notifications import Notification
from enforcement.model import AuditAction, Block, Origin
from enforcement.targets import PrincipalRecord


def _db(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_db(value)
    if isinstance(value, dict):  # a notification's payload: the JSON column
        return json.dumps(value, default=str)
    if isinstance(value, bool):
        return int(value)
    return value


# -- people ------------------------------------------------------------------------------------------

_PRINCIPAL_COLUMNS = "quota_key, identity_type, arn, account_id, display_name, email, team, role_arn, role_id," \
                     " session_name"


def principal(conn: Connection, key: str) -> PrincipalRecord | None:
    """The person as the consumer recorded them; for a never-seen IAM user or role, what the key says."""
    with conn.cursor() as cur:
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


# -- blocks ------------------------------------------------------------------------------------------

def _columns(names: list[str]) -> list[str]:
    # `usage` and `limit` are reserved words in SQL: their columns are usage_count and limit_count.
    return [{"usage": "usage_count", "limit": "limit_count"}.get(n, n) for n in names]


_BLOCK_FIELDS = [f.name for f in fields(Block)]
_BLOCK_COLUMNS = _columns(_BLOCK_FIELDS)


def _block(row: Sequence[Any]) -> Block:
    values = dict(zip(_BLOCK_FIELDS, row, strict=True))
    for name in ("blocked_at", "blocked_until", "protected_until"):
        values[name] = from_db(values[name])
    values["blocked"], values["shadow"] = bool(values["blocked"]), bool(values["shadow"])
    values["origin"] = Origin(values["origin"])
    return Block(**values)


def block_of(conn: Connection, key: str, *, for_update: bool = False) -> Block | None:
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(_BLOCK_COLUMNS)} FROM blocks WHERE principal = %s"
                    + (" FOR UPDATE" if for_update else ""), (key,))
        row = cur.fetchone()
    return _block(row) if row else None


def blocks(conn: Connection, *, blocked_only: bool = False, principal: str | None = None) -> list[Block]:
    where, params = [], []
    if blocked_only:
        where.append("blocked = 1")
    if principal:
        where.append("principal = %s")
        params.append(principal)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(_BLOCK_COLUMNS)} FROM blocks"
                    + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY principal", params)
        return [_block(r) for r in cur.fetchall()]


def due(conn: Connection, now: datetime) -> list[Block]:
    """Blocks whose time is up (indefinite blocks never are)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(_BLOCK_COLUMNS)} FROM blocks WHERE blocked = 1 AND blocked_until <= %s"
                    " ORDER BY blocked_until", (to_db(now),))
        return [_block(r) for r in cur.fetchall()]


def save_block(conn: Connection, block: Block) -> None:
    values = [_db(v) for v in astuple(block)]
    updates = ", ".join(f"{c} = VALUES({c})" for c in _BLOCK_COLUMNS[1:])
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO blocks ({', '.join(_BLOCK_COLUMNS)}) VALUES ({', '.join(['%s'] * len(values))})"
                    f" ON DUPLICATE KEY UPDATE {updates}", values)


# -- audit and outbox --------------------------------------------------------------------------------

_ACTION_FIELDS = [f.name for f in fields(AuditAction)]
_ACTION_COLUMNS = _columns(_ACTION_FIELDS)
_NOTE_FIELDS = [f.name for f in fields(Notification)]
_NOTE_COLUMNS = _columns(_NOTE_FIELDS)


def record(conn: Connection, action: AuditAction) -> bool:
    """Insert the audit row; False if this action (same key) was recorded already."""
    values = [_db(getattr(action, n)) for n in _ACTION_FIELDS]
    with conn.cursor() as cur:
        return bool(cur.execute(
            f"INSERT IGNORE INTO enforcement_actions ({', '.join(_ACTION_COLUMNS)})"
            f" VALUES ({', '.join(['%s'] * len(values))})", values))


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
