"""bedrock_usage.quota_file: the declarative quota file, and every mistake in it reported at once, each
naming its entry and field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bedrock_usage.directory_state import IdentityCenterRule
from bedrock_usage.identity import IdentityType
from bedrock_usage.quota import Limits
from bedrock_usage.quota_file import (
    PersonEntry,
    QuotaFile,
    QuotaFileError,
    identity_type_of_key,
    key_problem,
    normalise_key,
    parse_quota_file,
    where,
)

VALID = """
teams:
  data-science: {daily_limit: 2000, monthly_limit: 30000}
  platform:
    monthly_limit: 8000
  interns:
users:
  "arn:aws:iam::111122223333:user/alice": {team: data-science, daily_limit: 400, email: alice@example.com}
  "sso:Bob.Jones@Example.com": {team: platform, monthly_limit: 8000, name: Bob Jones}
  "arn:aws:iam::111122223333:role/ci-runner": {daily_limit: 50}
  "arn:aws:sts::111122223333:assumed-role/DeveloperAccess/jane": {team: platform}
"""
ALICE = '"arn:aws:iam::111122223333:user/alice"'


def parse(text: str, **options: Any) -> QuotaFile:
    return parse_quota_file(text, default_team="unassigned", **options)


def problems(text: str, **options: Any) -> list[str]:
    with pytest.raises(QuotaFileError) as error:
        parse(text, **options)
    assert str(error.value) == "\n".join(error.value.problems)
    return list(error.value.problems)


def test_valid_file() -> None:
    assert parse(VALID) == QuotaFile(
        teams={
            "data-science": Limits(2000, 30000),
            "platform": Limits(None, 8000),
            "interns": Limits(None, None),
        },
        people={
            "arn:aws:iam::111122223333:user/alice": PersonEntry(
                "arn:aws:iam::111122223333:user/alice", "data-science", Limits(400, None), "alice@example.com", None),
            "sso:bob.jones@example.com": PersonEntry(
                "sso:bob.jones@example.com", "platform", Limits(None, 8000), None, "Bob Jones"),
            "arn:aws:iam::111122223333:role/ci-runner": PersonEntry(
                "arn:aws:iam::111122223333:role/ci-runner", None, Limits(50, None), None, None),
            "arn:aws:sts::111122223333:assumed-role/DeveloperAccess/jane": PersonEntry(
                "arn:aws:sts::111122223333:assumed-role/DeveloperAccess/jane", "platform", Limits(None, None),
                None, None),
        },
    )


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "teams:\nusers:\n", "teams: {}\nusers: {}\n"])
def test_an_empty_file_is_refused_unless_allowed(text: str) -> None:
    # Applying it would clear every override: a truncated file must not do that by accident.
    (problem,) = problems(text)
    assert problem.startswith("(the file): declares no teams, no users and no identity_center")
    assert "--allow-empty" in problem
    assert parse(text, allow_empty=True) == QuotaFile({}, {})


def test_a_file_with_only_teams_or_only_identity_center_is_not_empty() -> None:
    assert parse("teams: {platform: {}}\n").teams == {"platform": Limits(None, None)}
    assert parse("identity_center: {store_id: d-1234567890}\n").identity_center == IdentityCenterRule("d-1234567890")


def test_only_sso_keys_are_lower_cased() -> None:
    people = parse('users:\n  "arn:aws:iam::111122223333:user/Alice": {daily_limit: 5}\n'
                   '  "sso:ALICE@example.com": {daily_limit: 6}\n').people

    assert sorted(people) == ["arn:aws:iam::111122223333:user/Alice", "sso:alice@example.com"]


def test_two_spellings_of_one_sso_person() -> None:
    assert problems('users:\n  "sso:bob@example.com": {daily_limit: 5}\n  "SSO:Bob@example.com": {daily_limit: 6}\n') \
        == ['users."SSO:Bob@example.com": the same person as users."sso:bob@example.com" (sso: keys ignore case)']


def test_bad_yaml() -> None:
    with pytest.raises(QuotaFileError, match=r"^not valid YAML"):
        parse("teams: {data-science: [unclosed\n")


@pytest.mark.parametrize("text", ["- a list\n- of things\n", "just a string\n", "42\n"])
def test_document_that_is_not_a_mapping(text: str) -> None:
    with pytest.raises(QuotaFileError, match=r"must be a mapping with 'teams' and 'users'"):
        parse(text)


def test_unknown_sections() -> None:
    assert problems("teams: {x: {}}\ngroups: {}\npeople: {}\n") == [
        "groups: unknown section (expected teams, users, identity_center)",
        "people: unknown section (expected teams, users, identity_center)",
    ]


def test_unknown_user_field() -> None:
    assert problems('users:\n  "sso:bob@example.com": {daily_limit: 5, daily_limt: 7}\n') == [
        'users."sso:bob@example.com".daily_limt: unknown field (allowed: daily_cost_limit_usd, daily_limit,'
        " email, language, monthly_cost_limit_usd, monthly_limit, name, team, timezone)"]


def test_unknown_team_field() -> None:
    assert problems("teams:\n  platform: {daily_limit: 5, team: x}\n") == [
        "teams.platform.team: unknown field (allowed: admins, daily_cost_limit_usd, daily_limit,"
        " monthly_cost_limit_usd, monthly_limit)"]


def test_language_timezone_and_team_admins() -> None:
    parsed = parse("teams:\n  ml: {admins: [lead@example.com, cto@example.com]}\n"
                   "users:\n  \"sso:Bob@example.com\": {language: ES, timezone: America/Mexico_City}\n")
    assert parsed.team_admins == {"ml": ("lead@example.com", "cto@example.com")}
    assert parsed.people["sso:bob@example.com"].language == "es"
    assert parsed.people["sso:bob@example.com"].timezone == "America/Mexico_City"
    assert problems('users:\n  "sso:a@b.c": {language: fr, timezone: Mars/Olympus}\n') == [
        "users.\"sso:a@b.c\".language: must be one of en, es, got 'fr'",
        "users.\"sso:a@b.c\".timezone: 'Mars/Olympus' is not an IANA time zone"]
    assert problems("teams:\n  ml: {admins: lead@example.com}\n") == [
        "teams.ml.admins: must be a list of email addresses, got 'lead@example.com'"]


@pytest.mark.parametrize("value", ["0", "-10", "'100'", "1.5", "true", "[1]"])
def test_limit_must_be_a_positive_integer(value: str) -> None:
    (problem,) = problems(f'users:\n  "sso:bob@example.com": {{daily_limit: {value}}}\n')
    assert problem.startswith('users."sso:bob@example.com".daily_limit: must be a positive integer, got ')


def test_team_limit_must_be_a_positive_integer() -> None:
    assert problems("teams:\n  platform: {monthly_limit: 0}\n") == [
        "teams.platform.monthly_limit: must be a positive integer, got 0"]


def test_a_daily_limit_above_the_monthly_one() -> None:
    assert problems(f"teams:\n  platform: {{daily_limit: 9000, monthly_limit: 8000}}\n"
                    f"users:\n  {ALICE}: {{team: platform, daily_limit: 50, monthly_limit: 40}}\n") == [
        "teams.platform.daily_limit: 9000 is above the monthly_limit 8000",
        f"users.{ALICE}.daily_limit: 50 is above the monthly_limit 40",
    ]
    # One of the two alone is compared with nothing: the defaults may change after the file is written.
    assert parse(f"users:\n  {ALICE}: {{daily_limit: 50000}}\n").people


@pytest.mark.parametrize("email", ["bob", "bob@", "@example.com", "bob@example", "bob smith@example.com",
                                   "bob@@example.com", "bob@exa mple.com", "bob@example..com", "[bob@example.com]"])
def test_an_invalid_email(email: str) -> None:
    assert problems(f"teams:\n  ml: {{admins: [ok@example.com, '{email}']}}\n"
                    f"users:\n  {ALICE}: {{email: '{email}'}}\n") == [
        f"teams.ml.admins[1]: {email!r} is not an email address",
        f"users.{ALICE}.email: {email!r} is not an email address",
    ]


@pytest.mark.parametrize("email", ["bob@example.com", "bob.smith+bedrock@mail.example.co.uk", "b@e.io"])
def test_valid_emails(email: str) -> None:
    assert parse(f"users:\n  {ALICE}: {{email: '{email}'}}\n").people[ALICE.strip('"')].email == email


def test_a_team_not_declared_under_teams() -> None:
    text = (f"teams:\n  platform: {{}}\nusers:\n  {ALICE}: {{team: plaftorm}}\n"
            '  "sso:bob@example.com": {team: platform}\n')
    assert problems(text) == [f"users.{ALICE}.team: team 'plaftorm' is not declared under teams:"
                              " (declare it, or use --allow-new-teams)"]
    assert parse(text, allow_new_teams=True).people[ALICE.strip('"')].team == "plaftorm"


def test_the_default_team_is_not_a_team() -> None:
    assert problems(f"teams:\n  unassigned: {{daily_limit: 5}}\nusers:\n  {ALICE}: {{team: unassigned}}\n") == [
        "teams.unassigned: 'unassigned' is DEFAULT_TEAM, where people with no team are counted, not a team"
        " (its limits are the DEFAULT_TEAM_*_REQUEST_LIMIT settings)",
        f"users.{ALICE}.team: 'unassigned' is DEFAULT_TEAM, where people with no team are counted, not a team:"
        " leave the team out",
    ]
    # Whatever DEFAULT_TEAM says; --allow-new-teams does not make it a team either.
    with pytest.raises(QuotaFileError, match="is DEFAULT_TEAM"):
        parse_quota_file(f"users:\n  {ALICE}: {{team: nobody}}\n", default_team="nobody", allow_new_teams=True)


@pytest.mark.parametrize(("key", "problem"), [
    ("alice", "'alice' is not a quota key (an IAM ARN, or sso:<user name>)"),
    ("alice@example.com", "'alice@example.com' is not a quota key (an IAM ARN, or sso:<user name>)"),
    ("AIDAIHL7V6WZEXAMPLEVU", "'AIDAIHL7V6WZEXAMPLEVU' is not a quota key (an IAM ARN, or sso:<user name>)"),
    ("arn:aws:s3:::my-bucket", "'arn:aws:s3:::my-bucket' is not a user, role, session, federated user or root ARN"),
    ("arn:aws:iam::111122223333:group/devs",
     "'arn:aws:iam::111122223333:group/devs' is not a user, role, session, federated user or root ARN"),
    ("arn:aws:iam::11112222333:user/alice",
     "'arn:aws:iam::11112222333:user/alice': the account ('11112222333') is not 12 digits"),
    ("arn:aws:iam::1111-2222-3333:user/alice",
     "'arn:aws:iam::1111-2222-3333:user/alice': the account ('1111-2222-3333') is not 12 digits"),
    ("arn:aws:iam::111122223333:user/", "'arn:aws:iam::111122223333:user/' names no one (nothing after the last /)"),
    ("sso:", "'sso:': sso: must be followed by the user name"),
    ("sso:bob @example.com", "'sso:bob @example.com' has whitespace in it"),
    (" arn:aws:iam::111122223333:user/alice", "' arn:aws:iam::111122223333:user/alice' has whitespace in it"),
])
def test_a_key_that_is_not_a_quota_key(key: str, problem: str) -> None:
    assert key_problem(normalise_key(key)) == problem
    assert problems(f"users:\n  {json.dumps(key)}: {{daily_limit: 5}}\n") == [f"{where('users', key)}: {problem}"]


@pytest.mark.parametrize("section", ["teams:\n  platform: 5\n", 'users:\n  "sso:bob@example.com": 5\n'])
def test_an_entry_that_is_not_a_mapping(section: str) -> None:
    (problem,) = problems(section)
    assert problem.endswith(": must be a mapping of settings, got 5")


@pytest.mark.parametrize("text", ["teams:\n  - platform\n", 'users:\n  - "sso:bob@example.com"\n', "users: 5\n"])
def test_a_section_that_is_not_a_mapping(text: str) -> None:
    assert any("must be a mapping (name → settings)" in p for p in problems(text))


def test_every_problem_at_once() -> None:
    assert problems(
        "teams:\n  platform: {daily_limit: 10, monthly_limit: 5, admins: [nope]}\n"
        "users:\n"
        '  "arn:aws:iam::1234:user/bob": {team: research, email: bob, daily_limt: 3}\n'
        '  "sso:carol@example.com": {team: unassigned, monthly_limit: -1}\n'
        "identity_center: {store_id: x}\n") == [
        "teams.platform.daily_limit: 10 is above the monthly_limit 5",
        "teams.platform.admins[0]: 'nope' is not an email address",
        "users.\"arn:aws:iam::1234:user/bob\": 'arn:aws:iam::1234:user/bob': the account ('1234') is not 12 digits",
        'users."arn:aws:iam::1234:user/bob".daily_limt: unknown field (allowed: daily_cost_limit_usd, daily_limit,'
        " email, language, monthly_cost_limit_usd, monthly_limit, name, team, timezone)",
        "users.\"arn:aws:iam::1234:user/bob\".team: team 'research' is not declared under teams:"
        " (declare it, or use --allow-new-teams)",
        "users.\"arn:aws:iam::1234:user/bob\".email: 'bob' is not an email address",
        "users.\"sso:carol@example.com\".team: 'unassigned' is DEFAULT_TEAM, where people with no team are"
        " counted, not a team: leave the team out",
        'users."sso:carol@example.com".monthly_limit: must be a positive integer, got -1',
        "identity_center.store_id: 'x' is not an Identity Store ID (d- and 10 hex digits, like d-1234567890,"
        " or a UUID)",
    ]


# -- identity_center ------------------------------------------------------------------------------

IDENTITY_CENTER = """
teams:
  data-science: {}
