"""The product on a real Redis Cluster (three masters on local ports, REDIS_CLUSTER=true): counting exact for
people and teams whose keys live on different masters, a lost script and a stale slot map survived, decisions
read by the enforcer's stream reader, usage read by bedrockctl and the notifier, counters rebuilt from MySQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pymysql
import pytest
import redis
from prometheus_client import CollectorRegistry

from bedrock_usage import redis_marker
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Kind, Limits, Scope
from bedrock_usage.redis_marker import RedisForgot
from bedrock_usage.redis_state import RedisState, redis_client
from bedrockctl.main import main
from consumer.assembly import ConsumerParts, assemble_consumer
from devtools.redis_cluster import LocalRedisCluster
from devtools.settings import AllSettings
from devtools.simulate import Person
from enforcement.stream import DecisionStream
from notifier.assembly import assemble_notifier
from tests.conftest import DAY, MONTH, NOW, envelope, records
from tests.conftest import test_env as settings_env

KEYS = Keys("test")
# Enough people for their keys to fall on every master (16,384 slots, three masters).
PEOPLE = [Person(f"person{i:02d}", sso=False) for i in range(24)]
TEAMS = ["research", "platform", "sales"]
QUOTAS = "teams:\n" + "".join(f"  {t}: {{monthly_limit: 1000}}\n" for t in TEAMS) + "users:\n" + "".join(
    f'  "{p.quota_key}": {{team: {TEAMS[i % 3]}}}\n' for i, p in enumerate(PEOPLE))


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRedisCluster]:
    with LocalRedisCluster() as running:
        yield running


@pytest.fixture
def cluster_env(cluster: LocalRedisCluster, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = settings_env(REDIS_URL=cluster.url, REDIS_CLUSTER="true")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def client(cluster: LocalRedisCluster, cluster_env: dict[str, str]) -> Iterator[redis.RedisCluster]:
    made = redis_client(AllSettings.from_env(cluster_env))
    assert isinstance(made, redis.RedisCluster)
    made.flushall()  # every master
    yield made
    made.flushall()
    made.close()


@pytest.fixture
def consumer(
    mysql: pymysql.connections.Connection, client: redis.RedisCluster, cluster_env: dict[str, str],
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> Iterator[Callable[..., ConsumerParts]]:
    (tmp_path / "q.yaml").write_text(QUOTAS)
    assert main(["limits", "apply", str(tmp_path / "q.yaml")]) == 0
    capsys.readouterr()
    made: list[ConsumerParts] = []

    def factory(**overrides: str) -> ConsumerParts:
        parts = assemble_consumer(AllSettings.from_env({**cluster_env, **overrides}), source="test",
                                  registry=CollectorRegistry(), clock=lambda: NOW)
        made.append(parts)
        return parts

    yield factory
    for parts in made:
        parts.close()


def _traffic() -> tuple[list[dict[str, object]], dict[str, int]]:
    """Person i makes i + 1 calls: events, and the calls each person made."""
    events, calls = [], {}
    for i, person in enumerate(PEOPLE):
        for n in range(i + 1):
            events.append(envelope(person, NOW - timedelta(seconds=n), seed=1000 * i + n))
        calls[person.quota_key] = i + 1
    return events, calls


def _masters_holding(client: redis.RedisCluster, pattern: str) -> int:
    return sum(1 for node in client.get_primaries()
               if client.get_redis_connection(node).scan(0, match=pattern, count=10_000)[1])


def test_counting_is_exact_for_people_and_teams_across_masters(
    consumer: Callable[..., ConsumerParts], client: redis.RedisCluster,
) -> None:
    events, calls = _traffic()
    parts = consumer()
    first = parts.processor.process(records(events[::2]))
    second = parts.processor.process(records(events))  # half of them again: duplicates
    assert (first.new + second.new, second.duplicates) == (len(events), len(events[::2]))

    state = RedisState(client, KEYS)
    for person in PEOPLE:
        assert state.usage(Scope.USER, person.quota_key, DAY) == {"req": calls[person.quota_key]}
    for t, team in enumerate(TEAMS):
        expected = sum(n for i, n in enumerate(calls.values()) if i % 3 == t)
        assert state.usage(Scope.TEAM, team, MONTH) == {"req": expected}
    assert _masters_holding(client, "test:{u:*") == 3  # the people's keys are spread over every master
    assert _masters_holding(client, "test:{t:*") >= 2


def test_a_master_that_lost_the_scripts_and_a_stale_slot_map_count_once(
    consumer: Callable[..., ConsumerParts], client: redis.RedisCluster,
) -> None:
    parts = consumer()
    cluster_client = parts.redis
    assert isinstance(cluster_client, redis.RedisCluster)
    parts.processor.process(records([envelope(PEOPLE[0], NOW, seed=1)]))
    client.script_flush()  # every master, as after a failover to a new master
    # The consumer's client believes a slot is served by the wrong master (as after a resharding): that master
    # answers MOVED, and the call is sent again, alone, where it belongs.
    slot = cluster_client.keyslot(KEYS.scope(Scope.USER, PEOPLE[1].quota_key))
    manager = cluster_client.nodes_manager
    right = manager.slots_cache[slot][0]
    wrong = next(n for n in cluster_client.get_primaries() if n.name != right.name)
    manager.slots_cache[slot] = [wrong]

    result = parts.processor.process(records([envelope(p, NOW, seed=2) for p in PEOPLE[:6]]))
    assert (result.new, result.duplicates) == (6, 0)
    assert manager.slots_cache[slot][0].name == right.name  # the client learnt the slot's master
    state = RedisState(client, KEYS)
    assert [state.usage(Scope.USER, p.quota_key, DAY).get("req") for p in PEOPLE[:6]] == [2, 1, 1, 1, 1, 1]


def test_decisions_reach_the_enforcers_stream_reader(
    consumer: Callable[..., ConsumerParts], client: redis.RedisCluster,
) -> None:
    parts = consumer(DEFAULT_DAILY_REQUEST_LIMIT="3", WARNING_THRESHOLDS="60")
    stream = DecisionStream(client, KEYS.decisions, "enforcer-1")
    stream.ensure_group()
    result = parts.processor.process(records([envelope(p, NOW, seed=i) for p in PEOPLE[:5] for i in range(3)]))
    assert len(result.decisions) == 10  # each of five people: 60 % at the 2nd call, 100 % at the 3rd

    read = stream.read(count=100, block_ms=100)
    decisions = [entry.decision() for entry in read]
    assert sorted((d.subject, d.kind) for d in decisions) == sorted(
        (p.quota_key, kind) for p in PEOPLE[:5] for kind in (Kind.WARNING, Kind.EXCEEDED))
    stream.ack([entry.entry_id for entry in read])
    assert stream.lag() == 0


def test_usage_read_by_bedrockctl_and_the_notifier(
    consumer: Callable[..., ConsumerParts], client: redis.RedisCluster, cluster_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    events, calls = _traffic()
    consumer().processor.process(records(events))

    assert main(["usage", "--json"]) == 0
    shown = {row["principal"]: row["requests"] for row in json.loads(capsys.readouterr().out)}
    assert shown == calls
    assert main(["usage", "--teams", "--json"]) == 0
    teams = {row["team"]: len(row["members"]) for row in json.loads(capsys.readouterr().out)}
    assert teams == {team: len(PEOPLE) // 3 for team in TEAMS}

    notifier = assemble_notifier(AllSettings.from_env(cluster_env), registry=CollectorRegistry(), channels={})
    try:
        reader = notifier.usage_reader()
        members = reader.members_of(TEAMS, DAY)
        assert {team: len(keys) for team, keys in members.items()} == {team: len(PEOPLE) // 3 for team in TEAMS}
    finally:
        notifier.close()


def test_rebuild_refills_every_master_from_mysql(
    consumer: Callable[..., ConsumerParts], client: redis.RedisCluster, capsys: pytest.CaptureFixture[str],
) -> None:
    events, calls = _traffic()
    consumer().processor.process(records(events))
    state = RedisState(client, KEYS)
    teams_before = {team: state.usage(Scope.TEAM, team, DAY) for team in TEAMS}
    client.flushall()
    assert state.limit_overrides(Scope.TEAM, "research") == Limits(None, None)

    assert main(["counters", "rebuild"]) == 0
    assert f"{len(events)} were missing" in capsys.readouterr().out
    for person in PEOPLE:
        assert state.usage(Scope.USER, person.quota_key, DAY) == {"req": calls[person.quota_key]}
    assert {team: state.usage(Scope.TEAM, team, DAY) for team in TEAMS} == teams_before
    assert state.limit_overrides(Scope.TEAM, "research") == Limits(None, 1000)  # the overrides re-cached


def test_a_master_that_forgot_is_caught_by_its_slots_markers_and_rebuilt(
    consumer: Callable[..., ConsumerParts], client: redis.RedisCluster, cluster: LocalRedisCluster,
) -> None:
    """One marker per slot: a master that comes back empty (a failover to an empty replica) lost its slots'
    markers, so the scripts of the people it serves refuse, and Redis is rebuilt before they count. (The
    people of the other masters may be counted by the refused attempt: its redo finds them duplicates.)"""
    events, calls = _traffic()
    parts = consumer()
    parts.processor.process(records(events))
    keys = Keys("test", cluster=True)
    epoch = redis_marker.in_redis(client, keys)
    assert epoch is not None and len(keys.markers()) == 16_384
    forgetful = redis.Redis(port=cluster.ports[1])
    forgetful.flushall()  # that master alone: the others keep their keys and their markers
    forgetful.close()
    assert redis_marker.in_redis(client, keys) is None

    rest = records([envelope(p, NOW, seed=99_000 + i) for i, p in enumerate(PEOPLE)], start=len(events) + 1)
    with pytest.raises(RedisForgot):
        parts.processor.process(rest)
    parts.reset_connections()
    result = parts.processor.process(rest)  # Redis was rebuilt before the refusal reached us
    assert 0 < result.new < len(PEOPLE) and result.new + result.duplicates == len(PEOPLE)
    state = RedisState(client, KEYS)
    for person in PEOPLE:
        assert state.usage(Scope.USER, person.quota_key, DAY) == {"req": calls[person.quota_key] + 1}
    for t, team in enumerate(TEAMS):
        assert state.usage(Scope.TEAM, team, DAY) == {"req": sum(n + 1 for i, n in enumerate(calls.values())
                                                                 if i % 3 == t)}
    assert parts.metrics.redis_data_lost._value.get() == 1
    assert redis_marker.in_redis(client, keys) not in (None, epoch)
