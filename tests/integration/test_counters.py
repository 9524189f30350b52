"""counters.lua on real Redis: dedupe, crossings, limits from the Redis cache, crash safety, reloads."""

from __future__ import annotations

import itertools

import pytest
import redis

from bedrock_usage import redis_marker
from bedrock_usage.keys import Keys
from bedrock_usage.pricing.rates import Tokens
from bedrock_usage.quota import Kind, Limits, Scope, crossed
from bedrock_usage.redis_state import RedisState
from consumer.counters import Counters, Group, event_argument, event_hash, log_argument

KEYS = Keys("test")
FAR_FUTURE = 4_102_444_800  # 2100-01-01: expiry is not what these tests are about


def counters(client: redis.Redis, daily: int | None = 10, monthly: int | None = 100,
             percents: tuple[int, ...] = (60, 85)) -> Counters:
    return marked(client, Counters(client, KEYS, user_defaults=Limits(daily, monthly), team_defaults=Limits(None, 50),
                                   warning_percents=percents, stream_maxlen=10_000, default_team="unassigned"))


def marked(client: redis.Redis, c: Counters) -> Counters:
    """The Redis marker the scripts check (tests/integration/test_redis_marker.py), as a consumer finds it."""
    c.marker = "test-epoch"
    redis_marker.put(client, KEYS, c.marker)
    return c


def group(events: range | list[int], *, scope: Scope = Scope.USER, subject: str = "arn:aws:iam::1:user/a",
          counted: bool = True, day: str = "2026-11-25", decide: bool = True, team: str = "team-a") -> Group:
    return Group(scope, subject, team, day, day[:7], FAR_FUTURE, decide, decide,
                 [event_argument(f"event-{i}", "2026-11-25T10:00:00+00:00", subject, counted)
                  for i in events])


def team_usage(client: redis.Redis, team: str, period: str = "2026-11-25") -> dict[str, int]:
    return RedisState(client, KEYS).usage(Scope.TEAM, team, period)


def test_each_event_is_counted_once_across_calls(redis_client: redis.Redis) -> None:
    c = counters(redis_client)
    first = c.count([group(range(5))])
    again = c.count([group(range(3, 8))])
    assert (first.new, first.duplicates, again.new, again.duplicates) == (5, 0, 3, 2)
    state = RedisState(redis_client, KEYS)
    assert state.usage(Scope.USER, "arn:aws:iam::1:user/a", "2026-11-25") == {"req": 8}
    assert state.usage(Scope.USER, "arn:aws:iam::1:user/a", "2026-11") == {"req": 8}


def test_failed_calls_are_deduplicated_but_use_no_quota(redis_client: redis.Redis) -> None:
    c = counters(redis_client, daily=2)
    result = c.count([group(range(4), counted=False), group(range(4), counted=False)])
    assert (result.new, result.duplicates, result.pending) == (4, 4, [])
    assert RedisState(redis_client, KEYS).usage(Scope.USER, "arn:aws:iam::1:user/a", "2026-11-25") == {"err": 4}


def test_the_dedupe_set_holds_8_byte_integers(redis_client: redis.Redis) -> None:
    counters(redis_client).count([group(range(100))])
    key = KEYS.seen(Scope.USER, "arn:aws:iam::1:user/a", "2026-11-25")
    assert redis_client.object("encoding", key) == b"intset"
    assert redis_client.sismember(key, event_hash("event-42"))


def test_each_threshold_is_decided_once_by_the_event_that_reached_it(redis_client: redis.Redis) -> None:
    c = counters(redis_client, daily=10)
    result = c.count([group(range(12))])
    decisions = [(p.decision.kind, p.decision.percent, p.decision.usage, p.decision.event_id)
                 for p in result.pending]
    assert decisions == [(Kind.WARNING, 60, 6, "event-5"), (Kind.WARNING, 85, 9, "event-8"),
                         (Kind.EXCEEDED, 100, 10, "event-9")]
    c.clear_pending(result.pending)
    assert [p for p in c.count([group(range(30))]).pending if p.scope is Scope.USER] == []


def test_a_crash_before_publishing_returns_the_pending_decisions_again(redis_client: redis.Redis) -> None:
    c = counters(redis_client, daily=2, percents=())
    first = c.count([group(range(3))])
    # The process dies here: nothing published, nothing cleared. The replayed records are duplicates…
    replay = c.count([group(range(3))])
    assert replay.new == 0
    # …but the decision comes back, with the same id, until it is cleared.
    assert [p.decision.decision_id for p in replay.pending] == [p.decision.decision_id for p in first.pending]
    c.publish(replay.pending)
    c.clear_pending(replay.pending)
    assert c.count([group(range(3))]).pending == []


