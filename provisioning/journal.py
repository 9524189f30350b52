"""The provisioning audit trail (`provisioning_actions`): who changed which team or person, and how."""

from __future__ import annotations

from typing import Any

from pymysql.connections import Connection


def record(conn: Connection, *, actor: str, action: str, target: str, detail: str) -> None:
    with conn.cursor() as cur:
        cur.execute("INSERT INTO provisioning_actions (at, actor, action, target, detail)"
                    " VALUES (UTC_TIMESTAMP(3), %s, %s, %s, %s)", (actor[:255], action, target[:128], detail))
    conn.commit()


def rows(conn: Connection, *, target: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first."""
    where, params = ("WHERE target = %s", [target]) if target else ("", [])
    with conn.cursor() as cur:
        cur.execute(f"SELECT at, actor, action, target, detail FROM provisioning_actions {where}"
                    " ORDER BY id DESC LIMIT %s", (*params, limit))
        found = [dict(zip(("at", "actor", "action", "target", "detail"), row, strict=True))
                 for row in cur.fetchall()]
    conn.commit()
    return found
