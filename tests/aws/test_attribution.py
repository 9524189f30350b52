"""Who pays: the processor core with team lookups on — IAM tags and the Identity Store on moto, real
Redis and MariaDB, production batch sizes and default settings (a bounded wait of 2 s)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import boto3
import orjson
import pymysql
import pytest
import redis
from botocore.exceptions import ClientError

from bedrock_usage import directory_state, limits, quota_file, usage_hourly
from bedrock_usage.directory_state import IdentityCenterRule
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Scope
from bedrock_usage.redis_state import RedisState
from consumer.assembly import ConsumerParts
from devtools.simulate import Person, bedrock_event
from tests.aws.conftest import ACCOUNT
from tests.conftest import DAY, NOW, envelope, records
from tests.integration.test_usage_hourly import ZONE, dirty, expected, summary

STORE = "d-9067f2a1b3"
KEYS = Keys("test")


@pytest.fixture
def org(aws: None, mysql: pymysql.connections.Connection) -> Iterator[Org]:
    yield Org(mysql)
    boto3.DEFAULT_SESSION = None  # drop any fault a test put on the default session


class Org:
    """People in IAM (tagged users) and in Identity Center (users in groups), on moto."""

    def __init__(self, conn: pymysql.connections.Connection) -> None:
        self.conn = conn
        self.iam = boto3.client("iam", region_name="us-east-1")
        self.store = boto3.client("identitystore", region_name="us-east-1")
        self.groups: dict[str, str] = {}

    def iam_user(self, name: str, team: str | None, **tags: str) -> Person:
        if team:
            tags["Team"] = team
        self.iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        return Person(name, sso=False, account=ACCOUNT)

    def sso_user(self, user_name: str, display: str, *groups: str) -> Person:
        user_id = self.store.create_user(
            IdentityStoreId=STORE, UserName=user_name, DisplayName=display,
            Name={"GivenName": display.split(maxsplit=1)[0], "FamilyName": display.rsplit(maxsplit=1)[-1]},
            Emails=[{"Value": user_name, "Type": "work", "Primary": True}])["UserId"]
        for group in groups:
            if group not in self.groups:
                self.groups[group] = self.store.create_group(IdentityStoreId=STORE, DisplayName=group)["GroupId"]
            self.store.create_group_membership(IdentityStoreId=STORE, GroupId=self.groups[group],
                                               MemberId={"UserId": user_id})
        return Person(user_name, sso=True, account=ACCOUNT)

    def identity_center(self, **team_from_groups: str) -> None:
        mapping = tuple(team_from_groups.items()) or (("bedrock-team-*", "{name}"),)
        rule = IdentityCenterRule(STORE, "us-east-1", mapping)
        with self.conn.cursor() as cur:
            directory_state.store_identity_center(cur, rule)
        self.conn.commit()

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            found = list(cur.fetchall())
        self.conn.commit()
        return found


def lookups_on(make_consumer: Callable[..., ConsumerParts], **overrides: str) -> ConsumerParts:
    # The production defaults for lookups: tags on, a 2 s bounded wait.
    return make_consumer(**{"TEAM_TAG_LOOKUP": "true", **overrides})


def redis_day(client: redis.Redis, scope: Scope, subject: str) -> int:
    return RedisState(client, KEYS).usage(scope, subject, DAY).get("req", 0)


def test_new_peoples_first_calls_are_charged_to_their_team_in_the_same_batch(
    org: Org, make_consumer: Callable[..., ConsumerParts], redis_client: redis.Redis,
) -> None:
    org.identity_center()
    ana = org.iam_user("ana", "data-science", Person="Ana García", Email="ana@example.com")
    raj = org.iam_user("raj", "platform")
    lee = org.iam_user("lee", None)
    kim = org.sso_user("kim@example.com", "Kim Lee", "Everyone", "bedrock-team-platform")
    consumer = lookups_on(make_consumer)
    crowd = [ana, raj, lee, kim]
    events = [envelope(crowd[i % 4], NOW - timedelta(seconds=i), seed=i) for i in range(40)]

    result = consumer.processor.process(records(events))

    assert (result.new, result.held) == (40, 0)
    assert redis_day(redis_client, Scope.TEAM, "data-science") == 10
    assert redis_day(redis_client, Scope.TEAM, "platform") == 20  # raj and kim (from the Identity Store)
    assert redis_day(redis_client, Scope.TEAM, "unassigned") == 10  # lee has no Team tag
    assert dict(org.rows("SELECT p.quota_key, c.team FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id"
                         " GROUP BY p.quota_key, c.team")) == {
        ana.quota_key: "data-science", raj.quota_key: "platform", lee.quota_key: "unassigned",
        kim.quota_key: "platform"}
    people = {k: (n, e, s) for k, n, e, s in org.rows(
        "SELECT quota_key, display_name, email, team_source FROM principals")}
    assert people[ana.quota_key] == ("Ana García", "ana@example.com", "iam_tag")
    assert people[kim.quota_key] == ("Kim Lee", "kim@example.com", "identity_center")
    members = redis_client.smembers(KEYS.members("platform", DAY))
    assert members == {raj.quota_key.encode(), kim.quota_key.encode()}


def test_an_identity_center_users_team_comes_from_an_explicit_group_map(
    org: Org, make_consumer: Callable[..., ConsumerParts], redis_client: redis.Redis,
) -> None:
    org.identity_center(**{"Data Scientists": "data-science", "bedrock-team-*": "{name}"})
    zoe = org.sso_user("Zoe@Example.com", "Zoe Park", "bedrock-team-zz", "Data Scientists")
    lookups_on(make_consumer).processor.process(records([envelope(zoe, NOW, seed=1)]))
    # The first pattern in the file that matches wins; her session name keeps its case for the lookup.
    assert redis_day(redis_client, Scope.TEAM, "data-science") == 1
    assert org.rows("SELECT team FROM principals WHERE quota_key = 'sso:zoe@example.com'") == [("data-science",)]


def test_a_backlog_of_20000_calls_by_150_new_people_is_charged_to_their_teams(
    org: Org, make_consumer: Callable[..., ConsumerParts], redis_client: redis.Redis,
) -> None:
    """A first deploy reading from TRIM_HORIZON: every person is new, in batches of 10,000."""
    org.identity_center()
    rng = random.Random(9)
    teams = ["data-science", "platform", "research", "support", "finance"]
    crowd: list[Person] = []
    expected: dict[str, str] = {}
    for i in range(150):
        team = teams[i % 5]
        if i % 3 == 0:
            person = org.sso_user(f"sso{i:03d}@example.com", f"Sso Person{i}", f"bedrock-team-{team}")
        elif i % 10 == 1:
            person, team = org.iam_user(f"iam{i:03d}", None), "unassigned"
        else:
            person = org.iam_user(f"iam{i:03d}", team)
        crowd.append(person)
        expected[person.quota_key] = team
    start = NOW - timedelta(hours=2)
    events = [bedrock_event(rng.choice(crowd), start + timedelta(seconds=i * 0.3), rng) for i in range(20_000)]
    consumer = lookups_on(make_consumer)

    for i in range(0, len(events), 10_000):
        consumer.processor.process(records(events[i:i + 10_000], start=i + 1))

    charged = org.rows("SELECT p.quota_key, c.team, COUNT(*) FROM bedrock_calls c"
                       " JOIN principals p ON p.id = c.principal_id GROUP BY p.quota_key, c.team")
    assert len(charged) == len({key for key, _, _ in charged}) == 150  # one team per person
    assert {str(key): str(team) for key, team, _ in charged} == expected
    for team in [*teams, "unassigned"]:
        members = [k for k, t in expected.items() if t == team]
        assert redis_day(redis_client, Scope.TEAM, team) == sum(
            redis_day(redis_client, Scope.USER, k) for k in members), team
    assert org.rows("SELECT COUNT(*) FROM bedrock_calls WHERE team = ''") == [(0,)]


def test_a_lookup_that_fails_then_succeeds_moves_the_held_calls_and_decides_the_crossing_once(
    org: Org, make_consumer: Callable[..., ConsumerParts], redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ana = org.iam_user("ana", "data-science")
    RedisState(redis_client, KEYS).set_limit_overrides([])
    failures = {"left": 2}

    def deny(**kwargs: Any) -> None:
        if kwargs["params"].get("UserName") == "ana" and failures["left"] > 0:
            failures["left"] -= 1
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "ListUserTags")

    aws_fault("before-parameter-build.iam.ListUserTags", deny)
    consumer = lookups_on(make_consumer, DEFAULT_TEAM_DAILY_REQUEST_LIMIT="5", WARNING_THRESHOLDS="",
                         TEAM_LOOKUP_WAIT_MS="300")

    first = consumer.processor.process(records([envelope(ana, NOW - timedelta(seconds=i), seed=i) for i in range(6)]))
    assert (first.new, first.held) == (6, 6)
    assert redis_day(redis_client, Scope.USER, ana.quota_key) == 6  # counted for her at once
    assert redis_day(redis_client, Scope.TEAM, "data-science") == 0
    assert org.rows("SELECT DISTINCT team FROM bedrock_calls") == [("",)]
    error = org.rows("SELECT lookup_error, resolved_at FROM principals")
    assert "AccessDenied" in error[0][0] and error[0][1] is None

    settled = []
    deadline = time.monotonic() + 20
    while not settled:  # the KCL calls in with empty batches too: the retry and the settlement ride them
        assert time.monotonic() < deadline
        time.sleep(0.2)
        settled = consumer.processor.process([]).settled
    assert settled == [ana.quota_key]
    assert redis_day(redis_client, Scope.TEAM, "data-science") == 6
    assert org.rows("SELECT DISTINCT team FROM bedrock_calls") == [("data-science",)]
    decisions = org.rows("SELECT scope, subject, usage_count FROM decisions WHERE scope = 'team'")
    assert decisions == [("team", "data-science", 5)]
    for _ in range(3):  # nothing moves twice
        consumer.processor.process([])
    assert redis_day(redis_client, Scope.TEAM, "data-science") == 6
    assert len(org.rows("SELECT * FROM decisions WHERE scope = 'team'")) == 1
    assert consumer.metrics.lookup_failures.labels("AccessDenied", "false")._value.get() == 2  # type: ignore[attr-defined]


def test_held_calls_moved_to_their_team_are_moved_in_the_hourly_summary(
    org: Org, make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection,
) -> None:
    ana = org.iam_user("ana", "data-science")
    failures = {"left": 1}

    def deny(**kwargs: Any) -> None:
        if kwargs["params"].get("UserName") == "ana" and failures["left"] > 0:
            failures["left"] -= 1
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "ListUserTags")

    aws_fault("before-parameter-build.iam.ListUserTags", deny)
    consumer = lookups_on(make_consumer, TEAM_LOOKUP_WAIT_MS="300")
    calls = [envelope(ana, NOW - timedelta(minutes=40 * i), seed=i) for i in range(5)]  # over several hours
    assert consumer.processor.process(records(calls)).held == 5
    usage_hourly.refresh_all(mysql, ZONE)
    assert {key[2] for key in summary(mysql)} == {""}  # held: charged to no team yet
    deadline = time.monotonic() + 20
    while not consumer.processor.process([]).settled:  # the settlement rides an empty batch
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # The settlement moved rows of hours it did not write: it marked them.
    assert set(dirty(mysql)) == {usage_hourly.hour_of(NOW - timedelta(minutes=40 * i)) for i in range(5)}
    usage_hourly.refresh_all(mysql, ZONE)
    assert summary(mysql) == expected(mysql)
    assert {key[2] for key in summary(mysql)} == {"data-science"}


def test_a_person_held_by_a_consumer_that_died_is_settled_by_another(
    org: Org, make_consumer: Callable[..., ConsumerParts], redis_client: redis.Redis,
) -> None:
    org.identity_center()
    kim = org.sso_user("kim@example.com", "Kim Lee", "bedrock-team-platform")
    slow_store(0.5)  # the Identity Store answers slower than the first consumer waits
    dying = lookups_on(make_consumer, TEAM_LOOKUP_WAIT_MS="50")
    assert dying.processor.process(records([envelope(kim, NOW, seed=i) for i in range(3)])).held == 3
    dying.close()  # it dies before the answer comes
    survivor = lookups_on(make_consumer)
    survivor.processor.process(records([envelope(kim, NOW, seed=10 + i) for i in range(2)], start=10))
    assert redis_day(redis_client, Scope.TEAM, "platform") == 5
    assert org.rows("SELECT team, COUNT(*) FROM bedrock_calls GROUP BY team") == [("platform", 5)]
    assert not redis_client.exists(KEYS.hold(kim.quota_key))
    # The batch's last Redis step (finish: taking Kim off the held list) runs after process() returns.
    survivor.processor.drain()
    assert not redis_client.exists(KEYS.held)


def slow_store(seconds: float) -> None:
    """The Identity Store's calls take `seconds` (an AWS API fault)."""
    aws_fault("before-call.identitystore.GetUserId", lambda **_: time.sleep(seconds))


