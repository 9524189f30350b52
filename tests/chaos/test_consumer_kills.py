"""SIGKILLs of the consumer's processes at random moments while calls and invocation logs flow (issue 12).

The real `bedrockctl consumer run` (supervisor, KCL MultiLangDaemon JVM, one Python record processor per
shard) reads a 2-shard stream on moto while a feeder puts calls and their invocation logs (half of the events
each) for a dozen people in two teams. Again and again, a moment at random after the daemon's current life
has committed its first batch, either the JVM or one of its record processors is SIGKILLed. A dead record
processor takes the daemon down with it (the MultiLangDaemon, its child's protocol broken, shuts the other
shards down for up to its shutdown grace of 10 s and exits 1), so after either kill the supervisor exits and
is started again, as ECS would: the new worker takes the dead one's leases over once they expire and re-reads
from the last checkpoints. At the end every person's and team's requests and cost, in Redis (day and month)
and in MySQL, are exactly what was computed from the traffic, and every crossing of every quota is decided
once.

Short form in `make test` (1,500 calls + 1,500 logs, 2 kills); CHAOS_FULL=1 (`make chaos`): 25,000 + 25,000
events, 20 kills. CHAOS_SEED picks the traffic, the limits, the victims and the moments.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import time
from functools import partial

import pymysql
import pytest
import redis

from devtools.settings import AllSettings
from tests.chaos import flow
from tests.chaos.conftest import CHAOS_FULL, chaos_seed_value
from tests.conftest import DAY
from tests.e2e import conftest as e2e
from tests.e2e.conftest import RunningConsumer, Stack, e2e_env, log_tails_on_failure, quota_day_now, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

FULL = CHAOS_FULL
SEED = chaos_seed_value()  # one rule for the suite: CHAOS_SEED, or its fixed default
CALLS = 25_000 if FULL else 1_500  # and as many invocation logs
KILLS = 20 if FULL else 2  # half of them of the JVM, half of a record processor, in a random order
DAEMON, PROCESSOR = "daemon", "record processor"
FAILOVER_MS = 2000  # how soon a dead worker's leases are taken: the restarted daemon's wait
MAX_DELAY = 2.0  # most seconds between a life's first committed batch and its kill

# The e2e harness (moto, the stream, the consumers, the e2e database and Redis db) for this module.
schema, mysql, redis_client, moto, stack = e2e.schema, e2e.mysql, e2e.redis_client, e2e.moto, e2e.stack


def _kill(consumer: RunningConsumer, kind: str, rng: random.Random) -> None:
    """SIGKILL the daemon's JVM, or one of its record processors chosen at random."""
    while True:
        if kind == PROCESSOR:  # one may be between two leases for a moment
            victims = wait_until(consumer.record_processors, bool, timeout=30, what="a record processor to kill",
                                 alive=[consumer], interval=0.1)
        else:
            jvm = wait_until(consumer.jvm, lambda pid: pid is not None, timeout=30, what="the daemon's JVM",
                             alive=[consumer], interval=0.1)
            victims = [jvm] if jvm is not None else []
        try:
            os.kill(rng.choice(victims), signal.SIGKILL)
            return
        except ProcessLookupError:  # it had just ended: choose again
            continue


def test_sigkills_at_random_moments_while_calls_and_logs_flow_count_everything_once(
    stack: Stack, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    today, seconds_left = quota_day_now()
    if today != DAY or seconds_left < 1800:
        pytest.skip("too close to the end of the quota day: the consumer's clock would decide on another day")
    rng = random.Random(SEED)
    traffic = flow.build(CALLS, SEED)
    settings = AllSettings.from_env(e2e_env())
    flow.apply_quota_file(traffic, mysql, redis_client, settings.default_team)
    print(f"CHAOS_SEED={SEED}: {flow.totals_line(traffic)}; {KILLS} kills")

    application = stack.application("kills")
    feeder = flow.Feeder(stack.kinesis, stack.stream, traffic.records, portions=KILLS + 1)
    feeder.start()
    began = time.monotonic()
    victims = [DAEMON, PROCESSOR] * (KILLS // 2) + [DAEMON] * (KILLS % 2)
    rng.shuffle(victims)
    downtimes: list[float] = []  # from a kill to the next life's first committed batch
    exits: list[float] = []  # from a kill to the supervisor's exit
    with log_tails_on_failure(stack):
        consumer = stack.start(application, KCL_FAILOVER_MS=str(FAILOVER_MS))
        killed_at: float | None = None
        for k, kind in enumerate(victims):
            feeder.release(k + 1)  # one more portion of the traffic flows while this life runs
            wait_until(partial(consumer.metric, "bedrock_usage_records_total"), lambda n: n > 0, timeout=120,
                       what=f"life {k + 1}'s first committed batch", alive=[consumer], interval=0.1)
            if killed_at is not None:
                downtimes.append(time.monotonic() - killed_at)
            time.sleep(rng.uniform(0, MAX_DELAY))
            _kill(consumer, kind, rng)
            killed_at = time.monotonic()
            wait_until(consumer.running, lambda running: not running, timeout=60,
                       what=f"the supervisor to exit after its {kind} was killed", interval=0.1)
            exits.append(time.monotonic() - killed_at)
            print(f"kill {k + 1}: {kind}, exit after {exits[-1]:.1f} s")
            consumer.reap()  # what is left of the task (orphaned processors) goes with it, as on ECS
            consumer = stack.start(application, KCL_FAILOVER_MS=str(FAILOVER_MS))

        feeder.finish(timeout=300)
        wait_until(lambda: flow.counted(mysql, redis_client), flow.all_counted(traffic), timeout=300 if FULL else 120,
                   what="every call and log counted", alive=[consumer], interval=1.0)
        assert consumer.stop() == 0
        seconds = time.monotonic() - began
        republished = flow.assert_exact(traffic, mysql, redis_client, settings.warning_thresholds)

    assert len(stack.consumers) == KILLS + 1
    print(f"{KILLS} SIGKILLs ({victims.count(DAEMON)} of the daemon, {victims.count(PROCESSOR)} of a record"
          f" processor), {KILLS + 1} lives, {seconds:.0f} s; the supervisor exited {statistics.median(exits):.1f} s"
          f" (median) after a kill, {max(exits):.1f} s (max); counting again after a kill in"
          f" {statistics.median(downtimes):.1f} s (median), {max(downtimes):.1f} s (max);"
          f" {republished} stream entries repeating a decision (same decision_id: redone batches, or another"
          " shard counting the same person before the batch that decided it was committed)")
