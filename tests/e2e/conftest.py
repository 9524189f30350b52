"""End-to-end harness: moto (one server per module), a stream and a KCL application per test, and the real
`bedrockctl consumer run` (supervisor, KCL MultiLangDaemon JVM, one record processor per shard) against
MariaDB and Redis.

The e2e tests run for about a minute with the consumer writing all along, so they have a database and a
Redis db of their own (TEST_E2E_MYSQL_URL, default mysql://root@127.0.0.1:3306/bedrock_usage_e2e, and
TEST_E2E_REDIS_URL, default redis://127.0.0.1:6379/10): another pytest session running the unit and
integration tests at the same time (its `schema` drops and re-creates the test database, `redis_client`
flushes its db) cannot wipe or add rows and counters under them; another session given the same ones is
refused (tests/conftest.py `claim`). The `schema`, `mysql` and `redis_client` fixtures below override those of
tests/conftest.py for this directory.

Every consumer is started in its own process group and SIGKILLed (whole group) at teardown if it is still
running, and moto's worker processes are killed if a graceful stop leaves any: a failing test leaves
nothing behind. When a test fails, the tail of each consumer's log is attached to its report.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pymysql
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from devtools.local_stack import Service, free_port
from devtools.moto_server import MotoServer, ensure_stream, precreate_leases
from devtools.settings import AllSettings
from producer_config.rule import partition_key
from tests.conftest import REDIS_CLUSTER, emptied, flushed, fresh_schema, test_env

T = TypeVar("T")

E2E_MYSQL_URL = os.environ.get("TEST_E2E_MYSQL_URL", "mysql://root@127.0.0.1:3306/bedrock_usage_e2e")
# Under TEST_REDIS_CLUSTER the suite's own cluster (tests/conftest.py): a cluster has only database 0.
E2E_REDIS_URL = (REDIS_CLUSTER.url if REDIS_CLUSTER is not None
                 else os.environ.get("TEST_E2E_REDIS_URL", "redis://127.0.0.1:6379/10"))

LOG_TAIL_LINES = 80
# The daemon's shutdown repeats this warning dozens of times; it says nothing about the test.
_LOG_NOISE = ("CloudWatchPublisherRunnable",)
_JAVA_FRAME = re.compile(r"^\s+(at |\.\.\. \d+ common frames omitted)")


def e2e_env(**overrides: str) -> dict[str, str]:
    """tests/conftest.py's test_env (prefix `test`, no tag lookup) on the e2e database and Redis db."""
    return test_env(**{"MYSQL_URL": E2E_MYSQL_URL, "REDIS_URL": E2E_REDIS_URL, **overrides})


# -- data stores -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def schema() -> AllSettings:
    """A fresh e2e database, migrated once per session from sql/."""
    return fresh_schema(AllSettings.from_env(e2e_env()))


@pytest.fixture
def mysql(schema: AllSettings) -> Iterator[pymysql.connections.Connection]:
    """A connection to the e2e database, every table emptied first."""
    yield from emptied(schema)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """The e2e Redis db, flushed before and after the test."""
    yield from flushed(E2E_REDIS_URL)


