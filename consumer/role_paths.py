"""A logged call's role, keyed as its CloudTrail event keys it.

An invocation log names its caller by the assumed-role ARN only, which has no role path; CloudTrail's
key for a role is the role's ARN with its path (`…:role/service-role/NAME`). The decoder maps the roles whose
calls it has seen; for the others this asks the people table once per role and process (a role first
met in a log, or after a restart). A role never seen anywhere keeps the path-less ARN: its CloudTrail
events, if any come, then meet the same key only if the role has no path (the README says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bedrock_usage.identity import IdentityType, Principal
from bedrock_usage.mysql_session import MySQLSession
from consumer.events import InvocationLog

_CACHE = 100_000


class RolePaths:
    def __init__(self, session: MySQLSession) -> None:
        self._session = session  # the caller's thread (the directory's session)
        self._known: dict[str, str] = {}  # path-less role ARN → the key in MySQL (itself when none has a path)

    def canonical(self, logs: Sequence[InvocationLog]) -> list[InvocationLog]:
        roles = {entry.principal.key for entry in logs if _pathless_role(entry.principal)}
        missing = sorted(roles - set(self._known))
        if missing:
            self._ask(missing)
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

    def _ask(self, pathless: list[str]) -> None:
        if len(self._known) > _CACHE:
            self._known.clear()
        conn = self._session.conn
        found: dict[str, str] = {}
        with conn.cursor() as cur:
            for arn in pathless:
                head, _, name = arn.partition(":role/")
                # The unique key's prefix bounds the scan to the account's roles.
                cur.execute("SELECT quota_key FROM principals WHERE identity_type = 'role' AND quota_key LIKE %s"
                            " ORDER BY quota_key LIMIT 1", (_like(head + ":role/") + "%/" + _like(name),))
                row = cur.fetchone()
                if row:
                    found[arn] = str(row[0])
        conn.commit()
        for arn in pathless:
            self._known[arn] = found.get(arn, arn)


def _pathless_role(principal: Principal) -> bool:
    return principal.identity_type is IdentityType.ROLE and principal.key.count("/") == 1


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
