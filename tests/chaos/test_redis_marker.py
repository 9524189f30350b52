"""Redis forgets mid-stream (issue 12): FLUSHALL, and a restart without persistence, again and again.

The real KCL record processor, fed by the daemon's protocol one portion of batches at a time, counts into a
private redis-server (no persistence, like the stack's ElastiCache; the shared one is never touched). Between
portions Redis loses everything, alternately by FLUSHALL and by a restart of the server. Each time:
- detected at once: the very next batch is refused by the counting script (the marker is gone), and by the
  time it is checkpointed, Redis has been rebuilt from MySQL, once (a `lost` rebuild, the metric counted);
- nothing counted on the forgotten Redis: the crossings of the quotas (limits from a quota file, in Redis
  too: re-cached by the rebuild) are each published exactly once over the whole run — a batch counted on an
  empty Redis would cross its thresholds again;
and at the end every person's and team's requests, in Redis (day and month) and in MySQL, are exactly those
sent, computed here.

Short form in `make test`: 2 losses in 12 batches of 40; CHAOS_FULL=1 (`make chaos`): 14 losses in 100 batches of
500 (50,000 calls).
"""

from __future__ import annotations

import io
import json
import queue
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
import redis
from amazon_kclpy import kcl

from bedrock_usage import limits, redis_marker
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Scope, threshold_count
from bedrock_usage.quota_file import parse_quota_file
from bedrock_usage.redis_state import RedisState
from consumer.kcl_processor import RecordProcessor
from devtools.local_stack import free_port
from devtools.settings import AllSettings
from devtools.simulate import Person
from tests.chaos.conftest import ChaosScale
from tests.conftest import DAY, MONTH
from tests.conftest import test_env as env_for_tests  # aliased: pytest would collect a test_* name
from tests.integration.test_kcl_protocol import (
    INITIALIZE,
    SHUTDOWN_REQUESTED,
    call,
    checkpoint_reply,
    process_records,
    record,
    sample,
)

pytestmark = pytest.mark.chaos

KEYS = Keys("test")
PEOPLE = [Person(f"forget-{i}", sso=i % 2 == 1) for i in range(6)]
TEAM_OF = {p.quota_key: ("research" if i < 3 else "platform") for i, p in enumerate(PEOPLE)}


