"""bedrock_usage.limits.parse_quota_file: the declarative quota file, and a clear error for each mistake."""

from __future__ import annotations

import pytest

from bedrock_usage.identity import IdentityType
from bedrock_usage.limits import (
    PersonEntry,
    QuotaFile,
    QuotaFileError,
    identity_type_of_key,
    normalise_key,
    parse_quota_file,
)
from bedrock_usage.quota import Limits

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


def test_valid_file() -> None:
    assert parse_quota_file(VALID) == QuotaFile(
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
def test_empty_file_declares_nothing(text: str) -> None:
    assert parse_quota_file(text) == QuotaFile({}, {})


def test_only_sso_keys_are_lower_cased() -> None:
    people = parse_quota_file('users:\n  "arn:aws:iam::111122223333:user/Alice": {daily_limit: 5}\n'
                              '  "sso:ALICE@example.com": {daily_limit: 6}\n').people

    assert sorted(people) == ["arn:aws:iam::111122223333:user/Alice", "sso:alice@example.com"]


def test_bad_yaml() -> None:
    with pytest.raises(QuotaFileError, match=r"^not valid YAML"):
        parse_quota_file("teams: {data-science: [unclosed\n")


@pytest.mark.parametrize("text", ["- a list\n- of things\n", "just a string\n", "42\n"])
def test_document_that_is_not_a_mapping(text: str) -> None:
    with pytest.raises(QuotaFileError, match=r"must be a mapping with 'teams' and 'users'"):
        parse_quota_file(text)


def test_unknown_section() -> None:
    with pytest.raises(QuotaFileError) as error:
        parse_quota_file("teams: {}\ngroups: {}\npeople: {}\n")

    assert str(error.value) == "unknown sections: ['groups', 'people'] (expected teams, users)"


def test_unknown_user_field() -> None:
    with pytest.raises(QuotaFileError) as error:
        parse_quota_file('users:\n  "sso:bob@example.com": {daily_limit: 5, daily_limt: 7}\n')

    assert str(error.value) == ("users.sso:bob@example.com: unknown fields ['daily_limt'] (allowed: ['daily_limit',"
                                " 'email', 'language', 'monthly_limit', 'name', 'team', 'timezone'])")


def test_unknown_team_field() -> None:
    with pytest.raises(QuotaFileError) as error:
        parse_quota_file("teams:\n  platform: {daily_limit: 5, team: x}\n")

    assert str(error.value) == ("teams.platform: unknown fields ['team'] (allowed: ['admins', 'daily_limit',"
                                " 'monthly_limit'])")


def test_language_timezone_and_team_admins() -> None:
    parsed = parse_quota_file(
        "teams:\n  ml: {admins: [lead@example.com, cto@example.com]}\n"
        "users:\n  \"sso:Bob@example.com\": {language: ES, timezone: America/Mexico_City}\n")
    assert parsed.team_admins == {"ml": ("lead@example.com", "cto@example.com")}
    assert parsed.people["sso:bob@example.com"].language == "es"
    assert parsed.people["sso:bob@example.com"].timezone == "America/Mexico_City"
    for bad in ('users:\n  "sso:a@b.c": {language: fr}\n', 'users:\n  "sso:a@b.c": {timezone: Mars/Olympus}\n',
                "teams:\n  ml: {admins: lead}\n"):
        with pytest.raises(QuotaFileError):
            parse_quota_file(bad)


@pytest.mark.parametrize("value", ["0", "-10", "'100'", "1.5", "true", "[1]"])
def test_limit_must_be_a_positive_integer(value: str) -> None:
    with pytest.raises(QuotaFileError, match=r"^users\.sso:bob@example\.com: daily_limit must be a positive integer"):
        parse_quota_file(f'users:\n  "sso:bob@example.com": {{daily_limit: {value}}}\n')


def test_team_limit_must_be_a_positive_integer() -> None:
    with pytest.raises(QuotaFileError, match=r"^teams\.platform: monthly_limit must be a positive integer, got 0$"):
        parse_quota_file("teams:\n  platform: {monthly_limit: 0}\n")


@pytest.mark.parametrize("key", ["alice", "alice@example.com", "AIDAIHL7V6WZEXAMPLEVU"])
def test_a_key_that_is_not_a_quota_key(key: str) -> None:
    with pytest.raises(QuotaFileError) as error:
        parse_quota_file(f'users:\n  "{key}": {{daily_limit: 5}}\n')

    assert str(error.value) == f"{key!r} is not a quota key (an IAM ARN, or sso:<user name>)"


@pytest.mark.parametrize("key", ["arn:aws:s3:::my-bucket", "arn:aws:iam::111122223333:group/devs"])
def test_an_arn_that_is_not_a_principal(key: str) -> None:
    with pytest.raises(QuotaFileError, match=r"is not a user, role, session, federated user or root ARN$"):
        parse_quota_file(f'users:\n  "{key}": {{daily_limit: 5}}\n')


@pytest.mark.parametrize("section", ["teams:\n  platform: 5\n", 'users:\n  "sso:bob@example.com": 5\n'])
def test_an_entry_that_is_not_a_mapping(section: str) -> None:
    with pytest.raises(QuotaFileError, match=r"must be a mapping$"):
        parse_quota_file(section)


@pytest.mark.parametrize("text", ["teams:\n  - platform\n", 'users:\n  - "sso:bob@example.com"\n', "users: 5\n"])
def test_a_section_that_is_not_a_mapping(text: str) -> None:
    with pytest.raises(QuotaFileError):
        parse_quota_file(text)


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
