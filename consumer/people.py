"""Who a principal is and which team they are in: quota key → (row id, the team their calls are charged to).

A person's team is known before their first call is counted whenever it can be: the quota file (in
MySQL), else a lookup (consumer/lookups.py: the Identity Store, IAM tags). The new people of a batch
are looked up together, in parallel, and the batch waits for them at most `wait_seconds`. Whoever is
still unknown then is *unresolved*: counted at once for themself, held for their team (team ``''``).
Their lookup goes on in the background, retried with capped backoff; once the team is known the
processor settles them: their held calls move to the team, in Redis and in MySQL.

Answers are recorded on the person's row, stamped with a directory version (sql/006): every process
reads the changes after the last version it has seen every `refresh_seconds`, so a change committed
anywhere, in any order, reaches every consumer within that interval.

The hot path reads an in-process dict; MySQL is asked once per new person per process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from typing import Any

import orjson
import pymysql

from bedrock_usage import directory_state
from bedrock_usage.directory_state import IdentityCenterRule
from bedrock_usage.identity import Principal
from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.teams import TeamSource, team_or_default
from consumer.lookups import Found, LookupFailed, Lookups, LookupSource

log = logging.getLogger(__name__)

UNRESOLVED = ""  # the team of a person not known yet: their calls are held for it
_CONTENT_ERRORS = (pymysql.err.DataError, pymysql.err.IntegrityError)
_BACKOFF_FIRST, _BACKOFF_CAP = 1.0, 300.0
_LASTING = 3  # AccessDenied this many times in a row: an alert


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where a person's calls go: their row, and the team charged (DEFAULT_TEAM: none; '' not known yet)."""

    id: int
    team: str

    @property
    def resolved(self) -> bool:
        return self.team != UNRESOLVED


@dataclass
class _Retry:
    attempts: int
    due: float  # monotonic
    code: str


