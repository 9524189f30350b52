"""counters.lua on real Redis: dedupe, crossings, limits from the Redis cache, crash safety, reloads."""

from __future__ import annotations

import itertools

import pytest
import redis

from bedrock_usage.keys import Keys
from bedrock_usage.quota import Kind, Limits, Scope, crossed
from bedrock_usage.redis_state import RedisState
from consumer.counters import Counters, Group, event_argument, event_hash

KEYS = Keys("test")
FAR_FUTURE = 4_102_444_800  # 2100-01-01: expiry is not what these tests are about


def counters(client: redis.Redis, daily: int | None = 10, monthly: int | None = 100,
             percents: tuple[int, ...] = (60, 85)) -> Counters:
    return Counters(client, KEYS, user_defaults=Limits(daily, monthly), team_defaults=Limits(None, 50),
                    warning_percents=percents, stream_maxlen=10_000)


def group(events: range | list[int], *, scope: Scope = Scope.USER, subject: str = "arn:aws:iam::1:user/a",
          counted: bool = True, day: str = "2026-11-25", decide: bool = True) -> Group:
    return Group(scope, subject, "team-a", day, day[:7], FAR_FUTURE, decide, decide,
                 [event_argument(f"event-{i}", "2026-11-25T10:00:00+00:00", "arn:aws:iam::1:user/a", counted)
                  for i in events])


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
    assert c.count([group(range(30))]).pending == []


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
    result = counters(redis_client, daily=limit, monthly=None, percents=percents).count([group(range(limit + 3))])
    by_script = sorted((p.decision.percent, p.decision.usage) for p in result.pending)
    by_python = sorted(
        (pct, after) for before, after in itertools.pairwise(range(limit + 4))
        for pct in crossed(before, after, limit, percents))
    assert by_script == by_python


def test_subjects_with_braces_stay_in_their_own_hash_tag() -> None:
    assert KEYS.counter(Scope.TEAM, "a}b{c", "2026-11") == "test:{t:a%7Db%7Bc}:c:2026-11"
