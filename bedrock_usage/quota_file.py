"""The quota file: parsed and checked whole before anything is written.

    teams:
      data-science: {daily_limit: 2000, monthly_limit: 30000, admins: [lead@example.com],
                     daily_cost_limit_usd: 200, monthly_cost_limit_usd: 2500}
      platform: {}
    users:
      "arn:aws:iam::111122223333:user/alice": {team: data-science, daily_limit: 400, email: alice@example.com,
                                               daily_cost_limit_usd: 12.5}
      "sso:bob@example.com": {team: platform, monthly_limit: 8000, name: Bob, language: es,
                              timezone: America/Mexico_City}
    identity_center:                          # optional: teams of SSO people from their groups
      store_id: d-1234567890
      region: eu-west-1
      team_from_groups: {"bedrock-team-*": "{name}", "Data Science": data-science}

A mistake in this file could clear every override or put people in a team nobody declared, so every
problem is collected and reported at once, one line each naming the entry and the field
(`users."sso:bob@example.com".team: ...`), and a file with any problem is rejected whole.

Cost limits (`daily_cost_limit_usd`, `monthly_cost_limit_usd`) are dollars, read exactly as written
(see dollar_limits: never through a float), and held as nano-dollars in `Limits`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from bedrock_usage import dollar_limits
from bedrock_usage.directory_state import IdentityCenterRule
from bedrock_usage.identity import SSO_KEY_PREFIX, IdentityType
from bedrock_usage.notifications import LANGUAGES
from bedrock_usage.quota import Limits

SECTIONS = ("teams", "users", "identity_center")
COST_FIELDS = ("daily_cost_limit_usd", "monthly_cost_limit_usd")
TEAM_FIELDS = ("daily_limit", "monthly_limit", *COST_FIELDS, "admins")
USER_FIELDS = ("team", "daily_limit", "monthly_limit", *COST_FIELDS, "email", "name", "language", "timezone")
IDENTITY_CENTER_FIELDS = ("store_id", "region", "team_from_groups")
PLACEHOLDERS = ("name", "group")  # of team_from_groups templates (see directory_state.IdentityCenterRule)

# Column sizes in sql/001_initial.sql: a longer value would fail half-way through the transaction.
_MAX_KEY, _MAX_TEAM, _MAX_EMAIL, _MAX_NAME = 512, 128, 320, 255
_EMAIL = re.compile(r"[^@\s\"(),:;<>\[\]\\]+@([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
_ACCOUNT = re.compile(r"\d{12}")
# The Identity Store API's own pattern for IdentityStoreId (without its optional ARN prefix).
_STORE_ID = re.compile(r"d-[0-9a-f]{10}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PLAIN = re.compile(r"[A-Za-z0-9_-]+")


class QuotaFileError(ValueError):
    """Every problem found in a quota file, one line each."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


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
    identity_center: IdentityCenterRule | None = None  # None: no Identity Store lookups


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


def key_problem(key: str) -> str | None:
    """Why `key` cannot be a quota key, or None. Stricter than identity_type_of_key, which also serves
    keys the consumer built: a key typed by hand can carry a typo that would never match a caller."""
    if any(c.isspace() for c in key):
        return f"{key!r} has whitespace in it"
    if len(key) > _MAX_KEY:
        return f"{key[:40]!r}... is longer than {_MAX_KEY} characters"
    try:
        identity_type_of_key(key)
    except QuotaFileError as error:
        return str(error)
    if key.lower().startswith(SSO_KEY_PREFIX):
        return None if len(key) > len(SSO_KEY_PREFIX) else f"{key!r}: sso: must be followed by the user name"
    parts = key.split(":", 5)
    if len(parts) < 6 or not _ACCOUNT.fullmatch(parts[4]):
        return f"{key!r}: the account ({parts[4] if len(parts) > 4 else 'none'!r}) is not 12 digits"
    if parts[5].endswith("/") or parts[5].endswith(":"):
        return f"{key!r} names no one (nothing after the last /)"
    return None


def where(*parts: object) -> str:
    """`users."arn:aws:iam::111122223333:user/bob".team`: entries quoted when not a plain name."""
    return ".".join(str(p) if _PLAIN.fullmatch(str(p)) else json.dumps(str(p)) for p in parts)