def aws_fault(event: str, handler: Callable[..., None]) -> None:
    """A fresh default boto3 session with `handler` on `event`: faults injected into the AWS API the
    clients built from now on call (the `org` fixture drops the session after the test)."""
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register(event, handler)


def test_the_default_team_is_counted_but_never_decides(
    org: Org, make_consumer: Callable[..., ConsumerParts], redis_client: redis.Redis,
) -> None:
    loners = [org.iam_user(f"loner{i}", None) for i in range(3)]
    consumer = lookups_on(make_consumer, DEFAULT_TEAM_DAILY_REQUEST_LIMIT="4", DEFAULT_TEAM_MONTHLY_REQUEST_LIMIT="6")
    result = consumer.processor.process(records([envelope(loners[i % 3], NOW, seed=i) for i in range(9)]))
    assert redis_day(redis_client, Scope.TEAM, "unassigned") == 9
    assert [d for d in result.decisions if d.scope is Scope.TEAM] == []
    assert org.rows("SELECT COUNT(*) FROM decisions WHERE scope = 'team'") == [(0,)]


def test_a_batch_redone_after_a_team_change_counts_each_call_once_for_one_team(
    org: Org, make_consumer: Callable[..., ConsumerParts], redis_client: redis.Redis, tmp_path: Any,
) -> None:
    ana = org.iam_user("ana", "data-science")
    consumer = lookups_on(make_consumer, DIRECTORY_REFRESH_SECONDS="1")
    batch = records([envelope(ana, NOW - timedelta(seconds=i), seed=i) for i in range(5)])
    consumer.processor.process(batch)
    quota = quota_file.parse_quota_file(f'teams: {{platform: {{}}, data-science: {{}}}}\n'
                                    f'users: {{"{ana.quota_key}": {{team: platform}}}}\n',
                                        default_team="unassigned")
    limits.apply(org.conn, RedisState(redis_client, KEYS), quota)
    time.sleep(1.1)
    # The same batch again (a MySQL retry, a lease move), plus one new call.
    again = consumer.processor.process(batch + records([envelope(ana, NOW, seed=99)], start=6))
    assert (again.new, again.duplicates) == (1, 5)
    assert redis_day(redis_client, Scope.TEAM, "data-science") == 5
    assert redis_day(redis_client, Scope.TEAM, "platform") == 1  # from the change on (chargeback)
    assert sorted(org.rows("SELECT team, COUNT(*) FROM bedrock_calls GROUP BY team")) == [
        ("data-science", 5), ("platform", 1)]


