"""Known traffic for the chaos cases that run the real consumer daemon, and the exact check at their end.

Calls (EventBridge envelopes) and their invocation logs (CloudWatch Logs subscription payloads, a few logs
each), one log per call, for a dozen people in two teams set by a quota file whose limits are placed around
what each person and team will use, so that some thresholds are crossed and others not. What it must all
add up to is computed here, as it is built: requests by counting, cost by hand from the shipped price file
(infra/prices/bedrock-prices.yaml, one model, integer arithmetic) — never through the consumer's code.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import orjson
import pymysql
import redis
import yaml

from bedrock_usage import limits
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Quota, Scope, threshold_count
from bedrock_usage.quota_file import parse_quota_file
from bedrock_usage.redis_state import RedisState
from devtools.simulate import Person, bedrock_event, invocation_log, put_records, subscription_payload
from producer_config.rule import partition_key
from tests.conftest import DAY, MONTH, NOW
from tests.e2e.conftest import rows
from tests.integration.test_kcl_protocol import (
    INITIALIZE,
    SHUTDOWN_REQUESTED,
    Conversation,
    checkpoint_reply,
    process_records,
    record,
)

MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"  # no geographic prefix: its regional price
PRICE_FILE = Path(__file__).resolve().parents[2] / "infra" / "prices" / "bedrock-prices.yaml"
TEAMS = ("research", "platform")
KEYS = Keys("test")
COST_PLACES = 100_000  # nano-dollars in $0.0001, the quota file's finest cost limit


def log_prices() -> dict[str, int]:
    """Nano-dollars per token of MODEL's regional standard price, read from the shipped price file
    (US dollars per million tokens, times 10^9 / 10^6)."""
    document = yaml.safe_load(PRICE_FILE.read_text())
    entry = next(p for p in document["prices"] if p["model"] == MODEL and p["scope"] == "regional")
    nanos = {part: Decimal(str(entry["per_million"][part])) * 1000
             for part in ("input", "output", "cache_write_5m")}
    assert all(value == value.to_integral_value() for value in nanos.values()), nanos
    return {part: int(value) for part, value in nanos.items()}


def log_cost(log: dict[str, Any], prices: dict[str, int]) -> int:
    """One invocation log's cost in nano-dollars (no cache reads in these logs; cache writes are 5-minute)."""
    assert log["input"]["cacheReadInputTokenCount"] == 0
    return int(log["input"]["inputTokenCount"] * prices["input"] + log["output"]["outputTokenCount"] * prices["output"]
               + log["input"]["cacheWriteInputTokenCount"] * prices["cache_write_5m"])


@dataclass
class Traffic:
    """The records to put, in order, and what they add up to per person and per team."""

    records: list[tuple[bytes, str]]  # (data, partition key)
    team_of: dict[str, str]  # quota key → team
    requests: Counter[str] = field(default_factory=Counter)  # quota key → calls
    cost: Counter[str] = field(default_factory=Counter)  # quota key → nano-dollars
    limits: dict[tuple[Scope, str], dict[Quota, int]] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return sum(self.requests.values())

    def by_team(self, per_person: Counter[str]) -> Counter[str]:
        teams: Counter[str] = Counter()
        for key, value in per_person.items():
            teams[self.team_of[key]] += value
        return teams

    def quota_file(self) -> str:
        def entry(scope: Scope, subject: str) -> str:
            quota = self.limits[(scope, subject)]
            daily_usd, monthly_usd = (Decimal(quota[q]).scaleb(-9).quantize(Decimal("0.0001"))
                                      for q in (Quota.DAILY_COST, Quota.MONTHLY_COST))
            team = f"team: {self.team_of[subject]}, " if scope is Scope.USER else ""
            return (f"{{{team}daily_limit: {quota[Quota.DAILY_REQUESTS]},"
                    f" monthly_limit: {quota[Quota.MONTHLY_REQUESTS]}, daily_cost_limit_usd: {daily_usd},"
                    f" monthly_cost_limit_usd: {monthly_usd}}}")

        teams = "".join(f"  {team}: {entry(Scope.TEAM, team)}\n" for team in TEAMS)
        users = "".join(f'  "{key}": {entry(Scope.USER, key)}\n' for key in sorted(self.team_of))
        return f"teams:\n{teams}users:\n{users}"

    def expected_decisions(self, warning_percents: Sequence[int]) -> dict[tuple[str, str, str, int], int]:
        """(scope, subject, quota, percent) → 1 for every threshold the final usage reaches: each crossing
        decided exactly once (usage only grows, and every event is in the same day and month)."""
        usage = {Scope.USER: (self.requests, self.cost),
                 Scope.TEAM: (self.by_team(self.requests), self.by_team(self.cost))}
        expected = {}
        for (scope, subject), quotas in self.limits.items():
            for quota, limit in quotas.items():
                used = usage[scope][1 if quota.cost else 0][subject]
                for percent in (*warning_percents, 100):
                    if used >= threshold_count(limit, percent):
                        expected[(scope.value, subject, quota.value, percent)] = 1
        return expected


