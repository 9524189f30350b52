"""Cost quotas through the enforcer (IAM on moto), the reconciler and the notifier (SES on moto): a cost
decision blocks until the period's end and the person's email shows the dollars in their language; when
several quotas are used up, the block that stands is the one named."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.ses.models import ses_backends
from prometheus_client import CollectorRegistry

from bedrock_usage.identity import IdentityType
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Kind, Quota, Scope
from devtools.settings import AllSettings
from enforcement.main import Loop
from enforcement.model import Outcome
from notifier.assembly import NotifierParts, assemble_notifier
from tests.aws.conftest import ACCOUNT, World, attached_users, exceeded, user_arn
from tests.conftest import DAY, MONTH
from tests.conftest import test_env as _env

USD = 10**9


@pytest.fixture
def notifier(world: World) -> Iterator[NotifierParts]:
    boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress="bedrock-usage@example.com")
    settings = AllSettings.from_env(_env(DAILY_SUMMARY_HOUR="", EMAIL_BACKEND="ses"))
    parts = assemble_notifier(settings, registry=CollectorRegistry(), clock=lambda: datetime.now(UTC))
    yield parts
    parts.close()


def emails(parts: NotifierParts) -> dict[str, Any]:
    parts.notifier.plan()
    parts.notifier.deliver(limit=100)
    return {m.destinations["ToAddresses"][0]: m for m in ses_backends[ACCOUNT]["us-east-1"].sent_messages}


def spent(world: World, key: str, today: int, month: int, scope: Scope = Scope.USER) -> None:
    """The cost counters as the counting script leaves them (nano-dollars)."""
    keys = Keys("test")
    world.redis.hset(keys.counter(scope, key, DAY), mapping={"req": 1, "cost": today})
    world.redis.hset(keys.counter(scope, key, MONTH), mapping={"req": 1, "cost": month})


def test_a_daily_cost_decision_blocks_until_midnight_and_the_email_shows_dollars_in_en_and_es(
    world: World, notifier: NotifierParts,
) -> None:
    parts = world.parts()
    ana = world.person(user_arn("ana"), IdentityType.IAM_USER, display="Ana", email="ana@example.com")
    leo = world.person(user_arn("leo"), IdentityType.IAM_USER, display="Leo", email="leo@example.com")
    world.rows("UPDATE principals SET language = 'es' WHERE quota_key = %s", leo)

    (warned,) = parts.decisions.handle(exceeded(ana, quota=Quota.DAILY_COST, kind=Kind.WARNING, percent=85,
                                            usage=41_200_000_000, limit=50 * USD))
    (blocked,) = parts.decisions.handle(exceeded(ana, quota=Quota.DAILY_COST, usage=50_004_000_000, limit=50 * USD))
    parts.decisions.handle(exceeded(leo, quota=Quota.DAILY_COST, usage=52 * USD, limit=50 * USD))

    assert warned.outcome is Outcome.NOTIFIED and blocked.outcome is Outcome.APPLIED
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"ana", "leo"}
    assert blocked.blocked_until is not None
    local = blocked.blocked_until.astimezone(parts.enforcer.settings.quota_timezone)
    assert (local.hour, local.minute) == (0, 0) and local.date() == datetime.fromisoformat(DAY).date() + timedelta(1)
    (status,) = parts.status.rows(ana)
    assert (status["quota"], status["reason"]) == ("daily_cost", "daily cost quota exceeded: $50.00 of $50.00")
    # Audit rows and notifications carry nano-dollars (BIGINT columns).
    assert world.rows("SELECT action, usage_count, limit_count FROM enforcement_actions WHERE principal = %s"
                      " ORDER BY id", ana) == [("warn", 41_200_000_000, 50 * USD), ("block", 50_004_000_000, 50 * USD)]
    assert world.rows("SELECT kind, quota, usage_count, limit_count FROM notifications WHERE principal = %s"
                      " ORDER BY id", ana) == [("warning", "daily_cost", 41_200_000_000, 50 * USD),
                                               ("blocked", "daily_cost", 50_004_000_000, 50 * USD)]

    sent = emails(notifier)
    ana_mail = [m for m in ses_backends[ACCOUNT]["us-east-1"].sent_messages
                if m.destinations["ToAddresses"] == ["ana@example.com"]]
    assert sorted(m.subject for m in ana_mail) == ["Bedrock paused: daily cost quota used up",
                                                   "Bedrock: 85% of your daily cost quota used"]
    assert any("you have used $41.20 of $50.00 of your daily cost quota" in m.body for m in ana_mail)
    assert any("you have used up your daily cost quota: $50.00 of $50.00" in m.body for m in ana_mail)
    leo_mail = sent["leo@example.com"]
    assert leo_mail.subject == "Bedrock en pausa: cuota de coste diario agotada"
    assert "has agotado tu cuota de coste diario: $52.00 de $50.00" in leo_mail.body

    world.now = blocked.blocked_until + timedelta(seconds=1)  # the daily reset lifts it
    lifted = {r.principal: r.outcome for r in parts.enforcer.expire_due()}
    assert lifted == {ana: Outcome.APPLIED, leo: Outcome.APPLIED}
    assert "tu cuota de coste diario se ha reiniciado" in emails(notifier)["leo@example.com"].body


def test_a_team_over_its_monthly_cost_blocks_its_members_until_the_first(world: World) -> None:
    parts = world.parts()
    people = [world.person(user_arn(n), IdentityType.IAM_USER) for n in ("t1", "t2")]
    world.counted("research", *people, period=MONTH)
    results = parts.decisions.handle(exceeded("research", scope=Scope.TEAM, quota=Quota.MONTHLY_COST,
                                          usage=1001 * USD, limit=1000 * USD))
    assert {r.outcome for r in results} == {Outcome.APPLIED} and len(results) == 2
    local = (results[0].blocked_until or world.now).astimezone(parts.enforcer.settings.quota_timezone)
    assert (local.day, local.hour) == (1, 0)
    (team_note,) = world.rows("SELECT usage_count, limit_count, reason FROM notifications WHERE kind = 'team_blocked'")
    assert team_note == (1001 * USD, 1000 * USD, "team research exceeded its monthly cost quota: $1,001.00 of"
                                                 " $1,000.00; Bedrock paused for the 2 people counted in it")


def test_of_several_quotas_used_up_by_one_call_the_longest_block_is_named_once(
    world: World, notifier: NotifierParts,
) -> None:
    # The loop's reconciler runs too: limits and counters agree with the decisions.
    parts = world.parts(DEFAULT_DAILY_COST_LIMIT_USD="50", DEFAULT_MONTHLY_COST_LIMIT_USD="60")
    rita = world.person(user_arn("rita"), IdentityType.IAM_USER, email="rita@example.com")
    spent(world, rita, 60 * USD, 60 * USD)
    parts.stream.ensure_group()
    # One dear call crosses the daily and the monthly cost quota (and a warning): published in that order.
    for decision in (exceeded(rita, quota=Quota.DAILY_COST, usage=60 * USD, limit=50 * USD),
                     exceeded(rita, quota=Quota.MONTHLY_COST, kind=Kind.WARNING, percent=85, usage=60 * USD,
                              limit=60 * USD),
                     exceeded(rita, quota=Quota.MONTHLY_COST, usage=60 * USD, limit=60 * USD)):
        world.redis.xadd(Keys("test").decisions, decision.to_fields())  # type: ignore[arg-type]

    assert Loop(parts, parts.enforcer.settings).once() == 3

    (status,) = parts.status.rows(rita)
    assert (status["quota"], status["reason"]) == ("monthly_cost", "monthly cost quota exceeded: $60.00 of $60.00")
    local = datetime.fromisoformat(str(status["blocked_until"])).astimezone(parts.enforcer.settings.quota_timezone)
    assert (local.day, local.hour) == (1, 0)
    assert world.rows("SELECT kind, quota FROM notifications WHERE principal = %s", rita) == [
        ("blocked", "monthly_cost")]  # one message, the block that stands (the warning is superseded)
    mail = emails(notifier)["rita@example.com"]
    assert mail.subject == "Bedrock paused: monthly cost quota used up" and "$60.00 of $60.00" in mail.body


def test_for_the_same_period_cost_is_named_before_requests_whatever_the_order(world: World) -> None:
    parts = world.parts()
    first, second = (world.person(user_arn(n), IdentityType.IAM_USER) for n in ("ord1", "ord2"))
    requests = {"quota": Quota.DAILY_REQUESTS, "usage": 10, "limit": 10}
    cost = {"quota": Quota.DAILY_COST, "usage": 50 * USD, "limit": 50 * USD}
    for key, order in ((first, (requests, cost)), (second, (cost, requests))):
        for fields in order:
            parts.decisions.handle(exceeded(key, **fields))  # type: ignore[arg-type]
    for key in (first, second):
        (status,) = parts.status.rows(key)
        assert (status["quota"], status["reason"]) == ("daily_cost", "daily cost quota exceeded: $50.00 of $50.00")
    # The second's request decision found the cost block standing: its message is the cost block's, queued once.
    assert world.rows("SELECT quota FROM notifications WHERE principal = %s", second) == [("daily_cost",)]


def test_the_reconciler_blocks_a_missed_cost_quota_naming_the_longest_and_lifts_when_raised(world: World) -> None:
    parts = world.parts(DEFAULT_DAILY_COST_LIMIT_USD="5", DEFAULT_MONTHLY_COST_LIMIT_USD="20")
    over_both = world.person(user_arn("both"), IdentityType.IAM_USER, email="both@example.com")
    over_day = world.person(user_arn("day"), IdentityType.IAM_USER)
    under = world.person(user_arn("under"), IdentityType.IAM_USER)
    spent(world, over_both, 6 * USD, 21 * USD)
    spent(world, over_day, 5 * USD, 5 * USD)  # exactly the daily limit: used up
    spent(world, under, 4_990_000_000, 19 * USD)

    report = parts.reconciler.run_once()

    assert report.missed == 2
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"both", "day"}
    statuses = {s["principal"]: s for s in parts.status.rows()}
    assert statuses[over_both]["quota"] == "monthly_cost" and statuses[over_day]["quota"] == "daily_cost"
    assert statuses[over_both]["reason"] == ("over its own monthly_cost quota ($21.00 of $20.00) with no block:"
                                             " a missed decision")
    assert world.rows("SELECT usage_count, limit_count FROM blocks WHERE principal = %s", over_day) == [
        (5 * USD, 5 * USD)]
    assert parts.reconciler.run_once().missed == 0

    # An admin raises the daily cost limit above the day's spend: the reconciler lifts that block only.
    world.rows("INSERT INTO principals (quota_key, identity_type, daily_cost_limit_usd) VALUES (%s, 'iam_user', 8)"
               " ON DUPLICATE KEY UPDATE daily_cost_limit_usd = VALUES(daily_cost_limit_usd)", over_day)
    report = parts.reconciler.run_once()
    assert report.limit_raised == 1
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"both"}
    assert world.rows("SELECT reason FROM enforcement_actions WHERE principal = %s ORDER BY id DESC LIMIT 1",
                      over_day) == [("limit raised to $8.00",)]


def test_the_reconciler_blocks_a_team_over_its_daily_cost(world: World) -> None:
    parts = world.parts(DEFAULT_TEAM_DAILY_COST_LIMIT_USD="100")
    members = [world.person(user_arn(n), IdentityType.IAM_USER, team="research") for n in ("m1", "m2")]
    world.counted("research", *members)
    spent(world, "research", 100 * USD, 100 * USD, scope=Scope.TEAM)

    report = parts.reconciler.run_once()

    assert report.missed == 2
    assert {(s["principal"], s["quota"]) for s in parts.status.rows()} == {
        (members[0], "daily_cost"), (members[1], "daily_cost")}
