"""The AWS tests' fixtures: IAM on moto (in-process), real Redis and real MariaDB; the enforcer's world and an
admin running bedrockctl's provisioning commands."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import boto3
import pymysql
import pytest
import redis
from moto import mock_aws
from prometheus_client import CollectorRegistry

from bedrock_usage.identity import IdentityType
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Decision, Kind, Quota, Scope
from bedrockctl.main import main
from devtools.settings import AllSettings
from enforcement.assembly import EnforcerParts, assemble_enforcer
from provisioning.iam import IamServiceCredentials
from provisioning.parts import Parts, assemble
from provisioning.settings import ProvisioningSettings
from tests.aws.service_credentials import MotoLacksServiceCredentials
from tests.conftest import DAY, MONTH, NOW
from tests.conftest import test_env as _env

ACCOUNT = "123456789012"  # moto's default account
SSO_ROLE = "AWSReservedSSO_BedrockUsers_0123456789abcdef"
SSO_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/{SSO_ROLE}"
SSO_ROLE_ID = "AROAEXAMPLESSOROLE01"

Cli = Callable[..., tuple[int, str, str]]  # bedrockctl's argv → (exit status, stdout, stderr)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def iam(aws: None) -> Any:
    return boto3.client("iam", region_name="us-east-1")


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


class World:
    """Assembles enforcers on the test database and Redis, and people to act on."""

    def __init__(self, conn: pymysql.connections.Connection, client: redis.Redis, iam: Any) -> None:
        self.conn, self.redis, self.iam = conn, client, iam
        self.made: list[EnforcerParts] = []
        self.now = NOW

    def parts(self, **overrides: str) -> EnforcerParts:
        settings = AllSettings.from_env(_env(**{"DEFAULT_DAILY_REQUEST_LIMIT": "10", **overrides}))
        rt = assemble_enforcer(settings, registry=CollectorRegistry(), account_id=ACCOUNT, clock=lambda: self.now)
        self.made.append(rt)
        return rt

    def person(self, key: str, kind: IdentityType, *, team: str = "research", display: str | None = None,
               email: str | None = None, role_arn: str | None = None, role_id: str | None = None,
               session: str | None = None, create_user: bool = True) -> str:
        arn = key if key.startswith("arn:") else None
        if kind is IdentityType.IAM_USER and create_user:
            self.iam.create_user(UserName=key.rsplit("/", 1)[-1])
        with self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO principals (quota_key, identity_type, arn, account_id, display_name, team, email,"
                " role_arn, role_id, session_name) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (key, kind.value, arn, ACCOUNT, display or key, team, email, role_arn, role_id, session))
        self.conn.commit()
        return key

    def sso(self, user: str, **kw: Any) -> str:
        return self.person(f"sso:{user.lower()}", IdentityType.SSO_USER, role_arn=SSO_ROLE_ARN, role_id=SSO_ROLE_ID,
                           session=user, **kw)

    def counted(self, team: str, *keys: str, period: str = DAY) -> None:
        """People counted in a team in a period, as the consumer's counting script records them."""
        self.redis.sadd(Keys("test").members(team, period), *keys)

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            rows = list(cur.fetchall())
        self.conn.commit()
        return rows


@pytest.fixture
def world(mysql: pymysql.connections.Connection, redis_client: redis.Redis, iam: Any) -> Iterator[World]:
    w = World(mysql, redis_client, iam)
    yield w
    for rt in w.made:
        rt.close()


def exceeded(subject: str, *, scope: Scope = Scope.USER, quota: Quota = Quota.DAILY_REQUESTS, usage: int = 10,
             limit: int = 10, team: str = "research", kind: Kind = Kind.EXCEEDED, percent: int = 100,
             period: str | None = None) -> Decision:
    return Decision(kind, scope, subject, quota,
                    period or (MONTH if quota.monthly else DAY), percent, usage, limit,
                    f"evt-{subject}-{percent}", NOW.isoformat(), subject, team)


def attached_users(iam: Any, policy_arn: str) -> set[str]:
    return {u["UserName"] for u in iam.list_entities_for_policy(PolicyArn=policy_arn)["PolicyUsers"]}


def pool_documents(iam: Any, rt: EnforcerParts) -> list[dict[str, Any]]:
    assert rt.iam is not None
    docs = []
    for arn in rt.iam.pool_policy_arns:
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        docs.append(json.loads(doc) if isinstance(doc, str) else doc)
    return docs


def pool_values(iam: Any, rt: EnforcerParts) -> list[list[str]]:
    return [d["Statement"][0]["Condition"]["StringLike"]["aws:userid"] for d in pool_documents(iam, rt)]


Clock = Callable[[], datetime]


# -- an admin running bedrockctl's provisioning commands --------------------------------------------------------


@pytest.fixture
def admin_shell(moto_iam: Any, mysql: pymysql.connections.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment an admin's bedrockctl runs in: the test stores and moto's IAM."""
    for name, value in _env().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def admin_cli(admin_shell: None, capsys: pytest.CaptureFixture[str]) -> Cli:
    """bedrockctl as the admin runs it (parsed, settings from the environment), its output captured."""
    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def stand_in_parts(admin_shell: None, moto_iam: Any) -> Iterator[tuple[Parts, MotoLacksServiceCredentials]]:
    """Provisioning's parts holding the stand-in for the service-specific credential API moto lacks."""
    credentials = MotoLacksServiceCredentials(moto_iam)
    made = assemble(ProvisioningSettings.from_env(_env()), credentials=IamServiceCredentials(credentials))
    yield made, credentials
    made.close()
