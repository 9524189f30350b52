"""IAM tag lookup of new principals, off the hot path.

A background thread reads the `Team`, `Person` and `Email` tags of each newly seen IAM user or role
and records them on the principal's row. The quota file wins over tags for the team. The consumer's
directory picks the change up on its next refresh; calls counted before that were charged to the
team known then (recorded per row, so reports stay consistent with what was enforced).
Identity Center users have no IAM entity of their own: their team comes from the quota file.

IAM permissions used here (declared beside the code, checked against infra/ later):
    iam:ListUserTags, iam:ListRoleTags
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from bedrock_usage.identity import IdentityType, Principal
from bedrock_usage.mysql_session import MySQLSession

log = logging.getLogger(__name__)

# What the tag lookup calls, declared beside it (infra/ grants exactly this: tests/unit/test_infra.py).
IAM_PERMISSIONS: tuple[dict[str, Any], ...] = (
    {"Sid": "ReadPeoplesTags", "Action": ["iam:ListUserTags", "iam:ListRoleTags"],
     "Resource": ["arn:aws:iam::*:user/*", "arn:aws:iam::*:role/*"]},
)
_GONE = ("NoSuchEntity", "AccessDenied", "AccessDeniedException")


class TagLookup:
    def __init__(
        self, iam: Any, session: MySQLSession, *, team_tag: str = "Team",
        on_team: Callable[[str, str], None] | None = None,
    ) -> None:
        self._iam = iam
        self._on_team = on_team
        self._session = session
        self._team_tag = team_tag
        self._queue: queue.Queue[Principal | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="tag-lookup", daemon=True)
        self._thread.start()

    def submit(self, principals: list[Principal]) -> None:
        for principal in principals:
            self._queue.put(principal)

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def drain(self) -> None:
        """Block until everything submitted so far is looked up (tests, ingest)."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            principal = self._queue.get()
            try:
                if principal is None:
                    return
                self._lookup(principal)
            except Exception:
                log.warning("tag lookup failed", exc_info=True,
                            extra={"principal": principal.key if principal else None})
                self._session.reset()
            finally:
                self._queue.task_done()

    def _tags(self, principal: Principal) -> dict[str, str] | None:
        try:
            if principal.identity_type is IdentityType.IAM_USER:
                reply = self._iam.list_user_tags(UserName=principal.arn.rsplit("/", 1)[-1])
            elif principal.identity_type in (IdentityType.ROLE, IdentityType.ROLE_SESSION) and principal.role_arn:
                reply = self._iam.list_role_tags(RoleName=principal.role_arn.rsplit("/", 1)[-1])
            else:
                return {}
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _GONE:
                return {}  # another account's principal, or no permission: nothing to learn
            raise
        except BotoCoreError:
            return None
        return {tag["Key"]: tag["Value"] for tag in reply.get("Tags", [])}

    def _lookup(self, principal: Principal) -> None:
        tags = self._tags(principal)
        if tags is None:
            return
        team = tags.get(self._team_tag) or None
        conn = self._session.conn
        with conn.cursor() as cur:
            cur.execute("SELECT team_source FROM principals WHERE quota_key = %s", (principal.key,))
            row = cur.fetchone()
            takes_team = team is not None and row is not None and row[0] != "quota_file"
            cur.execute(
                "UPDATE principals SET tags = %s, tags_checked_at = NOW(3),"
                " display_name = COALESCE(%s, display_name), email = COALESCE(email, %s),"
                " team = IF(team_source = 'quota_file' OR %s IS NULL, team, %s),"
                " team_source = IF(team_source = 'quota_file' OR %s IS NULL, team_source, 'iam_tag')"
                " WHERE quota_key = %s",
                (orjson.dumps(tags).decode(), tags.get("Person"), tags.get("Email"), team, team, team,
                 principal.key),
            )
        conn.commit()
        if takes_team and team and self._on_team:
            self._on_team(principal.key, team)
        log.info("principal tags recorded", extra={"principal": principal.key, "team": team})
