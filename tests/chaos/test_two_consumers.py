"""Two consumer daemons on a 4-shard stream (issue 12): two workers of one KCL application (one lease table,
each its own worker ID) share the shards 2 and 2; one is SIGKILLed (its whole task) and the other takes its
leases over within the failover time; the killed one is started again and is given two leases back — all
while calls and invocation logs flow. At the end every person's and team's requests and cost, in Redis and in
MySQL, are exactly what was computed from the traffic, and every crossing is decided once.

Lease ownership is read from the lease table (DynamoDB on moto, `leaseOwner`) every quarter of a second; each
change of owner is a lease move. Short form in `make test` (1,000 calls + 1,000 logs); CHAOS_FULL=1
(`make chaos`): 10,000 + 10,000. CHAOS_SEED picks the traffic and the limits.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from functools import partial
from typing import Any

import pymysql
import pytest
import redis
from botocore.exceptions import BotoCoreError, ClientError

from devtools.settings import AllSettings
from tests.chaos import flow
from tests.chaos.conftest import CHAOS_FULL, chaos_seed_value
from tests.conftest import DAY
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Stack, e2e_env, log_tails_on_failure, quota_day_now, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

FULL = CHAOS_FULL
SEED = chaos_seed_value()  # one rule for the suite: CHAOS_SEED, or its fixed default
CALLS = 10_000 if FULL else 1_000  # and as many invocation logs
SHARDS = 4
FAILOVER_MS = 2000
# The KCL takes a dead worker's lease once it has seen it unrenewed for the failover time, looking every
# 2 (failover + 25 ms) plus the time a scan of the lease table takes: three to four failover times after the
# kill at worst, and moto and a busy JVM add to it.
TAKEOVER_SECONDS = 4 * FAILOVER_MS / 1000 + 8
# A new worker steals one lease per check (maxLeasesToStealAtOneTime = 1) from the busiest worker until both
# hold 2: two checks, a few more where both renew and steal at once.
BALANCE_SECONDS = 60

# The e2e harness (moto, the stream, the consumers, the e2e database and Redis db) for this module.
schema, mysql, redis_client, moto, stack = e2e.schema, e2e.mysql, e2e.redis_client, e2e.moto, e2e.stack


class LeaseWatcher(threading.Thread):
    """Reads the lease table every `interval` s and notes each change of a lease's owner."""

    def __init__(self, stack: Stack, application: str, interval: float = 0.25) -> None:
        super().__init__(name="lease-watcher", daemon=True)
        self._dynamodb = stack.moto.client("dynamodb")  # a client of its own: not shared across threads
        self._application, self._interval = application, interval
        self._stopping = threading.Event()
        self._began = time.monotonic()
        self.owners: dict[str, str] = {}  # shard → worker ID ('' while nobody holds it)
        self.moves: list[tuple[float, str, str, str]] = []  # (seconds, shard, from, to)

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                items = self._dynamodb.scan(TableName=self._application, ConsistentRead=True)["Items"]
            except (BotoCoreError, ClientError):  # moto busy: read again at the next tick
                items = []
            for item in items:
                shard, owner = item["leaseKey"]["S"], item.get("leaseOwner", {}).get("S", "")
                if self.owners.get(shard, "") != owner:
                    self.moves.append((time.monotonic() - self._began, shard, self.owners.get(shard, ""), owner))
                self.owners[shard] = owner
            self._stopping.wait(self._interval)

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)

    def held(self) -> Counter[str]:
        """How many leases each worker holds now."""
        return Counter(owner for owner in dict(self.owners).values() if owner)

    def moves_since(self, seconds: float) -> int:
        return sum(1 for at, _, old, _ in self.moves if at >= seconds and old)


