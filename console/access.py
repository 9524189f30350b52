"""What a signed-in person may see and do: admins everything; a team's admins (the quota file's `admins:`,
kept in `teams.admin_emails`) their own teams' people and numbers; anyone else nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pymysql.connections import Connection

from console.auth import Identity


class Forbidden(Exception):
    """Signed in, but not allowed to see or do this."""


@dataclass(frozen=True)
class Viewer:
    email: str
    name: str
    admin: bool
    teams: frozenset[str]  # the teams they administer (every team, for an admin, is `admin`)

    @property
    def scope(self) -> frozenset[str] | None:
        """The teams whose numbers they see: None = all."""
        return None if self.admin else self.teams

    def may_see_team(self, team: str) -> bool:
        return self.admin or team in self.teams

    def require_team(self, team: str) -> None:
        if not self.may_see_team(team):
            raise Forbidden(f"{team} is not one of your teams")

    def require_admin(self) -> None:
        if not self.admin:
            raise Forbidden("only the console's admins may see this")


class TeamAdmins:
    """Who administers which team, read from MySQL at most every few seconds (the quota file changes it)."""

    def __init__(self, connect: Callable[[], Connection], *, ttl_seconds: float = 10.0) -> None:
        self._connect, self._ttl = connect, ttl_seconds
        self._by_email: dict[str, frozenset[str]] = {}
        self._read_at = -1e9
        self._lock = threading.Lock()

    def teams_of(self, email: str) -> frozenset[str]:
        with self._lock:
            if time.monotonic() - self._read_at > self._ttl:
                self._by_email, self._read_at = self._read(), time.monotonic()
            return self._by_email.get(email, frozenset())

    def _read(self) -> dict[str, frozenset[str]]:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT name, admin_emails FROM teams WHERE admin_emails IS NOT NULL")
                rows = cur.fetchall()
        finally:
            conn.close()
        found: dict[str, set[str]] = {}
        for team, emails in rows:
            for email in json.loads(emails) if isinstance(emails, str | bytes) else emails or []:
                found.setdefault(str(email).strip().lower(), set()).add(str(team))
        return {email: frozenset(teams) for email, teams in found.items()}


def viewer_of(identity: Identity, *, admins: frozenset[str], admin_groups: frozenset[str],
              team_admins: TeamAdmins) -> Viewer:
    admin = identity.email in admins or bool(identity.groups & admin_groups)
    teams = team_admins.teams_of(identity.email)
    if not admin and not teams:
        raise Forbidden(f"{identity.email} is neither an admin of this console nor an admin of a team")
    return Viewer(identity.email, identity.name, admin, teams)