def test_limit_overrides_cached_in_redis_win_over_defaults(redis_client: redis.Redis) -> None:
    RedisState(redis_client, KEYS).set_limit_overrides([(Scope.USER, "arn:aws:iam::1:user/a", Limits(4, None))])
    result = counters(redis_client, daily=100, percents=()).count([group(range(5))])
    assert [(p.decision.limit, p.decision.usage) for p in result.pending] == [(4, 4)]


def test_team_scope_counts_and_decides_its_own_quota(redis_client: redis.Redis) -> None:
    c = counters(redis_client, percents=())
    events = group(range(60), scope=Scope.TEAM, subject="team-a")
    result = c.count([events])
    assert result.new == 0  # new/duplicates report people, each call is in one user group too
    assert [(p.decision.scope, p.decision.quota, p.decision.usage) for p in result.pending] == [
        (Scope.TEAM, "monthly_requests", 50)]
    assert RedisState(redis_client, KEYS).usage(Scope.TEAM, "team-a", "2026-11") == {"req": 60}


def test_periods_no_longer_current_decide_nothing(redis_client: redis.Redis) -> None:
    result = counters(redis_client, daily=2).count([group(range(5), decide=False)])
    assert (result.new, result.pending) == (5, [])


def test_the_script_is_reloaded_after_redis_loses_it(redis_client: redis.Redis) -> None:
    c = counters(redis_client)
    c.count([group(range(2))])
    redis_client.script_flush()
    assert c.count([group(range(2, 4))]).new == 2


def test_keys_expire_with_the_month_they_protect(redis_client: redis.Redis) -> None:
    g = group(range(1))
    g.expire_at = 4_000_000_000
    counters(redis_client).count([g])
    for key in (KEYS.seen(Scope.USER, g.subject, g.day_id), KEYS.counter(Scope.USER, g.subject, g.day_id),
                KEYS.counter(Scope.USER, g.subject, g.month_id)):
        assert redis_client.expiretime(key) == 4_000_000_000


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 10, 33, 100, 250, 251, 5000])
def test_the_script_and_the_python_rules_agree(redis_client: redis.Redis, limit: int) -> None:
    percents = (50, 60, 85, 99)
    redis_client.flushdb()
    result = counters(redis_client, daily=limit, monthly=None, percents=percents).count(
        [group(range(limit + 3), team="unassigned")])
    by_script = sorted((p.decision.percent, p.decision.usage) for p in result.pending)
    by_python = sorted(
        (pct, after) for before, after in itertools.pairwise(range(limit + 4))
        for pct in crossed(before, after, limit, percents))
    assert by_script == by_python


def test_subjects_with_braces_stay_in_their_own_hash_tag() -> None:
    assert KEYS.counter(Scope.TEAM, "a}b{c", "2026-11") == "test:{t:a%7Db%7Bc}:c:2026-11"


# -- charging teams: what a person counted first, under the team they had then -----------------------

PERSON = "arn:aws:iam::1:user/a"


def test_a_persons_new_events_are_handed_to_their_team_and_the_hand_off_removed(redis_client: redis.Redis) -> None:
    c = counters(redis_client)
    result = c.count([group(range(5))])
    assert team_usage(redis_client, "team-a") == {"req": 5}
    assert redis_client.hlen(KEYS.forward(PERSON)) == 1  # until the batch is committed
    c.publish(result.pending)
    c.finish(result)
    assert not redis_client.exists(KEYS.forward(PERSON))
    assert redis_client.smembers(KEYS.members("team-a", "2026-11-25")) == {PERSON.encode()}
    assert redis_client.smembers(KEYS.members("team-a", "2026-11")) == {PERSON.encode()}


def test_a_batch_redone_after_a_team_change_counts_for_no_second_team(redis_client: redis.Redis) -> None:
    c = counters(redis_client)
    first = c.count([group(range(5))])
    c.publish(first.pending)
    c.finish(first)
    # The person moved to team-b (quota file, tag) and the batch is redone (a MySQL retry, a crash…).
    again = c.count([group(range(7), team="team-b")])
    c.publish(again.pending)
    c.finish(again)
    assert team_usage(redis_client, "team-a") == {"req": 5}
    assert team_usage(redis_client, "team-b") == {"req": 2}  # only the two events new for the person
    assert RedisState(redis_client, KEYS).usage(Scope.USER, PERSON, "2026-11-25") == {"req": 7}