def test_calls_in_two_regions_are_counted_once_each(
    org: Org, make_consumer: Callable[..., ConsumerParts], redis_client: redis.Redis,
) -> None:
    ana = org.iam_user("ana", "data-science")
    events = []
    for i, region in enumerate(["us-east-1", "eu-west-1"] * 3):
        event = envelope(ana, NOW - timedelta(seconds=i), seed=i)
        event["region"] = event["detail"]["awsRegion"] = region
        events.append(event)
    consumer = lookups_on(make_consumer)
    # Each region's event reaches the stream once through its own rule; EventBridge may deliver twice.
    result = consumer.processor.process(records(events + events[:2]))
    assert (result.new, result.duplicates) == (6, 2)
    assert redis_day(redis_client, Scope.USER, ana.quota_key) == 6
    assert sorted(org.rows("SELECT region, COUNT(*) FROM bedrock_calls GROUP BY region")) == [
        ("eu-west-1", 3), ("us-east-1", 3)]


def test_every_committed_change_reaches_the_consumer_whatever_the_commit_order(
    org: Org, make_consumer: Callable[..., ConsumerParts], redis_client: redis.Redis,
) -> None:
    """A change stamped before a refresh and committed after it (what an updated_at watermark misses)."""
    ana = org.iam_user("ana", "data-science")
    consumer = lookups_on(make_consumer, DIRECTORY_REFRESH_SECONDS="1")
    consumer.processor.process(records([envelope(ana, NOW, seed=1)]))
    slow = pymysql.connect(host="127.0.0.1", user="root", database=org.conn.db.decode(), autocommit=False)
    with slow.cursor() as cur:
        version = directory_state.next_version(cur)
        cur.execute("UPDATE principals SET team = 'platform', team_source = 'quota_file', version = %s"
                    " WHERE quota_key = %s", (version, ana.quota_key))
    time.sleep(1.1)
    consumer.processor.process(records([envelope(ana, NOW, seed=2)], start=2))  # refreshes: sees nothing yet
    slow.commit()
    slow.close()
    time.sleep(1.1)
    consumer.processor.process(records([envelope(ana, NOW, seed=3)], start=3))
    assert redis_day(redis_client, Scope.TEAM, "platform") == 1
    assert redis_day(redis_client, Scope.TEAM, "data-science") == 2


