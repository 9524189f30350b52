"""Application inference profiles on real MariaDB: answers shared through `inference_profiles` by every
process, reused for their max age, failures recorded or raised as transient. Bedrock's GetInferenceProfile is
served by a botocore Stubber on real clients (moto has no inference profiles); a call nobody stubbed fails
the test, so "no call was made" is checked, not assumed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pymysql
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.pricing.profiles import InferenceProfiles, ProfileLookupUnavailable
from bedrock_usage.pricing.rates import PriceScope
from devtools.settings import AllSettings
from tests.pricing_stubs import fake_credentials, profile_answer, stub_client

GLOBAL = profile_answer("application-global")
GEO = profile_answer("application-geo")
SINGLE = profile_answer("application-single-region")
T0 = datetime(2025, 11, 3, 9, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Bedrock:
    """One real "bedrock" client per Region, each with its own Stubber, as `InferenceProfiles` asks for them."""

    def __init__(self) -> None:
        self.clients: dict[str, Any] = {}
        self.stubbers: dict[str, Stubber] = {}

    def __call__(self, region: str) -> Any:
        return self.clients[region]

    def stub(self, region: str) -> Stubber:
        if region not in self.stubbers:
            self.clients[region] = stub_client("bedrock", region)
            self.stubbers[region] = Stubber(self.clients[region])
            self.stubbers[region].activate()
        return self.stubbers[region]

    def answers(self, answer: dict[str, Any]) -> None:
        arn = answer["inferenceProfileArn"]
        self.stub(arn.split(":")[3]).add_response("get_inference_profile", answer,
                                                  {"inferenceProfileIdentifier": arn})

    def fails(self, arn: str, code: str, status: int = 400) -> None:
        self.stub(arn.split(":")[3]).add_client_error("get_inference_profile", code, f"{code} for {arn}",
                                                      http_status_code=status,
                                                      expected_params={"inferenceProfileIdentifier": arn})

    def all_asked(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


@pytest.fixture
def conn(mysql: pymysql.connections.Connection, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        pymysql.connections.Connection]:
    fake_credentials(monkeypatch)
    with mysql.cursor() as cur:
        cur.execute("DELETE FROM inference_profiles")
    mysql.commit()
    yield mysql


@pytest.fixture
def world(conn: pymysql.connections.Connection, schema: AllSettings) -> Iterator[tuple[Bedrock, Clock, list[Any]]]:
    bedrock, clock, made = Bedrock(), Clock(), []
    yield bedrock, clock, made
    for profiles in made:
        profiles.close()


def profiles_of(world: tuple[Bedrock, Clock, list[Any]], schema: AllSettings, **kwargs: Any) -> InferenceProfiles:
    bedrock, clock, made = world
    profiles = InferenceProfiles(MySQLSession(schema.mysql), bedrock, max_age_seconds=3600, clock=clock, **kwargs)
    made.append(profiles)
    return profiles


def stored(conn: pymysql.connections.Connection) -> dict[str, tuple[Any, ...]]:
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute("SELECT arn, model, scope, error, resolved_at FROM inference_profiles")
        return {row[0]: row[1:] for row in cur.fetchall()}


def test_profiles_resolve_to_their_model_and_scope_and_are_recorded(
        world: tuple[Bedrock, Clock, list[Any]], schema: AllSettings, conn: pymysql.connections.Connection) -> None:
    bedrock, _, _ = world
    for answer in (GLOBAL, GEO, SINGLE):
        bedrock.answers(answer)
    found = profiles_of(world, schema).resolve_many(
        [GLOBAL["inferenceProfileArn"], GEO["inferenceProfileArn"], SINGLE["inferenceProfileArn"]])
    bedrock.all_asked()
    assert {arn: (p.model, p.scope) for arn, p in found.items()} == {
        GLOBAL["inferenceProfileArn"]: ("anthropic.claude-sonnet-4-5-20250929-v1:0", PriceScope.GLOBAL),
        # "Global" in the description is the owner's text: a US profile bills at the regional rate
        GEO["inferenceProfileArn"]: ("anthropic.claude-3-5-haiku-20241022-v1:0", PriceScope.REGIONAL),
        SINGLE["inferenceProfileArn"]: ("amazon.nova-pro-v1:0", PriceScope.REGIONAL),
    }
    assert stored(conn)[GLOBAL["inferenceProfileArn"]] == (
        "anthropic.claude-sonnet-4-5-20250929-v1:0", "global", None, T0.replace(tzinfo=None))


def test_an_answer_is_shared_by_other_processes_and_reused_until_its_max_age(
        world: tuple[Bedrock, Clock, list[Any]], schema: AllSettings) -> None:
    bedrock, clock, _ = world
    arn = GLOBAL["inferenceProfileArn"]
    bedrock.answers(GLOBAL)
    first = profiles_of(world, schema)
    assert first.resolve(arn).model == "anthropic.claude-sonnet-4-5-20250929-v1:0"
    clock.now = T0 + timedelta(minutes=59)
    assert first.resolve(arn).resolved  # from memory: no call stubbed, none made
    other = profiles_of(world, schema)  # another process (or a restart): MySQL has the answer
    assert other.resolve(arn).scope is PriceScope.GLOBAL
    bedrock.all_asked()

    clock.now = T0 + timedelta(minutes=61)  # past the max age: asked again, and the new answer recorded
    bedrock.answers(GLOBAL)
    again = other.resolve(arn)
    bedrock.all_asked()
    assert again.resolved_at == clock.now
    assert profiles_of(world, schema).resolve(arn).resolved_at == clock.now


def test_access_denied_and_not_found_are_recorded_unresolved_and_asked_again_later(
        world: tuple[Bedrock, Clock, list[Any]], schema: AllSettings, conn: pymysql.connections.Connection) -> None:
    bedrock, clock, _ = world
    denied = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/deny0000000a"
    gone = "arn:aws:bedrock:eu-west-1:111122223333:application-inference-profile/gone0000000b"
    bedrock.fails(denied, "AccessDeniedException", 403)
    bedrock.fails(gone, "ResourceNotFoundException", 404)
    profiles = profiles_of(world, schema, failure_max_age_seconds=600)
    found = profiles.resolve_many([denied, gone])
    bedrock.all_asked()
    assert not found[denied].resolved and found[denied].scope is PriceScope.REGIONAL
    assert found[denied].error is not None and found[denied].error.startswith("AccessDeniedException: ")
    assert found[gone].error is not None and found[gone].error.startswith("ResourceNotFoundException: ")
    model, scope, error, _ = stored(conn)[denied]
    assert (model, scope) == (None, None) and error.startswith("AccessDeniedException")

    clock.now = T0 + timedelta(minutes=9)
    assert not profiles_of(world, schema).resolve(denied).resolved  # the recorded failure, no call
    clock.now = T0 + timedelta(minutes=11)  # the policy was fixed meanwhile
    bedrock.answers({**GLOBAL, "inferenceProfileArn": denied})
    assert profiles.resolve(denied).model == "anthropic.claude-sonnet-4-5-20250929-v1:0"
    bedrock.all_asked()
    assert stored(conn)[denied][2] is None


def test_throttling_is_transient_records_nothing_and_keeps_the_others_answers(
        world: tuple[Bedrock, Clock, list[Any]], schema: AllSettings, conn: pymysql.connections.Connection) -> None:
    bedrock, _, _ = world
    throttled = "arn:aws:bedrock:us-west-2:111122223333:application-inference-profile/slow0000000c"
    bedrock.fails(throttled, "ThrottlingException")
    bedrock.answers(SINGLE)
    profiles = profiles_of(world, schema)
    with pytest.raises(ProfileLookupUnavailable) as raised:
        profiles.resolve_many([throttled, SINGLE["inferenceProfileArn"]])
    bedrock.all_asked()
    assert raised.value.arns == [throttled] and "ThrottlingException" in str(raised.value)
    assert set(stored(conn)) == {SINGLE["inferenceProfileArn"]}
    # the retry asks only for what failed
    bedrock.answers({**GEO, "inferenceProfileArn": throttled})
    found = profiles.resolve_many([throttled, SINGLE["inferenceProfileArn"]])
    bedrock.all_asked()
    assert found[throttled].model == "anthropic.claude-3-5-haiku-20241022-v1:0" and found[
        SINGLE["inferenceProfileArn"]].model == "amazon.nova-pro-v1:0"


def test_an_unreachable_endpoint_is_transient(world: tuple[Bedrock, Clock, list[Any]], schema: AllSettings,
                                              conn: pymysql.connections.Connection) -> None:
    arn = "arn:aws:bedrock:ap-south-1:111122223333:application-inference-profile/down0000000d"
    client = stub_client("bedrock", "ap-south-1", endpoint_url="http://127.0.0.1:9",
                          config=Config(retries={"total_max_attempts": 1}, connect_timeout=1))
    profiles = InferenceProfiles(MySQLSession(schema.mysql), lambda region: client, max_age_seconds=3600)
    world[2].append(profiles)
    with pytest.raises(ProfileLookupUnavailable, match="EndpointConnectionError"):
        profiles.resolve(arn)
    assert stored(conn) == {}


def test_built_from_settings_it_uses_the_max_age_setting(schema: AllSettings, conn: pymysql.connections.Connection,
                                                       world: tuple[Bedrock, Clock, list[Any]]) -> None:
    settings = AllSettings.from_env({"MYSQL_URL": schema.mysql_url, "INFERENCE_PROFILE_MAX_AGE_SECONDS": "120"})
    profiles = InferenceProfiles.from_settings(settings, max_age_seconds=settings.inference_profile_max_age_seconds)
    world[2].append(profiles)
    with conn.cursor() as cur:  # another process's answer, 100 s old: reused without asking AWS
        cur.execute("INSERT INTO inference_profiles VALUES (%s, 'amazon.nova-pro-v1:0', 'regional', NULL, %s)",
                    (SINGLE["inferenceProfileArn"], datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=100)))
    conn.commit()
    assert profiles.resolve(SINGLE["inferenceProfileArn"]).model == "amazon.nova-pro-v1:0"
    assert profiles._max_age == timedelta(seconds=120)


def test_what_is_not_an_application_profile_arn_is_unresolved_without_asking(
        world: tuple[Bedrock, Clock, list[Any]], schema: AllSettings, conn: pymysql.connections.Connection) -> None:
    for junk in ("us.anthropic.claude-3-5-haiku-20241022-v1:0",
                 "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.amazon.nova-pro-v1:0"):
        answer = profiles_of(world, schema).resolve(junk)
        assert not answer.resolved and answer.error == "not an application-inference-profile ARN"
    assert stored(conn) == {}


def test_a_profile_over_several_models_is_not_guessed(world: tuple[Bedrock, Clock, list[Any]],
                                                       schema: AllSettings) -> None:
    bedrock, _, _ = world
    mixed = {**SINGLE, "models": [{"modelArn": "arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-pro-v1:0"},
                                  {"modelArn": "arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-lite-v1:0"}]}
    bedrock.answers(mixed)
    answer = profiles_of(world, schema).resolve(SINGLE["inferenceProfileArn"])
    assert not answer.resolved and answer.error == (
        "profile does not name one foundation model: amazon.nova-lite-v1:0, amazon.nova-pro-v1:0")
