"""Quota file → MySQL (the record) → Redis (the cache the counting script reads).

The quota file (bedrock_usage.quota_file parses and checks it) is declarative: after
`bedrockctl limits apply quotas.yaml`, the overrides, team assignments and Identity Center rule in
MySQL are exactly the file's. People and teams it no longer lists fall back to the defaults (and, for
the team, to a lookup: IAM tags, Identity Center groups).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from pymysql.connections import Connection

from bedrock_usage import directory_state, quota_changes
from bedrock_usage.quota import Limits, Scope, nanos_of, usd
from bedrock_usage.quota_changes import Change
from bedrock_usage.quota_file import QuotaFile, identity_type_of_key
from bedrock_usage.redis_state import RedisState
from bedrock_usage.teams import TeamSource

# identity_type_of_key lives in quota_file now; enforcement/store.py still imports it from here.
__all__ = ["ApplyReport", "apply", "identity_type_of_key", "limits_of", "plan", "sync_to_redis"]


# The four limit columns of principals and teams, in the order of `Limits` (cost in dollars there).
LIMIT_COLUMNS = "daily_request_limit, monthly_request_limit, daily_cost_limit_usd, monthly_cost_limit_usd"
HAS_LIMITS = ("(daily_request_limit IS NOT NULL OR monthly_request_limit IS NOT NULL"
              " OR daily_cost_limit_usd IS NOT NULL OR monthly_cost_limit_usd IS NOT NULL)")


def dollars(limits: Limits) -> tuple[Decimal | None, Decimal | None]:
    """The cost limits as the DECIMAL columns hold them."""
    def column(nanos: int | None) -> Decimal | None:
        return None if nanos is None else usd(nanos)

    return column(limits.daily_cost), column(limits.monthly_cost)


def limits_of(daily: int | None, monthly: int | None, daily_usd: Decimal | None,
              monthly_usd: Decimal | None) -> Limits:
    """A row's four limit columns (LIMIT_COLUMNS) as Limits."""
    return Limits(daily, monthly, None if daily_usd is None else nanos_of(daily_usd),
                  None if monthly_usd is None else nanos_of(monthly_usd))


@dataclass(frozen=True)
class ApplyReport:
    teams: int
    people: int
    cleared_people: int
    cleared_teams: int
    version: int  # the directory version the changed rows carry
    changes: tuple[Change, ...] = ()


def plan(conn: Connection, quota: QuotaFile) -> list[Change]:
    """What `apply` would change, reading only (`limits apply --dry-run`)."""
    with conn.cursor() as cur:
        changes = quota_changes.plan(cur, quota)
    conn.rollback()
    return changes


# A person's team after the file is applied: the file's, else (when the file gave the team before) none,
# to be looked up again, else whatever a lookup found. Written once, used by the UPDATE and its check.
_NEW_TEAM = "IF(VALUES(team_source) = 'quota_file', VALUES(team), IF(team_source = 'quota_file', NULL, team))"
_NEW_SOURCE = ("IF(VALUES(team_source) = 'quota_file', 'quota_file',"
               " IF(team_source = 'quota_file', 'default', team_source))")
# MySQL and MariaDB assign left to right, each assignment seeing the ones before it: `version` comes
# first, so it compares the row as it was with what it becomes; team_source comes last, since the
# others test its old value.
_UPSERT_PERSON = f"""
INSERT INTO principals (quota_key, identity_type, team, team_source, email, display_name, daily_request_limit,
                        monthly_request_limit, daily_cost_limit_usd, monthly_cost_limit_usd, language, time_zone,
                        resolved_at, version)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON DUPLICATE KEY UPDATE
  version = IF(team <=> {_NEW_TEAM} AND team_source <=> {_NEW_SOURCE}
               AND email <=> COALESCE(VALUES(email), email)
               AND display_name <=> COALESCE(VALUES(display_name), display_name)
               AND daily_request_limit <=> VALUES(daily_request_limit)
               AND monthly_request_limit <=> VALUES(monthly_request_limit)
               AND daily_cost_limit_usd <=> VALUES(daily_cost_limit_usd)
               AND monthly_cost_limit_usd <=> VALUES(monthly_cost_limit_usd)
               AND language <=> VALUES(language) AND time_zone <=> VALUES(time_zone)
               AND NOT (VALUES(team_source) = 'quota_file' AND resolved_at IS NULL),
               version, VALUES(version)),
  resolved_at = IF(VALUES(team_source) = 'quota_file', COALESCE(resolved_at, VALUES(resolved_at)),
                   IF(team_source = 'quota_file', NULL, resolved_at)),
  tags_checked_at = IF(VALUES(team_source) <> 'quota_file' AND team_source = 'quota_file', NULL, tags_checked_at),
  team = {_NEW_TEAM},
  email = COALESCE(VALUES(email), email), display_name = COALESCE(VALUES(display_name), display_name),
  daily_request_limit = VALUES(daily_request_limit), monthly_request_limit = VALUES(monthly_request_limit),
  daily_cost_limit_usd = VALUES(daily_cost_limit_usd), monthly_cost_limit_usd = VALUES(monthly_cost_limit_usd),
  language = VALUES(language), time_zone = VALUES(time_zone),
  team_source = {_NEW_SOURCE}
"""
# Someone the file no longer lists: back to the default limits, and, when the file gave their team,
# unresolved again (resolved_at and tags_checked_at NULL) so that the consumer looks them up.
_CLEAR_PERSON = """
UPDATE principals SET version = %s, daily_request_limit = NULL, monthly_request_limit = NULL,
  daily_cost_limit_usd = NULL, monthly_cost_limit_usd = NULL,
  resolved_at = IF(team_source = 'quota_file', NULL, resolved_at),
  tags_checked_at = IF(team_source = 'quota_file', NULL, tags_checked_at),
  team = IF(team_source = 'quota_file', NULL, team),
  team_source = IF(team_source = 'quota_file', 'default', team_source)
WHERE quota_key = %s
"""


