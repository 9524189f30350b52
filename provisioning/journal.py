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


def deletion(conn: Connection, user: str) -> dict[str, Any] | None:
    """When and by whom `user delete` last removed the user from IAM, or None."""
    with conn.cursor() as cur:
        # A run on a user already gone (recording its keys) deleted nothing; one that failed did not get to it.
        cur.execute("SELECT at, actor FROM provisioning_actions WHERE action = 'user delete' AND target = %s"
                    " AND detail LIKE %s AND detail NOT LIKE %s ORDER BY id DESC LIMIT 1",
                    (user, "%IAM: delete user %", "%FAILED at:%"))
        row = cur.fetchone()
    conn.commit()
    return {"at": row[0], "actor": row[1]} if row else None


def no_user(conn: Connection, user: str) -> str:
    """What to tell an admin who names a user IAM does not have, saying when it was deleted here, if it was."""
    return missing_user(user, deletion(conn, user))


def missing_user(user: str, deleted: dict[str, Any] | None) -> str:
    """no_user's message, from the deletion already read (`deletion`)."""
    if deleted is None:
        return f"no IAM user {user!r}"
    return (f"no IAM user {user!r} (deleted {deleted['at']:%Y-%m-%d %H:%M:%S} UTC by {deleted['actor']},"
            " bedrockctl user delete)")
