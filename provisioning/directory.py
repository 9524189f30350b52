"""The provisioning commands' MySQL side: teams registered in `teams`, people recorded in `principals`
with the team their IAM tag gives, so that their first call is charged to it (the consumer finds them
resolved and does not look them up).

A person's row is written as the consumer's own IAM-tag lookup would write it (team_source `iam_tag`),
stamped with a new directory version so that running consumers learn of it; a team the quota file
gives wins, as it does over every lookup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pymysql.connections import Connection

from bedrock_usage import directory_state
from bedrock_usage.identity import IdentityType
from bedrock_usage.limits import HAS_LIMITS, LIMIT_COLUMNS, limits_of
from bedrock_usage.quota import Limits
from bedrock_usage.teams import TeamSource


@dataclass(frozen=True)
class Person:
    """What provisioning records of a person (None: leave the column as it is)."""

    key: str
    account_id: str
    name: str
    team: str
    email: str | None
    tags: dict[str, str]  # the IAM user's: the notifier reads Language from them (the quota file's wins)


def team_registered(conn: Connection, name: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM teams WHERE name = %s", (name,))
        found = cur.fetchone() is not None
    conn.commit()
    return found


def team_limits(conn: Connection, name: str) -> Limits | None:
    """The team's own limits (the quota file's), or None when it has none."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {LIMIT_COLUMNS} FROM teams WHERE name = %s AND {HAS_LIMITS}", (name,))
        row = cur.fetchone()
    conn.commit()
    return limits_of(*row) if row else None


def register_team(conn: Connection, name: str) -> None:
    with conn.cursor() as cur:
        cur.execute("INSERT IGNORE INTO teams (name) VALUES (%s)", (name,))
    conn.commit()


def unregister_team(conn: Connection, name: str) -> None:
    """Forget the team, unless the quota file gives it limits or admins (the file's to remove)."""
    with conn.cursor() as cur:
        cur.execute(f"DELETE FROM teams WHERE name = %s AND NOT {HAS_LIMITS} AND admin_emails IS NULL", (name,))
    conn.commit()


def person(conn: Connection, key: str) -> dict[str, Any] | None:
    with conn.cursor() as cur:
        cur.execute("SELECT team, team_source, display_name, email, tags, resolved_at FROM principals"
                    " WHERE quota_key = %s", (key,))
        row = cur.fetchone()
    conn.commit()
    if row is None:
        return None
    found = dict(zip(("team", "team_source", "display_name", "email", "tags", "resolved_at"), row, strict=True))
    found["tags"] = json.loads(found["tags"]) if found["tags"] else {}
    return found


def differences(row: dict[str, Any] | None, wanted: Person) -> list[str]:
    """What recording `wanted` would change in the person's row (its column names)."""
    if row is None:
        return ["new"]
    found = []
    if row["team_source"] != TeamSource.QUOTA_FILE and row["team"] != wanted.team:
        found.append("team")
    if row["team_source"] not in (TeamSource.QUOTA_FILE, TeamSource.IAM_TAG) or row["resolved_at"] is None:
        found.append("team_source")
    if row["display_name"] != wanted.name:
        found.append("display_name")
    if wanted.email is not None and row["email"] != wanted.email:
        found.append("email")
    if row["tags"] != wanted.tags:
        found.append("tags")
    return found


# Inserted resolved, as the consumer's tag lookup leaves a person; the quota file's team stays.
_RECORD = """
INSERT INTO principals (quota_key, identity_type, arn, account_id, display_name, team, team_source, email, tags,
                        resolved_at, tags_checked_at, version)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), %s)
ON DUPLICATE KEY UPDATE
  arn = VALUES(arn), account_id = VALUES(account_id), display_name = VALUES(display_name),
  email = COALESCE(VALUES(email), email), tags = VALUES(tags),
  resolved_at = COALESCE(resolved_at, VALUES(resolved_at)), tags_checked_at = VALUES(tags_checked_at),
  lookup_error = NULL, version = VALUES(version),
  team = IF(team_source = 'quota_file', team, VALUES(team)),
  team_source = IF(team_source = 'quota_file', team_source, VALUES(team_source))
"""


def record_person(conn: Connection, wanted: Person) -> None:
    try:
        with conn.cursor() as cur:
            version = directory_state.next_version(cur)
            cur.execute(_RECORD, (wanted.key, IdentityType.IAM_USER.value, wanted.key, wanted.account_id, wanted.name,
                                  wanted.team, TeamSource.IAM_TAG.value, wanted.email, json.dumps(wanted.tags),
                                  version))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def team_members(conn: Connection, team: str) -> list[str]:
    """The quota keys MySQL counts for the team (people provisioned, tagged or given it by the quota file)."""
    with conn.cursor() as cur:
        cur.execute("SELECT quota_key FROM principals WHERE team = %s ORDER BY quota_key", (team,))
        found = [str(k) for (k,) in cur.fetchall()]
    conn.commit()
    return found