def test_a_crash_between_the_person_and_the_team_step_charges_the_team_of_then_once(
    redis_client: redis.Redis,
) -> None:
    c = counters(redis_client)
    # The team step fails (its keys unusable for a moment): the person's step has counted them.
    redis_client.set(KEYS.limits(Scope.TEAM, "team-a"), "not a hash")
    with pytest.raises(redis.exceptions.ResponseError):
        c.count([group(range(5))])
    assert team_usage(redis_client, "team-a") == {}
    redis_client.delete(KEYS.limits(Scope.TEAM, "team-a"))
    # Redone after the person moved to team-b: the events are seen for the person, and what they handed
    # to team-a is counted for team-a — once, however often the team step is repeated.
    for _ in range(2):
        again = c.count([group(range(5), team="team-b")])
    c.publish(again.pending)
    c.finish(again)
    assert team_usage(redis_client, "team-a") == {"req": 5}
    assert team_usage(redis_client, "team-b") == {}
    assert not redis_client.exists(KEYS.forward(PERSON))


def test_events_of_an_unresolved_person_are_held_then_settled_once_with_the_crossing(
    redis_client: redis.Redis,
) -> None:
    c = counters(redis_client, percents=())
    RedisState(redis_client, KEYS).set_limit_overrides([(Scope.TEAM, "team-a", Limits(4, None))])
    held = c.count([group(range(6), team="")], today=("2026-11-25", "2026-11"))
    c.publish(held.pending)
    c.finish(held)
    assert RedisState(redis_client, KEYS).usage(Scope.USER, PERSON, "2026-11-25") == {"req": 6}
    assert team_usage(redis_client, "team-a") == {}
    assert c.held_people() == {PERSON}
    # The team became known: the held events go to it, and its crossing is decided then, once.
    settled = c.count([], settle=[(PERSON, "team-a")], today=("2026-11-25", "2026-11"))
    assert [(p.decision.scope, p.decision.subject, p.decision.usage) for p in settled.pending] == [
        (Scope.TEAM, "team-a", 4)]
    c.publish(settled.pending)
    c.finish(settled)
    c.clear_pending(settled.pending)
    again = c.count([], settle=[(PERSON, "team-a")], today=("2026-11-25", "2026-11"))
    assert again.pending == [] and again.handed == []
    assert team_usage(redis_client, "team-a") == {"req": 6}
    assert c.held_people() == set()
    assert not redis_client.exists(KEYS.hold(PERSON)) and not redis_client.exists(KEYS.forward(PERSON))


def test_held_events_of_an_earlier_day_count_for_the_team_but_decide_nothing(redis_client: redis.Redis) -> None:
    c = counters(redis_client, percents=())
    RedisState(redis_client, KEYS).set_limit_overrides([(Scope.TEAM, "team-a", Limits(2, 3))])
    c.count([group(range(4), team="", day="2026-11-24")])
    settled = c.count([], settle=[(PERSON, "team-a")], today=("2026-11-25", "2026-11"))
    assert [(p.decision.quota, p.decision.usage) for p in settled.pending] == [("monthly_requests", 3)]
    assert team_usage(redis_client, "team-a", "2026-11-24") == {"req": 4}


def test_people_without_a_team_are_counted_under_the_default_team_which_decides_nothing(
    redis_client: redis.Redis,
) -> None:
    c = counters(redis_client, percents=(60,))  # team defaults: 50 a month
    result = c.count([group(range(80), team="unassigned")])
    assert [p.decision.scope for p in result.pending] == [Scope.USER] * 3  # the person's own: 60 %, 100 % …
    assert all(p.decision.scope is Scope.USER for p in result.pending)
    assert team_usage(redis_client, "unassigned", "2026-11") == {"req": 80}


# -- cost ---------------------------------------------------------------------------------------------

USD = 1_000_000_000  # nano-dollars


def cost_counters(client: redis.Redis, daily_cost: int | None = 10 * USD, monthly_cost: int | None = 100 * USD,
                  team_daily_cost: int | None = None) -> Counters:
    return marked(client, Counters(client, KEYS, user_defaults=Limits(None, None, daily_cost, monthly_cost),
                                   team_defaults=Limits(None, None, team_daily_cost, None), warning_percents=(60, 85),
                                   stream_maxlen=10_000, default_team="unassigned"))


def log_group(costs: list[int], *, first: int = 0, subject: str = "arn:aws:iam::1:user/a", team: str = "team-a",
              day: str = "2026-11-25") -> Group:
    events = [log_argument(f"req-{first + i}", "2026-11-25T10:00:00+00:00", subject, cost, Tokens(10, 20, 3, 4, 5))
              for i, cost in enumerate(costs)]
    return Group(Scope.USER, subject, team, day, day[:7], FAR_FUTURE, True, True, events, logs=len(events))