def parse_quota_file(text: str, *, default_team: str, allow_new_teams: bool = False,
                     allow_empty: bool = False) -> QuotaFile:
    """The file's content, or QuotaFileError listing every problem. `default_team` (the DEFAULT_TEAM
    setting) is where people without a team are counted: it is not a team anyone may be put in."""
    try:
        document = dollar_limits.load(text) or {}
    except yaml.YAMLError as error:
        raise QuotaFileError(f"not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise QuotaFileError("the quota file must be a mapping with 'teams' and 'users'")
    check = _Checker(default_team, allow_new_teams)
    for name in document:
        if name not in SECTIONS:
            check.problem(where(name), f"unknown section (expected {', '.join(SECTIONS)})")
    teams, admins = check.teams(document.get("teams"))
    people = check.users(document.get("users"), teams)
    rule = check.identity_center(document.get("identity_center"), teams)
    # Empty as written, whatever else is wrong with it (a section of bad entries is not empty).
    if not document.get("teams") and not document.get("users") and "identity_center" not in document \
            and not allow_empty:
        check.problem("(the file)", "declares no teams, no users and no identity_center: applying it would"
                                    " clear every override (use --allow-empty if that is what you mean)")
    if check.problems:
        raise QuotaFileError(*check.problems)
    return QuotaFile(teams, people, admins, rule)


def load_quota_file(path: Path, *, default_team: str, allow_new_teams: bool = False,
                    allow_empty: bool = False) -> QuotaFile:
    return parse_quota_file(path.read_text(), default_team=default_team, allow_new_teams=allow_new_teams,
                            allow_empty=allow_empty)


class _Checker:
    """Collects problems while reading the document, so that one run reports all of them."""

    def __init__(self, default_team: str, allow_new_teams: bool) -> None:
        self.default_team, self.allow_new_teams = default_team, allow_new_teams
        self.problems: list[str] = []

    def problem(self, at: str, message: str) -> None:
        self.problems.append(f"{at}: {message}")

    def _section(self, name: str, value: Any) -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(name, "must be a mapping (name → settings), not a list or a value")
            return {}
        return value

    def _entry(self, at: str, value: Any, allowed: tuple[str, ...]) -> dict[str, Any] | None:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(at, f"must be a mapping of settings, got {value!r}")
            return None
        for name in value:
            if name not in allowed:
                self.problem(f"{at}.{where(name)}", f"unknown field (allowed: {', '.join(sorted(allowed))})")
        return value

    def _limits(self, at: str, entry: dict[str, Any]) -> Limits:
        values: list[int | None] = []
        for name in ("daily_limit", "monthly_limit"):
            value = entry.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                self.problem(f"{at}.{name}", f"must be a positive integer, got {dollar_limits.shown(value)}")
                value = None
            values.append(value)
        daily, monthly = values
        if daily is not None and monthly is not None and daily > monthly:
            self.problem(f"{at}.daily_limit", f"{daily} is above the monthly_limit {monthly}")
        costs: list[int | None] = []
        for name in COST_FIELDS:
            value = entry.get(name)
            problem = None if value is None else dollar_limits.dollars_problem(value)
            if problem:
                self.problem(f"{at}.{name}", problem)
            costs.append(None if value is None or problem else dollar_limits.nanos(value))
        daily_cost, monthly_cost = costs
        if daily_cost is not None and monthly_cost is not None and daily_cost > monthly_cost:
            self.problem(f"{at}.daily_cost_limit_usd", f"{entry['daily_cost_limit_usd']} is above the"
                                                       f" monthly_cost_limit_usd {entry['monthly_cost_limit_usd']}")
        return Limits(daily, monthly, daily_cost, monthly_cost)

    def _text(self, at: str, value: Any, longest: int) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str | int) or isinstance(value, bool):
            self.problem(at, f"must be a single value, got {value!r}")
            return None
        if len(str(value)) > longest:
            self.problem(at, f"is longer than {longest} characters")
            return None
        return str(value)

    def _email(self, at: str, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or len(value) > _MAX_EMAIL or not _EMAIL.fullmatch(value):
            self.problem(at, f"{value!r} is not an email address")
            return None
        return value

    def _team(self, at: str, team: str, declared: dict[str, Limits]) -> None:
        """A team someone is put in: the default team is none, and a typo would create one silently."""
        if not team.isprintable():
            self.problem(at, f"{team!r}: a team name has printable characters only")
        elif team == self.default_team:
            self.problem(at, f"{team!r} is DEFAULT_TEAM, where people with no team are counted, not a team:"
                             " leave the team out")
        elif team not in declared and not self.allow_new_teams:
            self.problem(at, f"team {team!r} is not declared under teams: (declare it, or use --allow-new-teams)")

    def teams(self, section: Any) -> tuple[dict[str, Limits], dict[str, tuple[str, ...]]]:
        teams: dict[str, Limits] = {}
        admins: dict[str, tuple[str, ...]] = {}
        for raw_name, raw_entry in self._section("teams", section).items():
            name = "" if raw_name is None else str(raw_name)
            at = where("teams", name)
            if not name or len(name) > _MAX_TEAM or not name.isprintable():
                # Printable only: control characters separate the fields of the counting keys.
                self.problem(at, f"a team name has 1 to {_MAX_TEAM} printable characters")
            elif name == self.default_team:
                self.problem(at, f"{name!r} is DEFAULT_TEAM, where people with no team are counted, not a team"
                                 " (its limits are the DEFAULT_TEAM_*_REQUEST_LIMIT settings)")
            entry = self._entry(at, raw_entry, TEAM_FIELDS)
            if entry is None:
                continue
            teams[name] = self._limits(at, entry)
            emails = entry.get("admins") or []
            if not isinstance(emails, list):
                self.problem(f"{at}.admins", f"must be a list of email addresses, got {emails!r}")
                continue
            valid = [self._email(f"{at}.admins[{i}]", email) for i, email in enumerate(emails)]
            if emails:
                admins[name] = tuple(e for e in valid if e)
        return teams, admins

    def users(self, section: Any, teams: dict[str, Limits]) -> dict[str, PersonEntry]:
        people: dict[str, PersonEntry] = {}
        written_as: dict[str, str] = {}
        for raw_key, raw_entry in self._section("users", section).items():
            key = normalise_key(str(raw_key))
            at = where("users", raw_key)
            bad_key = key_problem(key)
            if bad_key:
                self.problem(at, bad_key)
            elif key in written_as:
                self.problem(at, f"the same person as {where('users', written_as[key])} (sso: keys ignore case)")
            written_as.setdefault(key, str(raw_key))
            entry = self._entry(at, raw_entry, USER_FIELDS)
            if entry is None:
                continue
            team = self._text(f"{at}.team", entry.get("team"), _MAX_TEAM)
            if team is not None:
                self._team(f"{at}.team", team, teams)
            language = self._text(f"{at}.language", entry.get("language"), 8)
            if language is not None and language.lower() not in LANGUAGES:
                self.problem(f"{at}.language", f"must be one of {', '.join(LANGUAGES)}, got {language!r}")
            timezone = self._text(f"{at}.timezone", entry.get("timezone"), 64)
            if timezone is not None:
                try:
                    ZoneInfo(timezone)
                except (ZoneInfoNotFoundError, ValueError):
                    self.problem(f"{at}.timezone", f"{timezone!r} is not an IANA time zone")
            people[key] = PersonEntry(
                key=key, team=team, limits=self._limits(at, entry),
                email=self._email(f"{at}.email", entry.get("email")),
                name=self._text(f"{at}.name", entry.get("name"), _MAX_NAME),
                language=language.lower() if language else None, timezone=timezone,
            )
        return people

    def identity_center(self, section: Any, teams: dict[str, Limits]) -> IdentityCenterRule | None:
        if section is None:
            return None
        entry = self._entry("identity_center", section, IDENTITY_CENTER_FIELDS)
        if entry is None:
            return None
        store_id = entry.get("store_id")
        if store_id is None:
            self.problem("identity_center.store_id", "required: the Identity Store ID (IAM Identity Center"
                                                     " console, Settings), like d-1234567890")
        elif not isinstance(store_id, str) or not _STORE_ID.fullmatch(store_id):
            self.problem("identity_center.store_id", f"{store_id!r} is not an Identity Store ID (d- and 10 hex"
                                                     " digits, like d-1234567890, or a UUID)")
        region = entry.get("region")
        if region is not None and (not isinstance(region, str) or not _REGION.fullmatch(region)):
            self.problem("identity_center.region", f"{region!r} is not an AWS region (like eu-west-1)")
        rules: list[tuple[str, str]] = []
        mapping = entry.get("team_from_groups")
        if mapping is not None and not isinstance(mapping, dict):
            self.problem("identity_center.team_from_groups", "must be a mapping (group name pattern → team)")
            mapping = None
        for pattern, template in (mapping or {}).items():  # YAML mappings keep file order: first match wins
            at = where("identity_center", "team_from_groups", pattern)
            if not isinstance(pattern, str) or not pattern.strip("*"):
                self.problem(at, "a group name pattern must name a group (`*` alone would match every group)")
            if not isinstance(template, str) or not template.strip():
                self.problem(at, f"must be a team name or a template like '{{name}}', got {template!r}")
                continue
            unknown = [p for p in _PLACEHOLDER.findall(template) if p not in PLACEHOLDERS]
            if unknown:
                self.problem(at, f"unknown placeholder {{{unknown[0]}}} (use {{name}}: what * matched,"
                                 " or {group}: the whole group name)")
            elif not _PLACEHOLDER.search(template):
                # A template with placeholders names teams only the groups will tell; a literal one is a
                # team like any other.
                self._team(at, template.strip(), teams)
            rules.append((str(pattern), template))
        if not isinstance(store_id, str):
            return None
        return IdentityCenterRule(store_id, region if isinstance(region, str) else None, tuple(rules))