def build(calls: int, seed: int, crowd: int = 12) -> Traffic:
    """`calls` calls and as many logs (in payloads of 1 to 8, put a little after their calls), all in the
    last 20 minutes (the quota day and month of tests.conftest.NOW)."""
    rng = random.Random(seed)
    prices = log_prices()
    people = [Person(f"chaos{i:02d}@example.com", sso=True) if i % 3 == 0 else Person(f"chaos{i:02d}", sso=False)
              for i in range(crowd)]
    traffic = Traffic([], {p.quota_key: TEAMS[i % 2] for i, p in enumerate(people)})
    start, step = NOW - timedelta(minutes=20), timedelta(minutes=19) / calls
    waiting: list[dict[str, Any]] = []
    payload_size = rng.randint(1, 8)
    for i in range(calls):
        person = rng.choice(people)
        call = bedrock_event(person, start + step * i, rng)
        call["detail"]["requestParameters"]["modelId"] = MODEL
        traffic.records.append((orjson.dumps(call), partition_key(call)))
        log = invocation_log(call, rng, body_bytes=400)
        traffic.requests[person.quota_key] += 1
        traffic.cost[person.quota_key] += log_cost(log, prices)
        waiting.append(log)
        if len(waiting) >= payload_size or i == calls - 1:
            # A subscription's partition key is not the caller's: the logs land on any shard.
            traffic.records.append((subscription_payload(waiting), f"{rng.getrandbits(64):016x}"))
            waiting, payload_size = [], rng.randint(1, 8)

    # Limits around each one's usage: well under it (every threshold crossed), a little under (all but
    # some), or over it (warnings only, or nothing).
    def around(used: int, unit: int = 1) -> int:
        return max(unit, round(used * rng.choice((0.5, 0.9, 1.1, 1.6, 3.0)) / unit) * unit)

    for scope, requests, cost in ((Scope.USER, traffic.requests, traffic.cost),
                                  (Scope.TEAM, traffic.by_team(traffic.requests), traffic.by_team(traffic.cost))):
        for subject in requests:
            daily, daily_cost = around(requests[subject]), around(cost[subject], COST_PLACES)
            traffic.limits[(scope, subject)] = {  # a monthly limit is never below the daily one
                Quota.DAILY_REQUESTS: daily, Quota.MONTHLY_REQUESTS: max(daily, around(requests[subject])),
                Quota.DAILY_COST: daily_cost, Quota.MONTHLY_COST: max(daily_cost, around(cost[subject], COST_PLACES)),
            }
    return traffic


def apply_quota_file(traffic: Traffic, mysql: pymysql.connections.Connection, redis_client: redis.Redis,
                     default_team: str) -> None:
    limits.apply(mysql, RedisState(redis_client, KEYS), parse_quota_file(traffic.quota_file(),
                                                                          default_team=default_team))


class Feeder(threading.Thread):
    """Puts the traffic's records into the stream in `portions`: portion k flows (a trickle of small puts,
    as a live stream has) once `release(k + 1)` has been called."""

    def __init__(self, kinesis: Any, stream: str, records: list[tuple[bytes, str]], portions: int,
                 *, chunk: int = 100, pause: float = 0.05) -> None:
        super().__init__(name="feeder", daemon=True)
        size = math.ceil(len(records) / portions)
        self._portions = [records[i:i + size] for i in range(0, len(records), size)]
        self._kinesis, self._stream, self._chunk, self._pause = kinesis, stream, chunk, pause
        self._released = 0
        self._changed = threading.Condition()
        self.put = 0
        self.error: BaseException | None = None

    def release(self, portions: int) -> None:
        with self._changed:
            self._released = max(self._released, portions)
            self._changed.notify_all()

    def run(self) -> None:
        try:
            for k, portion in enumerate(self._portions):
                with self._changed:
                    self._changed.wait_for(lambda k=k: self._released > k)  # type: ignore[misc]
                for i in range(0, len(portion), self._chunk):
                    self.put += put_records(self._kinesis, self._stream, portion[i:i + self._chunk])
                    time.sleep(self._pause)
        except BaseException as error:
            self.error = error

    def finish(self, timeout: float) -> None:
        self.release(len(self._portions))
        self.join(timeout)
        assert self.error is None, f"putting records failed: {self.error!r}"
        assert not self.is_alive(), f"the records were not all put within {timeout} s"


def kcl_portions(traffic: Traffic, per_batch: int) -> list[list[dict[str, Any]]]:
    """The traffic as the daemon hands it to one record processor (no stream in between), a batch at a time:
    each portion is a processRecords of `per_batch` records and the reply to its checkpoint."""
    portions = []
    for start in range(0, len(traffic.records), per_batch):
        portion = traffic.records[start:start + per_batch]
        portions.append([process_records(*(record(data, str(start + i + 1)) for i, (data, _) in enumerate(portion))),
                         checkpoint_reply(str(start + len(portion)))])
    return portions