def apply(conn: Connection, state: RedisState, quota: QuotaFile) -> ApplyReport:
    """Make MySQL match the file (one transaction), then refresh the Redis cache of overrides.

    Every principals row it changes carries one new directory version (see directory_state), so the
    consumers holding the directory learn of the change; the rule for Identity Center has it too.
    """
    try:
        with conn.cursor() as cur:
            changes = quota_changes.plan(cur, quota)
            cur.execute(f"SELECT quota_key FROM principals WHERE team_source = 'quota_file' OR {HAS_LIMITS}")
            previously = {str(key) for (key,) in cur.fetchall()} - set(quota.people)
            cur.execute(f"SELECT name FROM teams WHERE {HAS_LIMITS}")
            old_teams = {str(name) for (name,) in cur.fetchall()} - set(quota.teams)

            # Taken after the reads: it locks the version row to commit, and other writers wait on it.
            version = directory_state.next_version(cur)
            # A person the file gives a team is resolved now. The statement's own UTC_TIMESTAMP(3) would keep
            # pymysql from sending all the people in one multi-row INSERT: the time is a parameter.
            cur.execute("SELECT UTC_TIMESTAMP(3)")
            (now,) = cur.fetchone() or (None,)
            if previously:
                cur.executemany(_CLEAR_PERSON, [(version, key) for key in sorted(previously)])
            if old_teams:
                cur.executemany("UPDATE teams SET daily_request_limit = NULL, monthly_request_limit = NULL,"
                                " daily_cost_limit_usd = NULL, monthly_cost_limit_usd = NULL"
                                " WHERE name = %s", [(name,) for name in sorted(old_teams)])
            cur.execute("UPDATE teams SET admin_emails = NULL WHERE admin_emails IS NOT NULL")
            if quota.teams:
                cur.executemany(
                    "INSERT INTO teams (name, daily_request_limit, monthly_request_limit, daily_cost_limit_usd,"
                    " monthly_cost_limit_usd, admin_emails) VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON DUPLICATE KEY UPDATE daily_request_limit = VALUES(daily_request_limit),"
                    " monthly_request_limit = VALUES(monthly_request_limit),"
                    " daily_cost_limit_usd = VALUES(daily_cost_limit_usd),"
                    " monthly_cost_limit_usd = VALUES(monthly_cost_limit_usd), admin_emails = VALUES(admin_emails)",
                    [(name, limits.daily, limits.monthly, *dollars(limits),
                      json.dumps(list(quota.team_admins[name])) if quota.team_admins.get(name) else None)
                     for name, limits in quota.teams.items()],
                )
            if quota.people:
                cur.executemany(_UPSERT_PERSON, [
                    (p.key, identity_type_of_key(p.key).value, p.team,
                     (TeamSource.QUOTA_FILE if p.team else TeamSource.DEFAULT).value, p.email, p.name,
                     p.limits.daily, p.limits.monthly, *dollars(p.limits), p.language, p.timezone,
                     now if p.team else None, version)
                    for p in quota.people.values()
                ])
            # Declarative like the rest: a file without the section turns the lookups off.
            directory_state.store_identity_center(cur, quota.identity_center, version=version)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise

    state.set_limit_overrides(
        [(Scope.USER, key, Limits(None, None)) for key in previously]
        + [(Scope.TEAM, name, Limits(None, None)) for name in old_teams]
        + [(Scope.TEAM, name, limits) for name, limits in quota.teams.items()]
        + [(Scope.USER, p.key, p.limits) for p in quota.people.values()]
    )
    return ApplyReport(len(quota.teams), len(quota.people), len(previously), len(old_teams), version,
                       tuple(changes))


def sync_to_redis(conn: Connection, state: RedisState) -> int:
    """Write every override in MySQL to the Redis cache (start-up, after Redis lost its data)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT quota_key, {LIMIT_COLUMNS} FROM principals WHERE {HAS_LIMITS}")
        people = [(Scope.USER, str(k), limits_of(*row)) for k, *row in cur.fetchall()]
        cur.execute(f"SELECT name, {LIMIT_COLUMNS} FROM teams WHERE {HAS_LIMITS}")
        teams = [(Scope.TEAM, str(n), limits_of(*row)) for n, *row in cur.fetchall()]
    conn.commit()
    return state.set_limit_overrides(people + teams)