class RestartableRedis:
    """A redis-server of this test's own, without persistence, that can be restarted on its port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = self._start()
        self.client = redis.Redis.from_url(self.url)
        self._wait()

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--maxmemory-policy", "noeviction"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _wait(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)

    def restart(self) -> None:
        """Stopped and started again: with no persistence it comes back empty."""
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process = self._start()
        self._wait()

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def private_redis() -> Iterator[RestartableRedis]:
    server = RestartableRedis()
    try:
        yield server
    finally:
        server.stop()


class Paced(io.TextIOBase):
    """The daemon's side of the conversation, released a portion at a time: readline blocks until the
    test gives the next line."""

    def __init__(self) -> None:
        self._lines: queue.Queue[str] = queue.Queue()

    def give(self, *messages: dict[str, Any]) -> None:
        for message in messages:
            self._lines.put(json.dumps(message) + "\n")

    def end(self) -> None:
        """The daemon closes the pipe: the protocol loop returns."""
        self._lines.put("")

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        return self._lines.get(timeout=300)


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_redis_forgetting_mid_stream_is_caught_at_once_and_rebuilt_before_counting_resumes(
    private_redis: RestartableRedis, mysql: pymysql.connections.Connection, chaos_scale: ChaosScale,
    chaos_seed: int,
) -> None:
    losses = chaos_scale.pick(2, 14)
    batches, per_batch = chaos_scale.pick((12, 40), (100, 500))
    rng = random.Random(chaos_seed)
    total = batches * per_batch
    # Limits where the traffic crosses them over the whole run, before and after the losses.
    daily_limit = max(10, round(total / len(PEOPLE) * 0.6))
    monthly_limit = max(daily_limit, round(total / len(PEOPLE) * 0.8))
    teams = {"research": round(total / 2 * 0.9), "platform": 10 * total}
    settings = AllSettings.from_env(env_for_tests(REDIS_URL=private_redis.url, REDIS_REBUILD_WAIT_SECONDS="5"))
    quota = ("teams:\n" + "".join(f"  {t}: {{daily_limit: {n}}}\n" for t, n in teams.items()) + "users:\n"
             + "".join(f'  "{p.quota_key}": {{team: {TEAM_OF[p.quota_key]}, daily_limit: {daily_limit},'
                       f' monthly_limit: {monthly_limit}}}\n' for p in PEOPLE))
    limits.apply(mysql, RedisState(private_redis.client, KEYS), parse_quota_file(quota,
                                                                                default_team=settings.default_team))

    sent: Counter[str] = Counter()
    portions: list[list[dict[str, Any]]] = []
    sequence = 0
    for _ in range(batches):
        batch = []
        for _ in range(per_batch):
            person = rng.choice(PEOPLE)
            sequence += 1
            sent[person.quota_key] += 1
            batch.append(record(call(person, seed=chaos_seed * 1_000_000 + sequence), str(sequence)))
        portions.append([process_records(*batch), checkpoint_reply(str(sequence))])
    # The losses fall after random batches (never the last: a loss must be followed by traffic to detect it).
    after = sorted(rng.sample(range(1, batches - 1), losses))
    print(f"{batches} batches of {per_batch}, {losses} losses after batches {after}")

    paced = Paced()
    output, errors = io.StringIO(), io.StringIO()
    processor = RecordProcessor(settings)
    process = kcl.KCLProcess(processor, input_file=paced, output_file=output, error_file=errors)
    thread = threading.Thread(target=process.run, name="kcl-process", daemon=True)

    def checkpoints() -> list[str]:
        answers = [json.loads(line) for line in output.getvalue().splitlines() if line.strip()]
        return [a["sequenceNumber"] for a in answers if a.get("action") == "checkpoint"]

    def metrics() -> Any:
        assert processor._parts is not None  # the processor's own registry
        return processor._parts.metrics

    def lost_rebuilds() -> list[tuple[Any, ...]]:
        with mysql.cursor() as cur:
            cur.execute("SELECT finished_at IS NOT NULL, rows_replayed, TIMESTAMPDIFF(MICROSECOND, started_at,"
                        " finished_at) / 1e6 FROM redis_rebuilds WHERE reason = 'lost' ORDER BY id")
            found = list(cur.fetchall())
        mysql.commit()
        return found

    paced.give(INITIALIZE)
    thread.start()
    rebuild_seconds: list[float] = []
    try:
        for index, portion in enumerate(portions):
            paced.give(*portion)
            assert _wait_for(lambda i=index: len(checkpoints()) > i or not thread.is_alive(), 120), \
                f"batch {index} not checkpointed"
            assert thread.is_alive(), errors.getvalue()
            if index in after:
                k = after.index(index)
                if k % 2 == 0:
                    private_redis.client.flushall()
                else:
                    private_redis.restart()
                assert redis_marker.in_redis(private_redis.client, KEYS) is None
                # Detected at once: by the time the next batch is checkpointed, Redis was rebuilt, once.
                started = time.monotonic()
                paced.give(*portions[index + 1])
                assert _wait_for(lambda i=index: len(checkpoints()) > i + 1 or not thread.is_alive(), 120)
                rebuild_seconds.append(time.monotonic() - started)
                assert thread.is_alive(), errors.getvalue()
                done = lost_rebuilds()
                assert len(done) == k + 1 and all(finished for finished, _, _ in done), done
                assert sample(metrics().redis_data_lost) == k + 1
                assert metrics().redis_unmarked._value.get() == 0
                portions[index + 1] = []  # given already
        assert _wait_for(lambda: len(checkpoints()) >= batches, 60)
        # Read before the shutdown closes the processor's parts.
        published = dict(_decisions_published(metrics()))
        data_lost = sample(metrics().redis_data_lost)
        refusals = sample(metrics().dependency_retries, dependency="redis_marker")
        paced.give(SHUTDOWN_REQUESTED, checkpoint_reply(str(sequence)))
    finally:
        paced.end()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert errors.getvalue() == ""
    assert checkpoints()[-1] == str(sequence)
    rebuilt = lost_rebuilds()
    rate = sum(int(r) for _, r, _ in rebuilt) / max(1e-3, sum(float(t) for _, _, t in rebuilt))
    print(f"{losses} losses (FLUSHALL and restarts) in {total} calls, each caught by the next batch and rebuilt;"
          f" rows replayed {[int(r) for _, r, _ in rebuilt]} at {rate:,.0f} rows/s; loss → next batch"
          f" checkpointed: max {max(rebuild_seconds):.2f} s, mean {sum(rebuild_seconds) / len(rebuild_seconds):.2f} s")

    # Exact, per person and per team, in MySQL and in Redis (day and month).
    sent_teams: Counter[str] = Counter()
    for key, n in sent.items():
        sent_teams[TEAM_OF[key]] += n
    with mysql.cursor() as cur:
        cur.execute("SELECT p.quota_key, COUNT(*) FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id"
                    " GROUP BY p.quota_key")
        stored = {str(k): int(n) for k, n in cur.fetchall()}
        cur.execute("SELECT team, COUNT(*) FROM bedrock_calls GROUP BY team")
        stored_teams = {str(t): int(n) for t, n in cur.fetchall()}
        cur.execute("SELECT scope, subject, quota, percent, COUNT(*) FROM decisions GROUP BY scope, subject, quota,"
                    " percent")
        decided = {(str(s), str(subject), str(q), int(p)): int(n) for s, subject, q, p, n in cur.fetchall()}
    mysql.commit()
    assert stored == dict(sent)
    assert stored_teams == dict(sent_teams)
    state = RedisState(private_redis.client, KEYS)
    for period in (DAY, MONTH):
        assert {key: state.usage(Scope.USER, key, period).get("req", 0) for key in sent} == dict(sent), period
        assert {t: state.usage(Scope.TEAM, t, period).get("req", 0) for t in sent_teams} == dict(sent_teams), period

    # Each crossing decided exactly once: recorded once, and published once by the counting (a batch counted
    # on a forgotten Redis would have crossed its thresholds a second time).
    expected: dict[tuple[str, str, str, int], int] = {}
    for scope, totals, quota, limit_of in (
            (Scope.USER, sent, "daily_requests", lambda _: daily_limit),
            (Scope.USER, sent, "monthly_requests", lambda _: monthly_limit),
            (Scope.TEAM, sent_teams, "daily_requests", teams.get)):
        for subject, n in totals.items():
            limit = limit_of(subject)
            assert limit is not None
            for percent in (*settings.warning_thresholds, 100):
                if n >= threshold_count(limit, percent):
                    expected[(scope.value, subject, quota, percent)] = 1
    assert decided == expected
    assert sum(published.values()) == len(expected), published
    assert data_lost == losses
    assert refusals >= losses  # each loss: the next batch refused (and redone once Redis was rebuilt)


def _decisions_published(metrics: Any) -> list[tuple[tuple[str, ...], float]]:
    found = []
    for family in metrics.decisions.collect():
        for s in family.samples:
            if s.name.endswith("_total"):
                found.append((tuple(s.labels.values()), float(s.value)))
    return found
