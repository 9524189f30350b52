"""Redis forgets mid-stream (issue 12): FLUSHALL, and a restart without persistence, again and again.

The real KCL record processor, fed by the daemon's protocol one batch at a time, counts calls and their
invocation logs (tests/chaos/flow.py) into a private redis-server (no persistence, like the stack's
ElastiCache; the shared one is never touched). Between batches Redis loses everything, alternately by
FLUSHALL and by a restart of the server. Each time:
- detected at once: the very next batch is refused by the counting script (the marker is gone), and by the
  time it is checkpointed, Redis has been rebuilt from MySQL, once (a `lost` rebuild, the metric counted);
- nothing counted on the forgotten Redis: the crossings of the quotas (limits from a quota file, in Redis
  too: re-cached by the rebuild) are each published exactly once by the counting over the whole run — a
  batch counted on an empty Redis would cross its thresholds again;
and at the end every person's and team's requests and cost, in Redis (day and month) and in MySQL, are
exactly those computed as the traffic was built, each crossing decided once.

Short form in `make test`: 2 losses, 400 calls and their logs in batches of 40; CHAOS_FULL=1 (`make chaos`):
14 losses, 25,000 calls and 25,000 logs in batches of 500.
"""

from __future__ import annotations

import io
import json
import queue
import random
import threading
import time
from typing import Any

import pymysql
import pytest
from amazon_kclpy import kcl

from bedrock_usage import redis_marker
from consumer.kcl_processor import RecordProcessor
from devtools.settings import AllSettings
from tests.chaos import flow
from tests.chaos.conftest import ChaosScale
from tests.chaos.private_redis import PrivateRedis
from tests.conftest import test_env as env_for_tests  # aliased: pytest would collect a test_* name
from tests.integration.test_kcl_protocol import INITIALIZE, SHUTDOWN_REQUESTED, checkpoint_reply, sample

pytestmark = pytest.mark.chaos


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


def test_redis_forgetting_mid_stream_is_caught_at_once_and_rebuilt_before_counting_resumes(
    private_redis: PrivateRedis, mysql: pymysql.connections.Connection, chaos_scale: ChaosScale,
    chaos_seed: int,
) -> None:
    losses = chaos_scale.pick(2, 14)
    traffic = flow.build(chaos_scale.pick(400, 25_000), chaos_seed)
    settings = AllSettings.from_env(env_for_tests(REDIS_URL=private_redis.url, REDIS_REBUILD_WAIT_SECONDS="5"))
    flow.apply_quota_file(traffic, mysql, private_redis.client, settings.default_team)
    portions = flow.kcl_portions(traffic, per_batch=chaos_scale.pick(40, 500))
    batches = len(portions)
    # The losses fall after random batches (never the last: a loss must be followed by traffic to detect it).
    after = sorted(random.Random(chaos_seed).sample(range(1, batches - 1), losses))
    print(f"{flow.totals_line(traffic)}; {batches} batches, {losses} losses after batches {after}")

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
            assert flow.wait_for(lambda i=index: len(checkpoints()) > i or not thread.is_alive(), 120), \
                f"batch {index} not checkpointed"
            assert thread.is_alive(), errors.getvalue()
            if index in after:
                k = after.index(index)
                if k % 2 == 0:
                    private_redis.client.flushall()
                else:
                    private_redis.restart()
                assert redis_marker.in_redis(private_redis.client, flow.KEYS) is None
                # Detected at once: by the time the next batch is checkpointed, Redis was rebuilt, once.
                started = time.monotonic()
                paced.give(*portions[index + 1])
                assert flow.wait_for(lambda i=index: len(checkpoints()) > i + 1 or not thread.is_alive(), 120)
                rebuild_seconds.append(time.monotonic() - started)
                assert thread.is_alive(), errors.getvalue()
                done = lost_rebuilds()
                assert len(done) == k + 1 and all(finished for finished, _, _ in done), done
                assert sample(metrics().redis_data_lost) == k + 1
                assert metrics().redis_unmarked._value.get() == 0
                portions[index + 1] = []  # given already
        assert flow.wait_for(lambda: len(checkpoints()) >= batches, 60)
        # Read before the shutdown closes the processor's parts.
        published = dict(_decisions_published(metrics()))
        data_lost = sample(metrics().redis_data_lost)
        refusals = sample(metrics().dependency_retries, dependency="redis_marker")
        paced.give(SHUTDOWN_REQUESTED, checkpoint_reply(str(len(traffic.records))))
    finally:
        paced.end()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert errors.getvalue() == ""
    assert checkpoints()[-1] == str(len(traffic.records))
    rebuilt = lost_rebuilds()
    rate = sum(int(r) for _, r, _ in rebuilt) / max(1e-3, sum(float(t) for _, _, t in rebuilt))
    print(f"{losses} losses (FLUSHALL and restarts), each caught by the next batch and rebuilt; rows replayed"
          f" {[int(r) for _, r, _ in rebuilt]} at {rate:,.0f} rows/s; loss → next batch checkpointed:"
          f" max {max(rebuild_seconds):.2f} s, mean {sum(rebuild_seconds) / len(rebuild_seconds):.2f} s")

    # Exact per person and per team (requests and cost, day and month, Redis and MySQL), each crossing
    # recorded once; and published once by the counting: a batch counted on a forgotten Redis would have
    # crossed its thresholds a second time (the rebuild's republishing of what no enforcer acted on is apart).
    flow.assert_exact(traffic, mysql, private_redis.client, settings.warning_thresholds)
    assert sum(published.values()) == len(traffic.expected_decisions(settings.warning_thresholds)), published
    assert data_lost == losses
    assert refusals >= losses  # each loss: the next batch refused (and redone once Redis was rebuilt)


def _decisions_published(metrics: Any) -> list[tuple[tuple[str, ...], float]]:
    found = []
    for family in metrics.decisions.collect():
        for s in family.samples:
            if s.name.endswith("_total"):
                found.append((tuple(s.labels.values()), float(s.value)))
    return found