identity_center:
  store_id: d-9067a1b2c3
  region: eu-west-1
  team_from_groups:
    "bedrock-team-*": "{name}"
    "Data Science": data-science
    "*-admins": "admins-{group}"
"""


def test_identity_center_is_parsed_in_file_order() -> None:
    rule = parse(IDENTITY_CENTER).identity_center
    assert rule == IdentityCenterRule("d-9067a1b2c3", "eu-west-1", (
        ("bedrock-team-*", "{name}"), ("Data Science", "data-science"), ("*-admins", "admins-{group}")))
    assert rule.team_for(["Data Science", "bedrock-team-ml"]) == "ml"
    assert parse("identity_center: {store_id: 0123abcd-0123-4567-89ab-0123456789ab}\n").identity_center \
        == IdentityCenterRule("0123abcd-0123-4567-89ab-0123456789ab")
    assert parse(VALID).identity_center is None


def test_identity_center_mistakes() -> None:
    assert problems(
        "identity_center:\n  region: Europe\n  groups: {}\n"
        "  team_from_groups:\n    '*': everyone\n    'Data Science': data-sci\n    'ml-*': '{team}'\n"
        "    'unassigned-*': unassigned\n    'x': ''\n") == [
        "identity_center.groups: unknown field (allowed: region, store_id, team_from_groups)",
        "identity_center.store_id: required: the Identity Store ID (IAM Identity Center console, Settings),"
        " like d-1234567890",
        "identity_center.region: 'Europe' is not an AWS region (like eu-west-1)",
        'identity_center.team_from_groups."*": a group name pattern must name a group (`*` alone would match'
        " every group)",
        "identity_center.team_from_groups.\"*\": team 'everyone' is not declared under teams: (declare it, or use"
        " --allow-new-teams)",
        "identity_center.team_from_groups.\"Data Science\": team 'data-sci' is not declared under teams:"
        " (declare it, or use --allow-new-teams)",
        'identity_center.team_from_groups."ml-*": unknown placeholder {team} (use {name}: what * matched, or'
        " {group}: the whole group name)",
        "identity_center.team_from_groups.\"unassigned-*\": 'unassigned' is DEFAULT_TEAM, where people with no"
        " team are counted, not a team: leave the team out",
        "identity_center.team_from_groups.x: must be a team name or a template like '{name}', got ''",
    ]


@pytest.mark.parametrize("store_id", ["d-123456789", "d-12345678901", "D-1234567890", "d-123456789g", "1234567890",
                                      "arn:aws:identitystore::111122223333:identitystore/d-1234567890", "12"])
def test_an_identity_store_id_that_is_not_one(store_id: str) -> None:
    (problem,) = problems(f"identity_center: {{store_id: '{store_id}'}}\n")
    assert problem.startswith(f"identity_center.store_id: {store_id!r} is not an Identity Store ID")


def test_a_template_with_placeholders_names_no_team_to_check() -> None:
    rule = parse("identity_center:\n  store_id: d-1234567890\n  team_from_groups: {'team-*': 'x-{name}'}\n")
    assert rule.identity_center is not None and rule.identity_center.team_from_groups == (("team-*", "x-{name}"),)
    assert parse("identity_center:\n  store_id: d-1234567890\n  team_from_groups: {'Everyone': new-team}\n",
                 allow_new_teams=True).identity_center is not None


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("sso:bob@example.com", IdentityType.SSO_USER),
        ("arn:aws:iam::111122223333:user/alice", IdentityType.IAM_USER),
        ("arn:aws:sts::111122223333:assumed-role/DeveloperAccess/jane", IdentityType.ROLE_SESSION),
        ("arn:aws:iam::111122223333:role/ci-runner", IdentityType.ROLE),
        ("arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_X_1", IdentityType.ROLE),
        ("arn:aws:sts::111122223333:federated-user/bob", IdentityType.FEDERATED_USER),
        ("arn:aws:iam::111122223333:root", IdentityType.ROOT),
    ],
)
def test_identity_type_of_key(key: str, expected: IdentityType) -> None:
    assert identity_type_of_key(key) is expected


def test_normalise_key() -> None:
    assert normalise_key("sso:Bob@Example.COM") == "sso:bob@example.com"
    assert normalise_key("arn:aws:iam::111122223333:user/Bob") == "arn:aws:iam::111122223333:user/Bob"