def test_a_log_adds_its_cost_and_tokens_once(redis_client: redis.Redis) -> None:
    c = cost_counters(redis_client)
    first = c.count([log_group([USD // 4, USD // 2])])
    again = c.count([log_group([USD // 4, USD // 2])])  # a duplicate delivery, or a replay
    assert (first.new_logs, again.new_logs, again.duplicate_logs) == (2, 0, 2)
    assert first.new_cost == {"team-a": 3 * USD // 4} and first.new_tokens == [20, 40, 6, 8, 10]
    state = RedisState(redis_client, KEYS)
    expected = {"cost": 3 * USD // 4, "logs": 2, "in": 20, "out": 40, "cr": 6, "cw5": 8, "cw1": 10}
    assert state.usage(Scope.USER, "arn:aws:iam::1:user/a", "2026-11-25") == expected
    assert state.usage(Scope.USER, "arn:aws:iam::1:user/a", "2026-11") == expected
    assert team_usage(redis_client, "team-a") == expected


def test_a_log_and_its_call_share_the_request_id_but_are_counted_apart(redis_client: redis.Redis) -> None:
    c = cost_counters(redis_client)
    call = group([1])
    call.events = [event_argument("req-0", "2026-11-25T10:00:00+00:00", "arn:aws:iam::1:user/a", True)]
    result = c.count([call, log_group([USD])])
    assert (result.new, result.new_logs) == (2, 1)
    usage = RedisState(redis_client, KEYS).usage(Scope.USER, "arn:aws:iam::1:user/a", "2026-11-25")
    assert (usage["req"], usage["cost"]) == (1, USD)


def test_each_cost_threshold_is_decided_once_by_the_log_that_crossed_it(redis_client: redis.Redis) -> None:
    c = cost_counters(redis_client)  # $10 a day: warnings at $6 and $8.50, exceeded at $10
    result = c.count([log_group([4 * USD, 3 * USD, 2 * USD, 2 * USD, 5 * USD])])
    decided = [(p.decision.quota.value, p.decision.percent, p.decision.usage, p.decision.event_id)
               for p in result.pending if p.scope is Scope.USER and p.decision.quota.cost]
    assert decided == [("daily_cost", 60, 7 * USD, "req-1"), ("daily_cost", 85, 9 * USD, "req-2"),
                       ("daily_cost", 100, 11 * USD, "req-3")]
    assert all(p.decision.limit == 10 * USD for p in result.pending)
    c.clear_pending(result.pending)
    assert c.count([log_group([USD] * 3, first=10)]).pending == []


def test_one_dear_call_crosses_every_threshold_it_jumps(redis_client: redis.Redis) -> None:
    result = cost_counters(redis_client).count([log_group([USD, 50 * USD])])
    daily = [p.decision.percent for p in result.pending if p.decision.quota.value == "daily_cost"]
    assert daily == [60, 85, 100]


def test_cost_limits_come_from_the_override_cache_in_nano_dollars(redis_client: redis.Redis) -> None:
    RedisState(redis_client, KEYS).set_limit_overrides(
        [(Scope.USER, "arn:aws:iam::1:user/a", Limits(None, None, daily_cost=2 * USD, monthly_cost=None))])
    result = cost_counters(redis_client).count([log_group([USD, USD])])
    exceeded = [p.decision for p in result.pending if p.decision.kind is Kind.EXCEEDED]
    assert [(d.quota.value, d.usage, d.limit) for d in exceeded] == [("daily_cost", 2 * USD, 2 * USD)]


def test_big_dollar_amounts_keep_every_digit(redis_client: redis.Redis) -> None:
    # $123,456.789012345 in nano-dollars has 15 digits: more than Lua's cjson writes for a number.
    result = cost_counters(redis_client, daily_cost=None, monthly_cost=123_456_789_012_345).count(
        [log_group([123_456_789_012_345])])
    (decision,) = [p.decision for p in result.pending if p.decision.kind is Kind.EXCEEDED]
    assert (decision.usage, decision.limit) == (123_456_789_012_345, 123_456_789_012_345)


def test_a_team_cost_quota_is_decided_from_what_its_people_handed_over(redis_client: redis.Redis) -> None:
    c = cost_counters(redis_client, daily_cost=None, monthly_cost=None, team_daily_cost=5 * USD)
    result = c.count([log_group([3 * USD]), log_group([3 * USD], first=1, subject="arn:aws:iam::1:user/b")],
                     today=("2026-11-25", "2026-11"))
    team = [(p.decision.percent, p.decision.principal) for p in result.pending if p.scope is Scope.TEAM]
    assert team == [(60, "arn:aws:iam::1:user/a"), (85, "arn:aws:iam::1:user/b"), (100, "arn:aws:iam::1:user/b")]
    assert redis_client.smembers(KEYS.members("team-a", "2026-11-25")) == {b"arn:aws:iam::1:user/a",
                                                                           b"arn:aws:iam::1:user/b"}
