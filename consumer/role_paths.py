"""A logged call's role, keyed as its CloudTrail events key it — and always the same way.

An invocation log names its caller by the assumed-role ARN only, which has no role path; CloudTrail's key
for a role is the role's ARN with its path (`…:role/service-role/NAME`). The key a log is charged to is
decided once per role and kept in `role_keys`, so that a log counted again later (a redo, a replay, another
consumer) meets the seen set it was counted in: a key that changed between two countings of one log
would charge it twice. The decision, first found wins:
1. the role's CloudTrail key, when a call of the role has been seen (this process's decoder, or a person
   row any consumer provisioned);
2. IAM `GetRole` (a role of the consumer's own account), which gives the path;
3. the path-less ARN (a role of another account never seen in CloudTrail: its later calls then count
   requests under their own key — the README says so).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bedrock_usage.identity import IdentityType, Principal, without_path
from bedrock_usage.mysql_session import MySQLSession
from consumer.events import InvocationLog

_CACHE = 100_000
_NO_ROLE = {"NoSuchEntity"}
_DENIED = {"AccessDenied", "AccessDeniedException"}


class RoleLookupUnavailable(Exception):
    """IAM could not answer now (throttled, unreachable): the batch is retried, nothing is decided."""


class RolePaths:
    def __init__(self, session: MySQLSession, *, iam: Any | None = None, account_id: str = "") -> None:
        self._session = session  # the caller's thread (the people directory's session)
        self._iam = iam
        self._account = account_id
        self._seen: dict[str, str] = {}  # path-less → CloudTrail key, from this process's calls
        self._known: dict[str, str] = {}  # path-less → the key decided (as stored in role_keys)

    def learn(self, principals: Iterable[Principal]) -> None:
        """Roles of the CloudTrail calls decoded: their keys, with the path."""
        for principal in principals:
            if principal.identity_type is IdentityType.ROLE and principal.role_arn:
                self._seen[without_path(principal.role_arn)] = principal.key

    def canonical(self, logs: Sequence[InvocationLog]) -> list[InvocationLog]:
        roles = {entry.principal.key for entry in logs if _pathless_role(entry.principal)}
        missing = sorted(roles - set(self._known))
        if missing:
            self._decide(missing)
        if not roles:
            return list(logs)
        out = []
        for entry in logs:
            key = self._known.get(entry.principal.key) if _pathless_role(entry.principal) else None
            if key is not None and key != entry.principal.key:
                out.append(replace(entry, principal=replace(entry.principal, key=key, arn=key, role_arn=key)))
            else:
                out.append(entry)
        return out

    def _decide(self, pathless: list[str]) -> None:
        if len(self._known) > _CACHE:
            self._known.clear()
            self._seen.clear()
        conn = self._session.conn
        try:
            with conn.cursor() as cur:
                decided = _stored(cur, pathless)
                new = []
                for arn in (a for a in pathless if a not in decided):
                    key, source = self._find(cur, arn)
                    new.append((arn, key, source))
                if new:
                    # First decision wins (another consumer may have decided meanwhile): read it back.
                    cur.executemany("INSERT INTO role_keys (pathless_arn, quota_key, source, decided_at)"
                                    " VALUES (%s, %s, %s, UTC_TIMESTAMP(3))"
                                    " ON DUPLICATE KEY UPDATE pathless_arn = pathless_arn", new)
                    decided.update(_stored(cur, [arn for arn, _, _ in new]))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        self._known.update(decided)

    def _find(self, cur: Any, arn: str) -> tuple[str, str]:
        if arn in self._seen:
            return self._seen[arn], "cloudtrail"
        head, _, name = arn.partition(":role/")
        # A person row for the role, provisioned from a CloudTrail call by any consumer.
        cur.execute("SELECT quota_key FROM principals WHERE identity_type = 'role' AND quota_key LIKE %s"
                    " ORDER BY quota_key LIMIT 1", (_like(head + ":role/") + "%/" + _like(name),))
        row = cur.fetchone()
        if row:
            return str(row[0]), "cloudtrail"
        account = head.rsplit(":", 1)[-1]
        if self._iam is None or account != self._account:
            return arn, "none"
        try:
            return str(self._iam.get_role(RoleName=name)["Role"]["Arn"]), "iam"
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _NO_ROLE or code in _DENIED:
                return arn, "none"
            raise RoleLookupUnavailable(f"GetRole {name}: {code}") from None
        except BotoCoreError as error:
            raise RoleLookupUnavailable(f"GetRole {name}: {error}") from None


def _stored(cur: Any, arns: Sequence[str]) -> dict[str, str]:
    cur.execute("SELECT pathless_arn, quota_key FROM role_keys WHERE pathless_arn IN ("
                + ",".join(["%s"] * len(arns)) + ")", list(arns))
    return {str(arn): str(key) for arn, key in cur.fetchall()}


def _pathless_role(principal: Principal) -> bool:
    return principal.identity_type is IdentityType.ROLE and principal.key.count("/") == 1


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