def test_a_limits_apply_running_while_the_consumer_counts_reaches_it(
    org: Org, make_consumer: Callable[..., ConsumerParts], redis_client: redis.Redis,
) -> None:
    crowd = [org.iam_user(f"p{i:02d}", "tagged") for i in range(20)]
    consumer = lookups_on(make_consumer, DIRECTORY_REFRESH_SECONDS="1")
    stop = threading.Event()
    applied: list[str] = []

    def admin() -> None:  # an admin applying quota files, over and over, while the consumer counts
        conn = pymysql.connect(host="127.0.0.1", user="root", database=org.conn.db.decode())
        state = RedisState(redis.Redis(connection_pool=redis_client.connection_pool), KEYS)
        n = 0
        while not stop.is_set():
            team = f"team-{n % 3}"
            users = ", ".join(f'"{p.quota_key}": {{team: {team}}}' for p in crowd)
            limits.apply(conn, state, quota_file.parse_quota_file(
                f"teams: {{team-0: {{}}, team-1: {{}}, team-2: {{}}}}\nusers: {{{users}}}\n",
                default_team="unassigned"))
            applied.append(team)
            n += 1
        conn.close()

    thread = threading.Thread(target=admin)
    thread.start()
    rng = random.Random(3)
    try:
        for n in range(30):
            consumer.processor.process(records([bedrock_event(rng.choice(crowd), NOW, rng) for _ in range(50)],
                                              start=1 + 50 * n))
    finally:
        stop.set()
        thread.join()
    assert len(applied) > 3
    time.sleep(1.1)  # one refresh interval after the last change
    last = records([bedrock_event(p, NOW, rng) for p in crowd], start=10_000)
    assert consumer.processor.process(last).new == 20
    ids = [orjson.loads(r.data)["detail"]["eventID"] for r in last]
    assert org.rows("SELECT DISTINCT team FROM bedrock_calls WHERE event_id IN ("
                    + ",".join(["%s"] * len(ids)) + ")", *ids) == [(applied[-1],)]
    # Every call is charged to one team, once: the teams add up to the people.
    total_teams = sum(redis_day(redis_client, Scope.TEAM, t) for t in ("tagged", "team-0", "team-1", "team-2"))
    assert total_teams == sum(redis_day(redis_client, Scope.USER, p.quota_key) for p in crowd) == 1520