class PeopleDirectory:
    """The MySQL-backed people directory (`principals`), cached in-process; the processor's `People`."""

    def __init__(
        self,
        session: MySQLSession,
        default_team: str,
        *,
        lookups: Lookups | None = None,
        wait_seconds: float = 2.0,
        refresh_seconds: float = 30.0,
        relookup_seconds: float = 3600.0,
        concurrency: int = 8,
        on_failure: Callable[[str, LookupFailed, bool], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._default_team = default_team
        self._lookups = lookups
        self._wait = wait_seconds
        self._refresh_seconds = refresh_seconds
        self._relookup = relookup_seconds
        self._on_failure = on_failure
        self._monotonic = monotonic
        self._entries: dict[str, Assignment] = {}
        self._principals: dict[str, Principal] = {}  # people still to ask about (unresolved or stale)
        self._asked_at: dict[str, float] = {}  # resolved by a lookup: when (monotonic), to ask again later
        self._running: dict[str, Future[Found]] = {}
        self._retry: dict[str, _Retry] = {}
        self._held_here: set[str] = set()  # counted unresolved by this process: to settle once known
        self._to_settle: dict[str, Assignment] = {}
        self._settle_lock = threading.Lock()  # `settled` is called from the processor's MySQL thread
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="lookup") if lookups else None
        self._version: int | None = None
        self._rule: IdentityCenterRule | None = None
        self._refreshed_at = monotonic()

    def _charged(self, row_id: Any, team: Any) -> Assignment:
        """A resolved person's assignment from their row: their team, or DEFAULT_TEAM for none."""
        return Assignment(int(row_id), team_or_default(team, self._default_team))

    def close(self) -> None:
        if self._pool:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the hot path ----------------------------------------------------------------------------

    def resolve(self, principals: Iterable[Principal]) -> dict[str, Assignment]:
        """The assignment of every principal, provisioning and looking up new ones (bounded wait)."""
        now = self._monotonic()
        if self._version is None or now - self._refreshed_at >= self._refresh_seconds:
            self._refresh()
        wanted = {p.key: p for p in principals}
        # Sorted: processes provisioning the same people lock their rows in the same order.
        missing = [wanted[key] for key in sorted(wanted) if key not in self._entries]
        if missing:
            self._provision(missing)
        waiting = []
        for key in wanted:
            future = self._ask(key) if key in self._principals else None
            if future is not None and not self._entries[key].resolved:
                waiting.append(future)
        if waiting:  # the batch waits for its new people, a bounded time
            wait_for(waiting, timeout=self._wait)
        for key in list(self._retry):  # earlier failures whose retry is due, in the background
            if key not in wanted and key not in self._running:
                self._ask(key)
        self._collect()
        out = {key: self._entries[key] for key in wanted}
        self._held_here.update(key for key, a in out.items() if not a.resolved)
        return out

    def settlements(self) -> list[tuple[str, Assignment]]:
        """People this process counted while unresolved whose team is now known: their held calls are to
        be moved (idempotent: repeated until `settled`)."""
        self._collect()
        with self._settle_lock:
            return sorted(self._to_settle.items())

    def settled(self, done: Iterable[tuple[str, Assignment]]) -> None:
        with self._settle_lock:
            for key, assignment in done:
                if self._to_settle.get(key) == assignment:
                    del self._to_settle[key]

    def known(self, keys: Iterable[str]) -> dict[str, Assignment]:
        """Resolved assignments of these keys, from MySQL when this process has not met them (people
        another consumer held)."""
        keys = set(keys)
        out = {k: a for k, a in self._entries.items() if k in keys and a.resolved}
        others = sorted(keys - set(self._entries))
        if others:
            conn = self._session.conn
            with conn.cursor() as cur:
                cur.execute("SELECT quota_key, id, team, resolved_at FROM principals WHERE quota_key IN ("
                            + ",".join(["%s"] * len(others)) + ")", others)
                rows = cur.fetchall()
            conn.commit()
            out.update({str(k): self._charged(i, t)
                        for k, i, t, resolved in rows if resolved is not None})
        return out

    def finish_lookups(self, timeout: float) -> bool:
        """Wait (bounded) for the lookups still running, and record them; True if any were running
        (an offline run — `bedrockctl ingest` — then settles whoever they resolved)."""
        running = list(self._running.values())
        if running:
            wait_for(running, timeout=timeout)
            self._collect()
        return bool(running)

    @property
    def unresolved(self) -> int:
        return sum(1 for a in self._entries.values() if not a.resolved)

    # -- provisioning and lookups ----------------------------------------------------------------

    def _provision(self, principals: list[Principal]) -> None:
        conn = self._session.conn
        with conn.cursor() as cur:
            # A person declared in the quota file before their first call has a row without an ARN:
            # fill in what the event tells, never overwrite what an admin set.
            cur.executemany(
                "INSERT INTO principals (quota_key, identity_type, arn, account_id, display_name,"
                " role_arn, role_id, session_name, first_seen_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,UTC_TIMESTAMP(3))"
                " ON DUPLICATE KEY UPDATE arn = COALESCE(arn, VALUES(arn)),"
                " account_id = COALESCE(account_id, VALUES(account_id)),"
                " display_name = COALESCE(display_name, VALUES(display_name)),"
                " role_arn = COALESCE(role_arn, VALUES(role_arn)), role_id = COALESCE(role_id, VALUES(role_id)),"
                " session_name = COALESCE(session_name, VALUES(session_name)),"
                " first_seen_at = COALESCE(first_seen_at, VALUES(first_seen_at))",
                [(p.key, p.identity_type.value, p.arn, p.account_id, p.display_name, p.role_arn, p.role_id,
                  p.session_name) for p in principals],
            )
            cur.execute(
                "SELECT quota_key, id, team, team_source, resolved_at, TIMESTAMPDIFF(SECOND, tags_checked_at,"
                " UTC_TIMESTAMP(3)) FROM principals WHERE quota_key IN ("
                + ",".join(["%s"] * len(principals)) + ")",
                [p.key for p in principals],
            )
            rows = {str(r[0]): r[1:] for r in cur.fetchall()}
        conn.commit()
        now = self._monotonic()
        for principal in principals:
            row_id, team, source, resolved_at, asked_ago = rows[principal.key]
            if source == TeamSource.QUOTA_FILE or resolved_at is not None:
                self._entries[principal.key] = self._charged(row_id, team)
                if source != TeamSource.QUOTA_FILE:  # asked again when its answer is old, or the rule changes
                    self._principals[principal.key] = principal
                    self._asked_at[principal.key] = now - float(asked_ago if asked_ago is not None else 1e9)
            else:
                self._entries[principal.key] = Assignment(int(row_id), UNRESOLVED)
                self._principals[principal.key] = principal

    def _ask(self, key: str) -> Future[Found] | None:
        """Start (or find) the lookup of a person if one is due; the running one otherwise."""
        running = self._running.get(key)
        if running is not None:
            return running
        if key not in self._principals:  # no longer asked about (the quota file gives their team)
            self._retry.pop(key, None)
            return None
        now = self._monotonic()
        retry = self._retry.get(key)
        if retry is not None and retry.due > now:
            return None
        principal, rule = self._principals[key], self._rule
        askable = self._pool is not None and self._lookups is not None and self._lookups.needs_asking(principal, rule)
        if self._entries[key].resolved:
            # Asked again now and then (a tag or a group may change); nothing to ask, nothing to redo.
            if not askable or now - self._asked_at.get(key, float("-inf")) < self._relookup:
                return None
        elif not askable:
            # Nothing to ask: no team, at once, recorded like any answer.
            done: Future[Found] = Future()
            done.set_result(Found(LookupSource.NONE))
            self._running[key] = done
            return done
        assert self._pool is not None and self._lookups is not None
        future = self._pool.submit(self._lookups.find, principal, rule)
        self._running[key] = future
        return future

    def _collect(self) -> None:
        """Record the answers of finished lookups (one transaction), note the failures."""
        done = {key: f for key, f in self._running.items() if f.done()}
        if not done:
            return
        for key in done:  # first: whatever happens below, a finished lookup is not collected twice
            del self._running[key]
        answers: dict[str, Found] = {}
        failures: dict[str, LookupFailed] = {}
        for key, future in done.items():
            error = future.exception()
            if error is None:
                answers[key] = future.result()
            elif isinstance(error, LookupFailed):
                failures[key] = error
            else:  # a bug in a lookup: keep the person unresolved and retry, but say so loudly
                log.error("team lookup crashed", exc_info=error, extra={"principal": key})
                failures[key] = LookupFailed("Error", repr(error))
        if answers:
            try:
                self._record(answers)
            except _CONTENT_ERRORS as error:
                # An answer the database will not take (it should not happen: answers are cleaned): a
                # failed lookup for those people, retried, rather than a consumer stuck on it.
                self._session.reset()
                failures.update({key: LookupFailed("Rejected", str(error)) for key in answers})
            except BaseException:
                # MySQL down: the answers are asked for again once it is back.
                for key in answers:
                    self._retry[key] = _Retry(0, self._monotonic(), "MySQL")
                raise
        if failures:
            self._failed(failures)

    def _record(self, answers: dict[str, Found]) -> None:
        conn = self._session.conn
        with conn.cursor() as cur:
            version = directory_state.next_version(cur)
            cur.executemany(
                # The quota file wins over what a lookup finds; the team set by a lookup is its source's.
                "UPDATE principals SET tags = COALESCE(%s, tags), tags_checked_at = UTC_TIMESTAMP(3),"
                " resolved_at = COALESCE(resolved_at, UTC_TIMESTAMP(3)), lookup_error = NULL, version = %s,"
                " display_name = COALESCE(%s, display_name), email = COALESCE(email, %s),"
                " team = IF(team_source = 'quota_file', team, %s),"
                " team_source = IF(team_source = 'quota_file', team_source, %s)"
                " WHERE quota_key = %s",
                [(orjson.dumps(found.tags).decode() if found.tags else None, version, found.display_name,
                  found.email, found.team, found.team_source.value, key)
                 for key, found in sorted(answers.items())],
            )
            cur.execute("SELECT quota_key, id, team FROM principals WHERE quota_key IN ("
                        + ",".join(["%s"] * len(answers)) + ")", sorted(answers))
            rows = cur.fetchall()
        conn.commit()
        now = self._monotonic()
        for key, row_id, team in rows:
            self._learn(str(key), self._charged(row_id, team))
            self._asked_at[str(key)] = now
            self._retry.pop(str(key), None)
            log.info("team resolved", extra={"principal": key, "team": team, "source": answers[str(key)].source.value})

    def _failed(self, failures: dict[str, LookupFailed]) -> None:
        now = self._monotonic()
        for key, error in failures.items():
            before = self._retry.get(key)
            attempts = (before.attempts if before and before.code == error.code else 0) + 1
            delay = min(_BACKOFF_CAP, _BACKOFF_FIRST * 2 ** (attempts - 1))
            self._retry[key] = _Retry(attempts, now + delay, error.code)
            lasting = error.denied and attempts >= _LASTING
            (log.error if lasting else log.warning)(
                "team lookup failed; retrying", extra={"principal": key, "code": error.code, "attempt": attempts,
                                                       "retry_in_s": delay})
            if self._on_failure:
                self._on_failure(key, error, lasting)
        try:  # for admins (bedrockctl usage); best effort, the retry does not depend on it
            conn = self._session.conn
            with conn.cursor() as cur:
                cur.executemany("UPDATE principals SET lookup_error = %s WHERE quota_key = %s",
                                [(str(e)[:255], k) for k, e in sorted(failures.items())])
            conn.commit()
        except Exception:
            log.warning("could not record a lookup failure", exc_info=True)
            self._session.reset()

    def _learn(self, key: str, assignment: Assignment) -> None:
        """A person's team as now known: used from the next batch on. Held calls of theirs (counted here
        while unknown) are to be settled; a person who really changed team keeps their past calls with
        the old one (chargeback) and counts for the new one from now on."""
        before = self._entries.get(key)
        self._entries[key] = assignment
        if assignment.resolved and key in self._held_here:
            self._held_here.discard(key)
            with self._settle_lock:
                self._to_settle[key] = assignment
        if before is not None and before.resolved and before.team != assignment.team:
            log.info("team changed", extra={"principal": key, "from": before.team, "to": assignment.team})

    # -- changes made elsewhere ------------------------------------------------------------------

    def _refresh(self) -> None:
        """Pick up every change committed since the last version seen (and the Identity Center rule)."""
        self._refreshed_at = self._monotonic()
        conn = self._session.conn
        with conn.cursor() as cur:
            # One snapshot for both reads: every change numbered up to `version` is in it (sql/006).
            version, rule = directory_state.read_state(cur)
            rows: tuple[Any, ...] = ()
            if self._version is not None and version > self._version and self._entries:
                cur.execute("SELECT quota_key, id, team, team_source, resolved_at FROM principals"
                            " WHERE version > %s", (self._version,))
                rows = cur.fetchall()
        conn.commit()
        if rule != self._rule and self._version is not None:
            log.info("identity center rule changed", extra={"store": rule.store_id if rule else None})
            # Everyone whose team came from a lookup is asked again with the new rule.
            self._asked_at = dict.fromkeys(self._asked_at, float("-inf"))
        self._rule = rule
        self._version = version
        for raw_key, row_id, team, source, resolved_at in rows:
            key = str(raw_key)
            if key not in self._entries:
                continue
            if source == TeamSource.QUOTA_FILE or resolved_at is not None:
                self._learn(key, self._charged(row_id, team))
                if source == TeamSource.QUOTA_FILE:  # nothing to ask about them any more
                    self._principals.pop(key, None)
                    self._retry.pop(key, None)
                    self._asked_at.pop(key, None)
            elif self._entries[key].resolved:
                # No longer in the quota file: asked again, and counted for no team until the answer.
                self._entries[key] = Assignment(int(row_id), UNRESOLVED)
                self._asked_at.pop(key, None)
                if key not in self._principals:
                    # Asking needs the principal, which the quota file's people never gave this process:
                    # their next call provisions them again (and asks).
                    del self._entries[key]
        if rows:
            log.debug("directory refreshed", extra={"changed": len(rows), "version": version})