def _balanced(held: Counter[str]) -> bool:
    return sorted(held.values()) == [SHARDS // 2, SHARDS // 2]


@pytest.mark.parametrize("stack", [SHARDS], indirect=True)
def test_two_daemons_share_the_shards_take_over_a_killed_ones_and_give_them_back(
    stack: Stack, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    today, seconds_left = quota_day_now()
    if today != DAY or seconds_left < 1800:
        pytest.skip("too close to the end of the quota day: the consumer's clock would decide on another day")
    assert len(stack.shards()) == SHARDS
    traffic = flow.build(CALLS, SEED)
    settings = AllSettings.from_env(e2e_env())
    flow.apply_quota_file(traffic, mysql, redis_client, settings.default_team)
    print(f"CHAOS_SEED={SEED}: {flow.totals_line(traffic)}; {SHARDS} shards, failover {FAILOVER_MS} ms")

    application = stack.application("pair")
    watcher = LeaseWatcher(stack, application)
    watcher.start()
    feeder = flow.Feeder(stack.kinesis, stack.stream, traffic.records, portions=4)
    began = time.monotonic()
    with log_tails_on_failure(stack):
        # 1. Two workers of one application: the leases end up 2 and 2.
        feeder.start()
        feeder.release(1)
        first = stack.start(application, KCL_FAILOVER_MS=str(FAILOVER_MS))
        second = stack.start(application, KCL_FAILOVER_MS=str(FAILOVER_MS))
        held = wait_until(watcher.held, _balanced, timeout=90 + BALANCE_SECONDS, what="the leases shared 2 and 2",
                          alive=[first, second])
        balanced_at = time.monotonic() - began
        workers = set(held)
        for running in (first, second):
            wait_until(partial(running.metric, "bedrock_usage_records_total"), lambda n: n > 0, timeout=60,
                       what="both workers counting", alive=[first, second])

        # 2. One is killed (its whole task, mid-stream): the other takes all four leases over.
        feeder.release(2)
        time.sleep(1.0)
        second.kill()
        killed_at = time.monotonic()
        held = wait_until(watcher.held, lambda h: sum(h.values()) == SHARDS and len(h) == 1 and set(h) <= workers,
                          timeout=TAKEOVER_SECONDS, what="the survivor holding every lease", alive=[first],
                          interval=0.05)
        taken_over_in = time.monotonic() - killed_at
        (survivor,) = held
        moved_to_survivor = watcher.moves_since(killed_at - began)

        # 3. Started again (a new worker ID): given back half of the leases, while the traffic goes on.
        feeder.release(3)
        restarted_at = time.monotonic()
        restarted = stack.start(application, KCL_FAILOVER_MS=str(FAILOVER_MS))
        held = wait_until(watcher.held, lambda h: _balanced(h) and survivor in h, timeout=60 + BALANCE_SECONDS,
                          what="the leases shared 2 and 2 again", alive=[first, restarted])
        given_back_in = time.monotonic() - restarted_at
        assert (set(held) - {survivor}).isdisjoint(workers), "the restarted daemon kept the killed one's worker ID"
        moved_back = watcher.moves_since(restarted_at - began)

        # 4. Every call and log counted exactly once, by whichever worker held its shard.
        feeder.finish(timeout=300)
        wait_until(lambda: flow.counted(mysql, redis_client),
                   flow.all_counted(traffic), timeout=300 if FULL else 120,
                   what="every call and log counted", alive=[first, restarted], interval=1.0)
        seconds = time.monotonic() - began
        watcher.stop()
        republished = flow.assert_exact(traffic, mysql, redis_client, settings.warning_thresholds)
        assert first.running() and restarted.running()

    print(f"balanced 2/2 after {balanced_at:.1f} s; one killed: all {SHARDS} leases with the survivor"
          f" {taken_over_in:.1f} s later ({moved_to_survivor} moves); restarted: 2/2 again {given_back_in:.1f} s"
          f" later ({moved_back} moves); {len(watcher.moves)} owner changes in all, {seconds:.0f} s;"
          f" {republished} stream entries repeating a decision (same decision_id: redone batches, or another"
          " shard counting the same person before the batch that decided it was committed)")
    for at, shard, old, new in watcher.moves:
        print(f"  {at:6.1f} s  {shard}: {_short(old)} → {_short(new)}")


def _short(worker: Any) -> str:
    return str(worker)[:8] or "-"