def fail_commits(conn: pymysql.connections.Connection, on: bool) -> None:
    """A fault in MySQL (not in our code): while on, recording a decision fails, so the batch's commit
    fails after Redis has counted it."""
    with conn.cursor() as cur:
        cur.execute("DROP TRIGGER IF EXISTS test_fail_commit")
        if on:
            cur.execute("CREATE TRIGGER test_fail_commit BEFORE INSERT ON decisions FOR EACH ROW"
                        " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected: the commit fails'")
    conn.commit()


def test_a_batch_redone_after_a_failed_commit_and_a_team_change_keeps_rows_and_decisions_with_redis(
    org: Org, make_consumer: Callable[..., ConsumerParts], redis_client: redis.Redis,
) -> None:
    ana = org.iam_user("ana", "data-science")
    consumer = lookups_on(make_consumer, DIRECTORY_REFRESH_SECONDS="1", DEFAULT_TEAM_DAILY_REQUEST_LIMIT="4",
                         WARNING_THRESHOLDS="")
    batch = records([envelope(ana, NOW - timedelta(seconds=i), seed=i) for i in range(5)])
    fail_commits(org.conn, True)
    try:
        with pytest.raises(pymysql.err.MySQLError):
            consumer.processor.process(batch)  # counted in Redis (data-science crossed 4), not committed
    finally:
        fail_commits(org.conn, False)
    consumer.reset_connections()
    quota = quota_file.parse_quota_file(f'teams: {{platform: {{}}, data-science: {{}}}}\n'
                                        f'users: {{"{ana.quota_key}": {{team: platform}}}}\n',
                                        default_team="unassigned")
    limits.apply(org.conn, RedisState(redis_client, KEYS), quota)
    time.sleep(1.1)
    consumer.processor.process(batch)  # the redo, with Ana in platform now
    # Redis charged data-science when it first counted them: the rows say so too, and its crossing is
    # recorded although the first attempt never committed it.
    assert redis_day(redis_client, Scope.TEAM, "data-science") == 5
    assert redis_day(redis_client, Scope.TEAM, "platform") == 0
    assert org.rows("SELECT team, COUNT(*) FROM bedrock_calls GROUP BY team") == [("data-science", 5)]
    assert org.rows("SELECT subject, usage_count FROM decisions WHERE scope = 'team'") == [("data-science", 4)]
    consumer.processor.drain()  # the forward is removed by the batch's last Redis step, after process() returns
    assert not redis_client.exists(KEYS.forward(ana.quota_key))  # removed once committed


