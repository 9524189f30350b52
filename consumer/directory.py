"""Principal directory: quota key → (row id, team), provisioning people on first sight.

The hot path reads an in-process dict. A key not in it costs one batched upsert + SELECT for the whole
batch (once per person per process). Changes made elsewhere (`bedrockctl limits apply`, the tag
lookup) reach every consumer process through a cheap delta query on `updated_at` every
`refresh_seconds`. New principals are handed to the tag lookup, which runs off the hot path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from bedrock_usage.identity import Principal
from bedrock_usage.mysql_session import MySQLSession

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    team: str


class Directory:
    def __init__(
        self,
        session: MySQLSession,
        default_team: str,
        *,
        refresh_seconds: float = 30.0,
        on_new: Callable[[list[Principal]], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._default_team = default_team
        self._refresh_seconds = refresh_seconds
        self.on_new = on_new
        self._monotonic = monotonic
        self._entries: dict[str, Entry] = {}
        self._refreshed_at = monotonic()
        self._db_watermark: datetime | None = None

    def resolve(self, principals: Iterable[Principal]) -> dict[str, Entry]:
        """Entries for every principal, provisioning unknown ones."""
        if self._monotonic() - self._refreshed_at >= self._refresh_seconds:
            self._refresh()
        wanted = {p.key: p for p in principals}
        # Sorted: processes provisioning the same people lock their rows in the same order.
        missing = [wanted[key] for key in sorted(wanted) if key not in self._entries]
        if missing:
            self._provision(missing)
        return {key: self._entries[key] for key in wanted}

    def set_team(self, key: str, team: str) -> None:
        """The tag lookup found the team: use it from the next batch on (this process owns the person's
        shard, so their next calls come here; other processes learn it on their next refresh)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = Entry(entry.id, team)

    def _provision(self, principals: list[Principal]) -> None:
        conn = self._session.conn
        now = datetime.now(UTC).replace(tzinfo=None)
        with conn.cursor() as cur:
            if self._db_watermark is None:
                cur.execute("SELECT NOW(3)")
                self._db_watermark = cur.fetchone()[0]  # type: ignore[index]
            # A person declared in the quota file before their first call has a row without an ARN:
            # fill in what the event tells, never overwrite what an admin set.
            cur.executemany(
                "INSERT INTO principals (quota_key, identity_type, arn, account_id, display_name,"
                " role_arn, role_id, session_name, first_seen_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " ON DUPLICATE KEY UPDATE arn = COALESCE(arn, VALUES(arn)),"
                " account_id = COALESCE(account_id, VALUES(account_id)),"
                " display_name = COALESCE(display_name, VALUES(display_name)),"
                " role_arn = COALESCE(role_arn, VALUES(role_arn)), role_id = COALESCE(role_id, VALUES(role_id)),"
                " session_name = COALESCE(session_name, VALUES(session_name)),"
                " first_seen_at = COALESCE(first_seen_at, VALUES(first_seen_at))",
                [
                    (p.key, p.identity_type.value, p.arn, p.account_id, p.display_name, p.role_arn,
                     p.role_id, p.session_name, now)
                    for p in principals
                ],
            )
            placeholders = ",".join(["%s"] * len(principals))
            cur.execute(
                f"SELECT quota_key, id, team, tags_checked_at FROM principals WHERE quota_key IN ({placeholders})",
                [p.key for p in principals],
            )
            rows = cur.fetchall()
        conn.commit()
        unchecked = {str(key) for key, _, _, checked in rows if checked is None}
        for key, row_id, team, _ in rows:
            self._entries[str(key)] = Entry(int(row_id), str(team) if team else self._default_team)
        if self.on_new:
            fresh = [p for p in principals if p.key in unchecked]
            if fresh:
                self.on_new(fresh)

    def _refresh(self) -> None:
        """Pick up team changes made by other processes since the last look."""
        self._refreshed_at = self._monotonic()
        if self._db_watermark is None or not self._entries:
            return
        conn = self._session.conn
        with conn.cursor() as cur:
            cur.execute("SELECT NOW(3)")
            now = cur.fetchone()[0]  # type: ignore[index]
            cur.execute(
                "SELECT quota_key, id, team FROM principals WHERE updated_at >= %s", (self._db_watermark,)
            )
            rows = cur.fetchall()
        conn.commit()
        # Rows updated in the same millisecond as the previous watermark are read again: harmless.
        self._db_watermark = now
        for key, row_id, team in rows:
            if str(key) in self._entries:
                self._entries[str(key)] = Entry(int(row_id), str(team) if team else self._default_team)
        if rows:
            log.debug("directory refreshed", extra={"changed": len(rows)})
