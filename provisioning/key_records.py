"""`bedrock_api_keys`: which tool each Bedrock API key is for, who made it and who revoked it (never the
secret, which IAM shows once and this project never holds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymysql.connections import Connection

_COLUMNS = ("credential_id", "user_name", "quota_key", "tool", "created_at", "expires_at", "created_by",
            "revoked_at", "revoked_how", "revoked_by")


@dataclass(frozen=True)
class NewKey:
    credential_id: str
    user: str
    quota_key: str
    tool: str
    created: datetime  # IAM's CreateDate (stored as naive UTC)
    expires: datetime | None
    by: str


def _naive(instant: datetime | None) -> datetime | None:
    return instant.astimezone(UTC).replace(tzinfo=None) if instant is not None and instant.tzinfo else instant


def record(conn: Connection, key: NewKey) -> None:
    # IGNORE: the credential ID is IAM's and unique; a row already there is this key, recorded by a run
    # that failed after it (re-running create-key makes a new key, never a second row for this one).
    with conn.cursor() as cur:
        cur.execute("INSERT IGNORE INTO bedrock_api_keys (credential_id, user_name, quota_key, tool, created_at,"
                    " expires_at, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (key.credential_id, key.user, key.quota_key, key.tool, _naive(key.created),
                     _naive(key.expires), key.by[:255]))
    conn.commit()


def revoke(conn: Connection, credential_id: str, *, how: str, by: str) -> None:
    """Mark the key revoked (`deleted` or `deactivated`); a deactivated key deleted later becomes `deleted`,
    keeping when it was first revoked."""
    with conn.cursor() as cur:
        cur.execute("UPDATE bedrock_api_keys SET revoked_at = COALESCE(revoked_at, UTC_TIMESTAMP(3)),"
                    " revoked_how = %s, revoked_by = %s WHERE credential_id = %s",
                    (how, by[:255], credential_id))
    conn.commit()


def of_user(conn: Connection, user: str) -> dict[str, dict[str, Any]]:
    """The user's recorded keys by credential ID."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM bedrock_api_keys WHERE user_name = %s ORDER BY created_at",
                    (user,))
        found = {str(row[0]): dict(zip(_COLUMNS, row, strict=True)) for row in cur.fetchall()}
    conn.commit()
    return found


def active_for_tool(conn: Connection, user: str, tool: str) -> list[str]:
    """Credential IDs of the user's keys for this tool not revoked here (IAM may have let one expire)."""
    with conn.cursor() as cur:
        cur.execute("SELECT credential_id FROM bedrock_api_keys WHERE user_name = %s AND tool = %s"
                    " AND revoked_at IS NULL ORDER BY created_at", (user, tool))
        found = [str(c) for (c,) in cur.fetchall()]
    conn.commit()
    return found