# -- processes ------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (Linux /proc), depth first."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
        for kid in kids:
            found.append(kid)
            found += _children(kid)
    return found


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # gone meanwhile
        return ""


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server (hypercorn) per module; tests use their own stream and application names."""
    server = MotoServer(log_path=tmp_path_factory.mktemp("moto") / "moto.log").start()
    process = server._process
    try:
        yield server
    finally:
        descendants = _children(process.pid) if process else []
        server.stop()
        for pid in descendants:  # hypercorn's spawned worker, should the parent have been SIGKILLed
            _kill_quietly(pid)


# -- consumers -----------------------------------------------------------------------------------


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@dataclass
class RunningConsumer:
    """`bedrockctl consumer run` for one KCL application, with its metrics endpoint and log file."""

    application: str
    metrics_port: int
    log_path: Path
    consumer: Service

    @property
    def pid(self) -> int:
        assert self.consumer.process is not None
        return self.consumer.process.pid

    def running(self) -> bool:
        return self.consumer.process is not None and self.consumer.process.poll() is None

    def jvm(self) -> int | None:
        """The pid of the KCL MultiLangDaemon (the supervisor's java child), while it runs."""
        if not self.running():
            return None
        return next((pid for pid in _children(self.pid) if "MultiLangDaemon" in _command_line(pid)), None)

    def record_processors(self) -> list[int]:
        """The pids of the record processors the daemon runs (one per shard it holds)."""
        if not self.running():
            return []
        return [pid for pid in _children(self.pid) if "consumer.kcl_processor" in _command_line(pid)]

    def metric(self, name: str, **labels: str) -> float:
        """The current value of one sample of the consumer's /metrics (0 while nothing was counted)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as reply:
                text = reply.read().decode()
        except OSError:
            return 0.0
        return parse_metrics(text).get((name, tuple(sorted(labels.items()))), 0.0)

    def events(self, outcome: str) -> int:
        return int(self.metric("bedrock_usage_events_total", kind="call", outcome=outcome))

    def log_contains(self, text: str) -> int:
        return self.log_path.read_text(errors="replace").count(text) if self.log_path.exists() else 0

    def kill(self) -> None:
        """SIGKILL the whole process group: supervisor, JVM and record processors, mid-whatever."""
        self.consumer.kill()
        self.reap()

    def stop(self) -> int | None:
        """SIGTERM: the supervisor forwards it, processors get shutdown_requested and checkpoint."""
        code = self.consumer.stop()
        self.reap()
        return code

    def reap(self, timeout: float = 10.0) -> None:
        """Kill whatever is left in the group (orphaned JVM or processors), and wait until it is gone."""
        if self.consumer.process is None:
            return
        group = self.consumer.process.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        if self.consumer.process.poll() is None:
            self.consumer.process.wait(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)  # members left (orphans not yet reaped by init)?
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)


@dataclass
class Stack:
    """One test's stream on the module's moto, and the consumers started on it."""

    moto: MotoServer
    stream: str
    logs: Path
    kinesis: Any
    dynamodb: Any
    consumers: list[RunningConsumer] = field(default_factory=list)

    def application(self, label: str) -> str:
        """A KCL application name (lease table) unique to this test and label, with its leases pre-created
        at TRIM_HORIZON: exactly what a brand-new KCL application writes, minus its 1-30 s random wait."""
        name = f"{self.stream}-{label}"
        precreate_leases(self.dynamodb, self.kinesis, name, self.stream)
        return name

    def start(self, application: str, **overrides: str) -> RunningConsumer:
        port = free_port()
        env = {
            **self.moto.env(),
            **e2e_env(**{"STREAM_NAME": self.stream, "KCL_APPLICATION_NAME": application, "KCL_FAILOVER_MS": "3000",
                         "METRICS_PORT": str(port), **overrides}),
        }
        AllSettings.from_env(env)  # a bad override is a clear error here, not a consumer that never starts
        log_path = self.logs / f"consumer-{len(self.consumers) + 1}-{application}.log"
        running = RunningConsumer(application, port, log_path, Service(env, log_path).start())
        self.consumers.append(running)
        return running

    def shards(self) -> list[dict[str, Any]]:
        return list(self.kinesis.list_shards(StreamName=self.stream)["Shards"])

    def shard_of(self) -> Callable[[dict[str, Any]], str]:
        """event → the shard Kinesis puts it in: the MD5 of its partition key within a shard's hash key range."""
        ranges = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]),
                   str(s["ShardId"])) for s in self.shards()]

        def shard(event: dict[str, Any]) -> str:
            point = int(hashlib.md5(partition_key(event).encode()).hexdigest(), 16)
            return next(shard_id for low, high, shard_id in ranges if low <= point <= high)

        return shard

    def last_sequence_numbers(self) -> dict[str, str | None]:
        """The sequence number of the last record of every shard (None: empty shard)."""
        last: dict[str, str | None] = {}
        for shard in self.shards():
            iterator = self.kinesis.get_shard_iterator(
                StreamName=self.stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            last[shard["ShardId"]] = None
            while iterator:
                reply = self.kinesis.get_records(ShardIterator=iterator, Limit=10000)
                if not reply["Records"]:
                    break
                last[shard["ShardId"]] = reply["Records"][-1]["SequenceNumber"]
                iterator = reply.get("NextShardIterator")
        return last

    def leases(self, application: str) -> dict[str, dict[str, Any]]:
        """The application's lease table: shard id → lease item (DynamoDB JSON)."""
        items = self.dynamodb.scan(TableName=application, ConsistentRead=True)["Items"]
        return {item["leaseKey"]["S"]: item for item in items}

    def rewind(self, application: str, shard_id: str) -> None:
        """Lose a shard's checkpoint, as if its worker had died after the effects of every batch it processed
        and before any checkpoint: the next owner re-reads the whole shard from TRIM_HORIZON."""
        self.dynamodb.update_item(
            TableName=application, Key={"leaseKey": {"S": shard_id}},
            UpdateExpression="SET checkpoint = :c, checkpointSubSequenceNumber = :z",
            ExpressionAttributeValues={":c": {"S": "TRIM_HORIZON"}, ":z": {"N": "0"}},
        )

    def teardown(self) -> None:
        for running in self.consumers:  # SIGKILL every group first, then wait for each to be gone
            if running.consumer.process is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(running.consumer.process.pid, signal.SIGKILL)
        for running in self.consumers:
            running.reap()


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return "(no log)"
    kept = [line[:600] for line in path.read_text(errors="replace").splitlines()
            if not any(noise in line for noise in _LOG_NOISE) and not _JAVA_FRAME.match(line)]
    return "\n".join(kept[-lines:])


@contextlib.contextmanager
def log_tails_on_failure(stack: Stack, last: int = 3) -> Iterator[None]:
    """For tests outside this directory (the hook below only sees tests/e2e): print the tails of the last
    consumers' logs when the block fails; pytest shows them with the failure."""
    try:
        yield
    except BaseException:
        for running in stack.consumers[-last:]:
            print(f"--- consumer log tail ({running.log_path})\n{_tail(running.log_path)}")
        raise


@pytest.fixture
def stack(
    moto: MotoServer,
    mysql: pymysql.connections.Connection,
    redis_client: redis.Redis,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Stack]:
    """A fresh stream for the test (2 shards; another number through indirect parametrization:
    `@pytest.mark.parametrize("stack", [4], indirect=True)`); every consumer it starts is gone after the
    test. Depends on the data-store fixtures so that they are emptied before any consumer starts and flushed
    only after the last one is dead."""
    stream = f"e2e-{request.node.name[5:25].replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    kinesis = moto.client("kinesis")
    ensure_stream(kinesis, stream, shards=getattr(request, "param", 2))
    built = Stack(moto, stream, tmp_path, kinesis, moto.client("dynamodb"))
    request.node.e2e_stack = built
    try:
        yield built
    finally:
        built.teardown()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    built: Stack | None = getattr(item, "e2e_stack", None)
    if report.failed and built is not None and report.when != "teardown":
        for running in built.consumers:
            report.sections.append((f"consumer log tail ({running.log_path})", _tail(running.log_path)))
    return report


# -- waiting and reading -------------------------------------------------------------------------


def wait_until(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float, what: str,
    alive: Iterable[RunningConsumer] = (), interval: float = 0.25,
) -> T:
    """Poll `probe` until `done(value)`; fail with the last value after `timeout` s, or at once if one of
    the `alive` consumers has exited."""
    deadline = time.monotonic() + timeout
    watched = list(alive)
    while True:
        value = probe()
        if done(value):
            return value
        for running in watched:
            if not running.running():
                raise AssertionError(f"consumer {running.application} exited while waiting for {what};"
                                     f" last value {value!r}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value {value!r}")
        time.sleep(interval)


def scalar(conn: pymysql.connections.Connection, sql: str, *args: object) -> int:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
    conn.commit()  # a fresh snapshot for the next read (REPEATABLE READ)
    return int(row[0] or 0) if row else 0


def rows(conn: pymysql.connections.Connection, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        found = list(cur.fetchall())
    conn.commit()
    return found


def quota_key(event: dict[str, Any]) -> str:
    """The quota key the consumer derives from an event (IAM user ARN, or sso:<session name>)."""
    identity = event["detail"]["userIdentity"]
    if identity["type"] == "IAMUser":
        return str(identity["arn"])
    return "sso:" + str(identity["arn"]).rsplit("/", 1)[1].lower()


def expected_usage(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per person, the day counters the consumer must end with: successful calls in `req`, failed calls in
    `err` (a field is absent while zero, as in Redis), each distinct eventID once."""
    seen: set[str] = set()
    counts: dict[str, Counter[str]] = {}
    for event in events:
        event_id = event["detail"]["eventID"]
        if event_id in seen:
            continue
        seen.add(event_id)
        field_ = "err" if event["detail"].get("errorCode") else "req"
        counts.setdefault(quota_key(event), Counter())[field_] += 1
    return {key: dict(counter) for key, counter in counts.items()}


def total_usage(usage: dict[str, dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for counter in usage.values():
        total.update(counter)
    return dict(total)


def quota_day_now() -> tuple[str, int]:
    """The consumer's quota day right now, and the seconds left in it."""
    local = datetime.now(ZoneInfo("Europe/Madrid"))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.date().isoformat(), 86400 - int((local - midnight).total_seconds())
