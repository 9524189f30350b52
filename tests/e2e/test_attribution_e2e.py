"""Who pays, end to end: a first deploy reading a backlog from TRIM_HORIZON through the real KCL daemon,
with the team lookups on as in production (IAM tags and the Identity Store on the moto server), every
person new. Each call must be charged to its person's team from the first, the teams must add up to
their members, and people without a team must never decide a team block."""

from __future__ import annotations

import random
from datetime import timedelta

import pymysql
import pytest
import redis

from bedrock_usage.directory_state import IdentityCenterRule, store_identity_center
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Scope
from bedrock_usage.redis_state import RedisState
from devtools.simulate import Person, bedrock_event, deliver
from tests.conftest import DAY, NOW
from tests.e2e.conftest import Stack, rows, scalar, wait_until

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"  # moto's: the consumer reads the tags of its own account's people
STORE = "d-90670e2e01"
TEAMS = ("data-science", "platform", "research", "support", "finance")
KEYS = Keys("test")


def test_a_backlog_of_20000_calls_by_150_new_people_is_charged_to_their_teams_from_the_first(
    stack: Stack, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    iam, store = stack.moto.client("iam"), stack.moto.client("identitystore")
    with mysql.cursor() as cur:
        store_identity_center(cur, IdentityCenterRule(STORE, None, (("bedrock-team-*", "{name}"),)))
    mysql.commit()
    groups = {team: store.create_group(IdentityStoreId=STORE, DisplayName=f"bedrock-team-{team}")["GroupId"]
              for team in TEAMS}
    crowd: list[Person] = []
    expected: dict[str, str] = {}
    for i in range(150):
        team = TEAMS[i % len(TEAMS)]
        if i % 3 == 0:  # an Identity Center user: the team from their group
            user = store.create_user(IdentityStoreId=STORE, UserName=f"e2e{i:03d}@example.com",
                                     DisplayName=f"Person {i}", Name={"GivenName": "Person", "FamilyName": str(i)})
            store.create_group_membership(IdentityStoreId=STORE, GroupId=groups[team],
                                          MemberId={"UserId": user["UserId"]})
            person = Person(f"e2e{i:03d}@example.com", sso=True, account=ACCOUNT)
        elif i % 10 == 1:  # no Team tag: no team
            iam.create_user(UserName=f"e2e{i:03d}")
            person, team = Person(f"e2e{i:03d}", sso=False, account=ACCOUNT), "unassigned"
        else:  # an IAM user tagged with their team
            iam.create_user(UserName=f"e2e{i:03d}", Tags=[{"Key": "Team", "Value": team}])
            person = Person(f"e2e{i:03d}", sso=False, account=ACCOUNT)
        crowd.append(person)
        expected[person.quota_key] = team
    rng = random.Random(20_000)
    start = NOW - timedelta(minutes=17)  # all in today's quota day (NOW is kept 20 minutes clear of midnight)
    events = [bedrock_event(rng.choice(crowd), start + timedelta(seconds=i * 0.05), rng) for i in range(20_000)]
    assert deliver(stack.kinesis, stack.stream, events) == 20_000  # the backlog, before the first deploy

    # Production defaults for the lookups (on, 2 s bounded wait); team quotas that every team passes.
    consumer = stack.start(stack.application("attribution"), TEAM_TAG_LOOKUP="true",
                           DEFAULT_TEAM_DAILY_REQUEST_LIMIT="2000")
    wait_until(lambda: scalar(mysql, "SELECT COUNT(*) FROM bedrock_calls"), lambda n: n >= 20_000, timeout=180,
               what="20,000 rows in bedrock_calls", alive=[consumer])
    wait_until(lambda: consumer.metric("bedrock_usage_records_total"), lambda n: n >= 20_000, timeout=60,
               what="20,000 records committed", alive=[consumer])

    charged = rows(mysql, "SELECT p.quota_key, c.team FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id"
                          " GROUP BY p.quota_key, c.team")
    assert {str(k): str(t) for k, t in charged} == expected  # one team per person, the right one
    assert len(charged) == 150
    state = RedisState(redis_client, KEYS)
    for team in (*TEAMS, "unassigned"):
        members = [k for k, t in expected.items() if t == team]
        assert state.usage(Scope.TEAM, team, DAY).get("req", 0) == sum(
            state.usage(Scope.USER, k, DAY).get("req", 0) for k in members), team
        if team != "unassigned":
            assert {m.decode() for m in redis_client.smembers(KEYS.members(team, DAY))} == set(members)
    team_decisions = rows(mysql, "SELECT subject, percent, COUNT(*) FROM decisions WHERE scope = 'team'"
                                 " GROUP BY subject, percent")
    assert {(str(s), int(p), int(n)) for s, p, n in team_decisions} == {
        (team, percent, 1) for team in TEAMS for percent in (60, 85, 100)}  # never for `unassigned`
    assert consumer.events("held") == 0  # everyone resolved within the bounded wait
    assert consumer.stop() == 0
