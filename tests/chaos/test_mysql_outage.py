"""MySQL stopped mid-stream (issue 12): the real KCL record processor, fed by the daemon's protocol, keeps
taking batches while MariaDB goes away for OUTAGE seconds (a gate in front of it cuts every connection and
refuses new ones). While it is down nothing is checkpointed, the process does not stop, and afterwards every
person's and every team's requests in Redis and in MySQL are exactly what was sent, each crossing decided once.

Short form in `make test` (3 seconds down, 480 calls); `make chaos`: 30 seconds down, 4,000 calls.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pymysql
import pytest
import redis

from bedrock_usage import limits
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Scope, threshold_count
from bedrock_usage.quota_file import parse_quota_file
from bedrock_usage.redis_state import RedisState
from devtools.settings import AllSettings
from devtools.simulate import Person
from tests.chaos.conftest import ChaosScale
from tests.conftest import DAY
from tests.conftest import test_env as env_for_tests  # aliased: pytest would collect a test_* name
from tests.gates import Gate
from tests.integration.test_kcl_protocol import (
    INITIALIZE,
    SHUTDOWN_REQUESTED,
    Conversation,
    call,
    checkpoint_reply,
    process_records,
    record,
    sample,
)

pytestmark = pytest.mark.chaos


TEAMS = {"research": 120, "platform": 10_000}  # team daily limits: research's is crossed, platform's is not
PEOPLE = [Person(f"chaos-{i}", sso=i % 2 == 1) for i in range(6)]
TEAM_OF = {p.quota_key: ("research" if i < 3 else "platform") for i, p in enumerate(PEOPLE)}
DAILY_LIMIT = 30  # each person's: most of them cross 60 %, 85 % and 100 %


def _quota_file() -> str:
    teams = "".join(f"  {name}: {{daily_limit: {limit}}}\n" for name, limit in TEAMS.items())
    users = "".join(f'  "{p.quota_key}": {{team: {TEAM_OF[p.quota_key]}, daily_limit: {DAILY_LIMIT}}}\n'
                    for p in PEOPLE)
    return f"teams:\n{teams}users:\n{users}"


@pytest.fixture
def gated(mysql: pymysql.connections.Connection, redis_client: redis.Redis) -> Iterator[tuple[AllSettings, Gate]]:
    """Settings whose MySQL is behind a gate (up), with the quota file applied."""
    direct = AllSettings.from_env(env_for_tests())
    limits.apply(mysql, RedisState(redis_client, Keys("test")),
                 parse_quota_file(_quota_file(), default_team=direct.default_team))
    params = direct.mysql
    gate = Gate((params.host, params.port))
    url = (f"mysql://{quote(params.user, safe='')}:{quote(params.password, safe='')}"
           f"@127.0.0.1:{gate.port}/{params.database}")
    try:
        yield AllSettings.from_env(env_for_tests(MYSQL_URL=url)), gate
    finally:
        gate.close()


def _checkpoints(conversation: Conversation) -> list[str]:
    return [a["sequenceNumber"] for a in conversation.answers() if a.get("action") == "checkpoint"]


def _wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_mysql_down_mid_stream_nothing_checkpointed_then_exact(
    gated: tuple[AllSettings, Gate], mysql: pymysql.connections.Connection, redis_client: redis.Redis,
    chaos_scale: ChaosScale, chaos_seed: int,
) -> None:
    settings, gate = gated
    outage_seconds = chaos_scale.pick(3.0, 30.0)
    batches, per_batch = chaos_scale.pick((12, 40), (40, 100))
    rng = random.Random(chaos_seed)
    print(f"{batches} batches of {per_batch}, MySQL down {outage_seconds:.0f} s")
    sent: Counter[str] = Counter()
    messages: list[dict[str, Any]] = [INITIALIZE]
    sequence = 0
    for _ in range(batches):
        batch = []
        for _ in range(per_batch):
            person = rng.choice(PEOPLE)
            sequence += 1
            sent[person.quota_key] += 1
            batch.append(record(call(person, seed=chaos_seed * 1_000_000 + sequence), str(sequence)))
        messages += [process_records(*batch), checkpoint_reply(str(sequence))]
    messages += [SHUTDOWN_REQUESTED, checkpoint_reply(str(sequence))]

    conversation = Conversation(settings, *messages)
    thread = threading.Thread(target=conversation.run, name="kcl-process", daemon=True)
    thread.start()
    try:
        # Mid-stream: a third of the batches checkpointed, then MySQL goes away.
        assert _wait_for(lambda: len(_checkpoints(conversation)) >= batches // 3, 60), "no progress before the fault"
        gate.down()
        time.sleep(1.0)  # a batch already durable when the gate went down may still be acknowledged
        before = _checkpoints(conversation)
        retries_before = sample(conversation.metrics.dependency_retries, dependency="mysql")
        time.sleep(outage_seconds - 1.0)
        during = _checkpoints(conversation)
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
    checkpoints = _checkpoints(conversation)
    assert checkpoints[-1] == str(sequence) and len(checkpoints) >= batches

    # Exactly what was sent, per person and per team, in MySQL and in Redis.
    with mysql.cursor() as cur:
        cur.execute("SELECT p.quota_key, COUNT(*) FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id"
                    " GROUP BY p.quota_key")
        stored = {str(k): int(n) for k, n in cur.fetchall()}
        cur.execute("SELECT team, COUNT(*) FROM bedrock_calls GROUP BY team")
        stored_teams = {str(t): int(n) for t, n in cur.fetchall()}
        cur.execute("SELECT scope, subject, percent, COUNT(*) FROM decisions WHERE quota = 'daily_requests'"
                    " GROUP BY scope, subject, percent")
        decided = {(str(s), str(subject), int(p)): int(n) for s, subject, p, n in cur.fetchall()}
    mysql.commit()
    sent_teams: Counter[str] = Counter()
    for key, n in sent.items():
        sent_teams[TEAM_OF[key]] += n
    assert stored == dict(sent)
    assert stored_teams == dict(sent_teams)
    state = RedisState(redis_client, Keys("test"))
    assert {key: state.usage(Scope.USER, key, DAY).get("req", 0) for key in sent} == dict(sent)
    assert {team: state.usage(Scope.TEAM, team, DAY).get("req", 0) for team in sent_teams} == dict(sent_teams)

    # Each crossing decided exactly once: the thresholds reached, computed from what was sent.
    expected = {}
    for scope, totals, limit_of in ((Scope.USER, sent, lambda _: DAILY_LIMIT), (Scope.TEAM, sent_teams, TEAMS.get)):
        for subject, n in totals.items():
            limit = limit_of(subject)
            assert limit is not None
            for percent in (*settings.warning_thresholds, 100):
                if n >= (limit if percent == 100 else threshold_count(limit, percent)):
                    expected[(scope.value, subject, percent)] = 1
    assert decided == expected
