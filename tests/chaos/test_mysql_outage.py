"""MySQL stopped mid-stream (issue 12): the real KCL record processor, fed by the daemon's protocol, keeps
taking batches of calls and invocation logs while MariaDB goes away for a while (a gate in front of it cuts
every connection and refuses new ones). While it is down nothing is checkpointed, the process does not stop,
and afterwards every person's and every team's requests and cost, in Redis and in MySQL, are exactly those
computed as the traffic was built (tests/chaos/flow.py), each crossing decided once.

Short form in `make test` (3 seconds down, 400 calls and their logs); `make chaos`: 30 seconds down, 4,000.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from urllib.parse import quote

import pymysql
import pytest
import redis

from devtools.settings import AllSettings
from tests.chaos import flow
from tests.chaos.conftest import ChaosScale
from tests.conftest import test_env as env_for_tests  # aliased: pytest would collect a test_* name
from tests.gates import Gate
from tests.integration.test_kcl_protocol import Conversation, sample

pytestmark = pytest.mark.chaos


@pytest.fixture
def gated() -> Iterator[tuple[AllSettings, Gate]]:
    """Settings whose MySQL is behind a gate (up)."""
    params = AllSettings.from_env(env_for_tests()).mysql
    gate = Gate((params.host, params.port))
    url = (f"mysql://{quote(params.user, safe='')}:{quote(params.password, safe='')}"
           f"@127.0.0.1:{gate.port}/{params.database}")
    try:
        yield AllSettings.from_env(env_for_tests(MYSQL_URL=url)), gate
    finally:
        gate.close()


def test_mysql_down_mid_stream_nothing_checkpointed_then_exact(
    gated: tuple[AllSettings, Gate], mysql: pymysql.connections.Connection, redis_client: redis.Redis,
    chaos_scale: ChaosScale, chaos_seed: int,
) -> None:
    settings, gate = gated
    outage_seconds = chaos_scale.pick(3.0, 30.0)
    traffic = flow.build(chaos_scale.pick(400, 4000), chaos_seed)
    flow.apply_quota_file(traffic, mysql, redis_client, settings.default_team)
    messages, batches = flow.kcl_messages(traffic, per_batch=chaos_scale.pick(40, 100))
    print(f"{flow.totals_line(traffic)}; {batches} batches, MySQL down {outage_seconds:.0f} s")

    conversation = Conversation(settings, *messages)
    thread = threading.Thread(target=conversation.run, name="kcl-process", daemon=True)
    thread.start()
    try:
        # Mid-stream: a third of the batches checkpointed, then MySQL goes away.
        assert flow.wait_for(lambda: len(flow.checkpoints(conversation)) >= batches // 3, 60), \
            "no progress before the fault"
        gate.down()
        time.sleep(1.0)  # a batch already durable when the gate went down may still be acknowledged
        before = flow.checkpoints(conversation)
        retries_before = sample(conversation.metrics.dependency_retries, dependency="mysql")
        time.sleep(outage_seconds - 1.0)
        during = flow.checkpoints(conversation)
        retries_during = sample(conversation.metrics.dependency_retries, dependency="mysql")
        alive = thread.is_alive()
    finally:
        gate.up()
    thread.join(timeout=120)

    assert alive, "the record processor stopped while MySQL was down"
    assert during == before, f"checkpointed while MySQL was down: {during[len(before):]}"
    assert retries_during > retries_before, "the batch was not retried while MySQL was down"
    assert not thread.is_alive(), "the processor did not recover once MySQL was back"
    assert conversation.errors.getvalue() == ""
    checkpoints = flow.checkpoints(conversation)
    assert checkpoints[-1] == str(len(traffic.records)) and len(checkpoints) >= batches
    print(f"MySQL down: {retries_during - retries_before:.0f} retries, {len(before)} of {batches} batches"
          " checkpointed before")
    flow.assert_exact(traffic, mysql, redis_client, settings.warning_thresholds)
