"""Quota file → MySQL (the record) → Redis (the cache the counting script reads).

The quota file is declarative: after `bedrockctl limits apply quotas.yaml`, the overrides and team
assignments in MySQL are exactly the file's. People and teams it no longer lists fall back to the
defaults (and, for the team, to their IAM tag on the next lookup).

    teams:
      data-science: {daily_limit: 2000, monthly_limit: 30000, admins: [lead@example.com]}
    users:
      "arn:aws:iam::111122223333:user/alice": {team: data-science, daily_limit: 400, email: alice@example.com}
      "sso:bob@example.com": {team: platform, monthly_limit: 8000, name: Bob, language: es,
                              timezone: America/Mexico_City}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pymysql.connections import Connection

from bedrock_usage.identity import SSO_KEY_PREFIX, IdentityType
from bedrock_usage.quota import Limits, Scope
from bedrock_usage.redis_state import RedisState
from bedrock_usage.settings import LANGUAGES


class QuotaFileError(ValueError):
    pass


@dataclass(frozen=True)
class PersonEntry:
    key: str
    team: str | None
    limits: Limits
    email: str | None
    name: str | None
    language: str | None = None  # of the person's messages (en, es)
    timezone: str | None = None  # of the times in them


@dataclass(frozen=True)
class QuotaFile:
    teams: dict[str, Limits]
    people: dict[str, PersonEntry]
    team_admins: dict[str, tuple[str, ...]] = field(default_factory=dict)  # who hears of the team's blocks


@dataclass(frozen=True)
class ApplyReport:
    teams: int
    people: int
    cleared_people: int
    cleared_teams: int


def identity_type_of_key(key: str) -> IdentityType:
    if key.startswith(SSO_KEY_PREFIX):
        return IdentityType.SSO_USER
    if not key.startswith("arn:aws"):
        raise QuotaFileError(f"{key!r} is not a quota key (an IAM ARN, or sso:<user name>)")
    for marker, kind in ((":user/", IdentityType.IAM_USER), (":assumed-role/", IdentityType.ROLE_SESSION),
                         (":role/", IdentityType.ROLE), (":federated-user/", IdentityType.FEDERATED_USER)):
        if marker in key:
            return kind
    if key.endswith(":root"):
        return IdentityType.ROOT
    raise QuotaFileError(f"{key!r} is not a user, role, session, federated user or root ARN")


def normalise_key(key: str) -> str:
    """SSO user names are case-insensitive; their quota keys are lower case (see identity.py)."""
    return key.lower() if key.lower().startswith(SSO_KEY_PREFIX) else key


def _limit(where: str, entry: dict[str, Any], name: str) -> int | None:
    value = entry.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise QuotaFileError(f"{where}: {name} must be a positive integer, got {value!r}")
    return value


def parse_quota_file(text: str) -> QuotaFile:
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise QuotaFileError(f"not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise QuotaFileError("the quota file must be a mapping with 'teams' and 'users'")
    unknown = set(document) - {"teams", "users"}
    if unknown:
        raise QuotaFileError(f"unknown sections: {sorted(unknown)} (expected teams, users)")
    for section in ("teams", "users"):
        if not isinstance(document.get(section) or {}, dict):
            raise QuotaFileError(f"'{section}' must be a mapping (name → settings), not a list or a value")
    teams: dict[str, Limits] = {}
    team_admins: dict[str, tuple[str, ...]] = {}
    for name, raw_entry in (document.get("teams") or {}).items():
        entry = raw_entry or {}
        if not isinstance(entry, dict):
            raise QuotaFileError(f"teams.{name} must be a mapping")
        _only(f"teams.{name}", entry, {"daily_limit", "monthly_limit", "admins"})
        teams[str(name)] = Limits(_limit(f"teams.{name}", entry, "daily_limit"),
                                  _limit(f"teams.{name}", entry, "monthly_limit"))
        admins = entry.get("admins") or []
        if not isinstance(admins, list) or not all(isinstance(a, str) and "@" in a for a in admins):
            raise QuotaFileError(f"teams.{name}: admins must be a list of email addresses")
        if admins:
            team_admins[str(name)] = tuple(admins)
    people: dict[str, PersonEntry] = {}
    for raw_key, raw_entry in (document.get("users") or {}).items():
        entry = raw_entry or {}
        key = normalise_key(str(raw_key))
        identity_type_of_key(key)
        if not isinstance(entry, dict):
            raise QuotaFileError(f"users.{key} must be a mapping")
        _only(f"users.{key}", entry, {"team", "daily_limit", "monthly_limit", "email", "name", "language",
                                      "timezone"})
        language = str(entry["language"]).lower() if entry.get("language") else None
        if language is not None and language not in LANGUAGES:
            raise QuotaFileError(f"users.{key}: language must be one of {', '.join(LANGUAGES)}, got {language!r}")
        timezone = str(entry["timezone"]) if entry.get("timezone") else None
        if timezone is not None:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise QuotaFileError(f"users.{key}: timezone {timezone!r} is not an IANA time zone") from None
        people[key] = PersonEntry(
            key=key,
            team=str(entry["team"]) if entry.get("team") else None,
            limits=Limits(_limit(f"users.{key}", entry, "daily_limit"),
                          _limit(f"users.{key}", entry, "monthly_limit")),
            email=str(entry["email"]) if entry.get("email") else None,
            name=str(entry["name"]) if entry.get("name") else None,
            language=language,
            timezone=timezone,
        )
    return QuotaFile(teams, people, team_admins)


def _only(where: str, entry: dict[str, Any], allowed: set[str]) -> None:
    extra = set(entry) - allowed
    if extra:
        raise QuotaFileError(f"{where}: unknown fields {sorted(extra)} (allowed: {sorted(allowed)})")


def load_quota_file(path: Path) -> QuotaFile:
    return parse_quota_file(path.read_text())


def apply(conn: Connection, state: RedisState, quota: QuotaFile) -> ApplyReport:
    """Make MySQL match the file (one transaction), then refresh the Redis cache of overrides."""
    with conn.cursor() as cur:
        cur.execute("SELECT quota_key FROM principals WHERE team_source = 'quota_file'"
                    " OR daily_request_limit IS NOT NULL OR monthly_request_limit IS NOT NULL")
        previously = {str(key) for (key,) in cur.fetchall()} - set(quota.people)
        cur.execute("SELECT name FROM teams WHERE daily_request_limit IS NOT NULL"
                    " OR monthly_request_limit IS NOT NULL")
        old_teams = {str(name) for (name,) in cur.fetchall()} - set(quota.teams)

        if previously:
            cur.executemany(
                # MySQL assigns left to right with the new values: team_source must change last.
                "UPDATE principals SET daily_request_limit = NULL, monthly_request_limit = NULL,"
                " tags_checked_at = IF(team_source = 'quota_file', NULL, tags_checked_at),"
                " team = IF(team_source = 'quota_file', NULL, team),"
                " team_source = IF(team_source = 'quota_file', 'default', team_source)"
                " WHERE quota_key = %s",
                [(key,) for key in sorted(previously)],
            )
        if old_teams:
            cur.executemany("UPDATE teams SET daily_request_limit = NULL, monthly_request_limit = NULL"
                            " WHERE name = %s", [(name,) for name in sorted(old_teams)])
        cur.execute("UPDATE teams SET admin_emails = NULL WHERE admin_emails IS NOT NULL")
        if quota.teams:
            cur.executemany(
                "INSERT INTO teams (name, daily_request_limit, monthly_request_limit, admin_emails)"
                " VALUES (%s, %s, %s, %s)"
                " ON DUPLICATE KEY UPDATE daily_request_limit = VALUES(daily_request_limit),"
                " monthly_request_limit = VALUES(monthly_request_limit), admin_emails = VALUES(admin_emails)",
                [(name, limits.daily, limits.monthly,
                  json.dumps(list(quota.team_admins[name])) if quota.team_admins.get(name) else None)
                 for name, limits in quota.teams.items()],
            )
        if quota.people:
            cur.executemany(
                "INSERT INTO principals (quota_key, identity_type, team, team_source, email, display_name,"
                " daily_request_limit, monthly_request_limit, language, time_zone)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON DUPLICATE KEY UPDATE"
                " team = IF(VALUES(team_source) = 'quota_file', VALUES(team),"
                "   IF(team_source = 'quota_file', NULL, team)),"
                " team_source = IF(VALUES(team_source) = 'quota_file', 'quota_file',"
                "   IF(team_source = 'quota_file', 'default', team_source)),"
                " email = COALESCE(VALUES(email), email), display_name = COALESCE(VALUES(display_name), display_name),"
                " daily_request_limit = VALUES(daily_request_limit),"
                " monthly_request_limit = VALUES(monthly_request_limit),"
                " language = VALUES(language), time_zone = VALUES(time_zone)",
                [
                    (p.key, identity_type_of_key(p.key).value, p.team, "quota_file" if p.team else "default",
                     p.email, p.name, p.limits.daily, p.limits.monthly, p.language, p.timezone)
                    for p in quota.people.values()
                ],
            )
    conn.commit()

    state.set_limit_overrides(
        [(Scope.USER, key, Limits(None, None)) for key in previously]
        + [(Scope.TEAM, name, Limits(None, None)) for name in old_teams]
        + [(Scope.TEAM, name, limits) for name, limits in quota.teams.items()]
        + [(Scope.USER, p.key, p.limits) for p in quota.people.values()]
    )
    return ApplyReport(len(quota.teams), len(quota.people), len(previously), len(old_teams))


def sync_to_redis(conn: Connection, state: RedisState) -> int:
    """Write every override in MySQL to the Redis cache (start-up, after Redis lost its data)."""
    with conn.cursor() as cur:
        cur.execute("SELECT quota_key, daily_request_limit, monthly_request_limit FROM principals"
                    " WHERE daily_request_limit IS NOT NULL OR monthly_request_limit IS NOT NULL")
        people = [(Scope.USER, str(k), Limits(d, m)) for k, d, m in cur.fetchall()]
        cur.execute("SELECT name, daily_request_limit, monthly_request_limit FROM teams"
                    " WHERE daily_request_limit IS NOT NULL OR monthly_request_limit IS NOT NULL")
        teams = [(Scope.TEAM, str(n), Limits(d, m)) for n, d, m in cur.fetchall()]
    conn.commit()
    return state.set_limit_overrides(people + teams)