def kcl_messages(traffic: Traffic, per_batch: int) -> tuple[list[dict[str, Any]], int]:
    """The whole conversation at once: initialize, the portions, shutdown. Returns it and how many batches."""
    portions = kcl_portions(traffic, per_batch)
    return ([INITIALIZE, *(m for portion in portions for m in portion), SHUTDOWN_REQUESTED,
             checkpoint_reply(str(len(traffic.records)))], len(portions))


def checkpoints(conversation: Conversation) -> list[str]:
    """The sequence numbers the processor has checkpointed so far, in order."""
    return [a["sequenceNumber"] for a in conversation.answers() if a.get("action") == "checkpoint"]


def wait_for(condition: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


# -- the end -------------------------------------------------------------------------------------


def all_counted(traffic: Traffic) -> Callable[[tuple[int, ...]], bool]:
    """Whether `counted` has reached every call and log (more would be a double count: the exact check says)."""
    return lambda found: all(n >= traffic.calls for n in found)


def counted(mysql: pymysql.connections.Connection, redis_client: redis.Redis) -> tuple[int, int, int, int]:
    """(call rows, log rows, requests and logs counted in Redis over both teams): what to wait for."""
    (calls,), = rows(mysql, "SELECT COUNT(*) FROM bedrock_calls")
    (logs,), = rows(mysql, "SELECT COUNT(*) FROM invocation_logs")
    state = RedisState(redis_client, KEYS)
    teams = [state.usage(Scope.TEAM, team, DAY) for team in TEAMS]
    return int(calls), int(logs), sum(t.get("req", 0) for t in teams), sum(t.get("logs", 0) for t in teams)


def assert_exact(traffic: Traffic, mysql: pymysql.connections.Connection, redis_client: redis.Redis,
                 warning_percents: Sequence[int]) -> int:
    """Per person and per team, requests and cost in MySQL and in Redis (day and month) are exactly those
    computed; every crossing is decided once. Returns how many decisions the stream carries twice (a
    republish: after a crash, or by another processor counting the same person before the batch that decided
    it is committed; by design, the enforcer deduplicates on decision_id)."""
    people_requests = dict(traffic.requests)
    people_cost = dict(traffic.cost)
    team_requests = dict(traffic.by_team(traffic.requests))
    team_cost = dict(traffic.by_team(traffic.cost))

    def grouped(sql: str) -> dict[str, int]:
        return {str(key): int(value) for key, value in rows(mysql, sql)}

    assert grouped("SELECT p.quota_key, COUNT(*) FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id"
                   " GROUP BY p.quota_key") == people_requests
    assert grouped("SELECT team, COUNT(*) FROM bedrock_calls GROUP BY team") == team_requests
    assert grouped("SELECT p.quota_key, ROUND(SUM(l.cost_usd) * 1000000000) FROM invocation_logs l"
                   " JOIN principals p ON p.id = l.principal_id GROUP BY p.quota_key") == people_cost
    assert grouped("SELECT team, ROUND(SUM(cost_usd) * 1000000000) FROM invocation_logs GROUP BY team") == team_cost
    assert grouped("SELECT p.quota_key, COUNT(*) FROM invocation_logs l JOIN principals p ON p.id = l.principal_id"
                   " GROUP BY p.quota_key") == people_requests  # one log per call

    state = RedisState(redis_client, KEYS)
    for scope, requests, cost in ((Scope.USER, people_requests, people_cost), (Scope.TEAM, team_requests, team_cost)):
        for period in (DAY, MONTH):
            found = {subject: state.usage(scope, subject, period) for subject in requests}
            assert {s: (u.get("req", 0), u.get("logs", 0), u.get("cost", 0)) for s, u in found.items()} == {
                s: (requests[s], requests[s], cost[s]) for s in requests}, f"{scope} {period}"

    decided = {(str(s), str(subject), str(q), int(p)): int(n) for s, subject, q, p, n in rows(
        mysql, "SELECT scope, subject, quota, percent, COUNT(*) FROM decisions"
               " GROUP BY scope, subject, quota, percent")}
    assert decided == traffic.expected_decisions(warning_percents)
    table = {str(d): (int(u), str(e)) for d, u, e in rows(mysql, "SELECT decision_id, usage_count, event_id"
                                                                   " FROM decisions")}
    entries: list[tuple[Any, dict[bytes, bytes]]] = redis_client.xrange(KEYS.decisions)  # type: ignore[assignment]
    published = [(f[b"decision_id"].decode(), (int(f[b"usage"]), f[b"event_id"].decode())) for _, f in entries]
    assert set(published) == set(table.items())  # the same crossing (usage, event) however often it was sent
    return len(published) - len(table)


def totals_line(traffic: Traffic) -> str:
    cost = sum(traffic.cost.values())
    return (f"{traffic.calls} calls + {traffic.calls} invocation logs = {2 * traffic.calls} events in"
            f" {len(traffic.records)} records, {len(traffic.team_of)} people in {len(TEAMS)} teams,"
            f" ${Decimal(cost).scaleb(-9).quantize(Decimal('0.01'), ROUND_HALF_UP)}")