def test_a_tag_longer_than_a_team_name_is_cut_not_a_stuck_consumer(
    org: Org, make_consumer: Callable[..., ConsumerParts], redis_client: redis.Redis,
) -> None:
    raj = org.iam_user("raj", "t" * 256, Person="R" * 256)  # IAM allows 256 characters a tag value
    result = lookups_on(make_consumer).processor.process(records([envelope(raj, NOW, seed=1)]))
    assert result.held == 0
    assert org.rows("SELECT team, CHAR_LENGTH(display_name) FROM principals") == [("t" * 128, 255)]


def test_a_person_given_a_team_by_the_quota_file_while_their_lookup_fails_is_settled(
    org: Org, make_consumer: Callable[..., ConsumerParts], redis_client: redis.Redis,
) -> None:
    ana = org.iam_user("ana", "data-science")

    def deny(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "ListUserTags")

    aws_fault("before-parameter-build.iam.ListUserTags", deny)
    consumer = lookups_on(make_consumer, DIRECTORY_REFRESH_SECONDS="1", TEAM_LOOKUP_WAIT_MS="200")
    assert consumer.processor.process(records([envelope(ana, NOW, seed=i) for i in range(3)])).held == 3
    # The admin fixes it in the quota file while the lookup keeps failing.
    text = f'teams: {{platform: {{}}}}\nusers: {{"{ana.quota_key}": {{team: platform}}}}\n'
    quota = quota_file.parse_quota_file(text, default_team="unassigned")
    limits.apply(org.conn, RedisState(redis_client, KEYS), quota)
    time.sleep(1.5)  # past the refresh and the lookup's first retry
    for _ in range(3):
        consumer.processor.process([])
    assert redis_day(redis_client, Scope.TEAM, "platform") == 3
    assert org.rows("SELECT DISTINCT team FROM bedrock_calls") == [("platform",)]
