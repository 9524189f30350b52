"""`make bench`, third part: `bedrockctl replay` from local files (issue 13: a day of 1,000,000 events in minutes).

A day of BENCH_REPLAY_EVENTS generated events (default 1,000,000), half EventBridge events of calls and half
their model invocation logs (as Bedrock delivers them to S3: one record per line, bodies included), from
BENCH_REPLAY_PEOPLE people (default 2,000), written to local `.jsonl.gz` files of BENCH_REPLAY_FILE_EVENTS
lines each (default 50,000), then replayed with the replay's own engine into a namespace of its own
(created, migrated, filled with the reference data of BENCH_MYSQL_URL's database — dropped and recreated
first —, dropped after), on BENCH_REDIS_URL. Reports replayed events/s (events in the period through the
processor core, files read and decoded included), the namespace's set-up and drop, and the comparison's
time. Ends with a `bench_replay: summary {json}` line, merged into BENCH_RESULTS.
Smoke run: BENCH_REPLAY_EVENTS=20000 BENCH_REPLAY_PEOPLE=200.
"""

from __future__ import annotations

import gzip
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from audit.compare import compare_usage
from audit.namespace import create
from audit.period import parse_period
from audit.replay import Progress, run
from bedrock_usage import db
from bedrock_usage.migrate import migrate
from bedrock_usage.periods import midnight
from consumer.ingest import file_batches
from devtools.settings import AllSettings
from devtools.simulate import invocation_log, people, traffic
from tests.performance.results import report

EVENTS = int(os.environ.get("BENCH_REPLAY_EVENTS", "1000000"))
PEOPLE = int(os.environ.get("BENCH_REPLAY_PEOPLE", "2000"))
FILE_EVENTS = int(os.environ.get("BENCH_REPLAY_FILE_EVENTS", "50000"))
MYSQL_URL = os.environ.get("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/bedrock_usage_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
TZ = ZoneInfo("Europe/Madrid")


def _write_day(work: Path, day_start: datetime) -> list[Path]:
    """The day's events as .jsonl.gz files: calls and their logs, in time order, FILE_EVENTS lines a file."""
    crowd = people(PEOPLE, seed=11)
    rng = random.Random(12)
    paths: list[Path] = []
    lines: list[bytes] = []

    def flush() -> None:
        path = work / f"events-{len(paths):04d}.jsonl.gz"
        path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", compresslevel=1))
        paths.append(path)
        lines.clear()

    # Every call has its log (failed ones included: Bedrock logs those too), so half the events are logs.
    for event in traffic(crowd, EVENTS // 2, day_start, timedelta(days=1) - timedelta(seconds=1), seed=13):
        lines.append(orjson.dumps(event))
        lines.append(orjson.dumps(invocation_log(event, rng, body_bytes=1000)))
        if len(lines) >= FILE_EVENTS:
            flush()
    if lines:
        flush()
    return paths


def main() -> int:
    settings = AllSettings.from_env({**os.environ, "MYSQL_URL": MYSQL_URL, "REDIS_URL": REDIS_URL,
                                     "REDIS_KEY_PREFIX": "benchreplay", "TEAM_TAG_LOOKUP": "false"})
    conn = db.connect(settings.mysql, with_database=False)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{settings.mysql.database}`")
    conn.close()
    migrate(settings.mysql)
    yesterday = datetime.now(UTC).astimezone(TZ).date() - timedelta(days=1)
    period = parse_period(yesterday.isoformat(), yesterday.isoformat(), TZ)
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        t0 = time.monotonic()
        paths = _write_day(Path(tmp), midnight(yesterday, TZ))
        written = time.monotonic() - t0
        size = sum(p.stat().st_size for p in paths)
        print(f"bench_replay: {EVENTS:,} events of {yesterday} from {PEOPLE:,} people in {len(paths)} files"
              f" ({size / 1e6:.0f} MB gzip'd), written in {written:.0f} s", flush=True)
        t0 = time.monotonic()
        ns = create(settings)
        created = time.monotonic() - t0
        try:
            done = run(ns, period, (batch for path in paths for batch in file_batches(path)), progress=Progress())
            t0 = time.monotonic()
            compared = compare_usage(settings.mysql, ns.settings.mysql, period)
            comparing = time.monotonic() - t0
        finally:
            t0 = time.monotonic()
            ns.drop()
            dropped = time.monotonic() - t0
    s = done.summary
    events = s.calls + s.invocation_logs
    summary = {
        "events": events, "records": s.records, "people": PEOPLE, "seconds": round(done.seconds, 1),
        "events_per_second": round(done.events_per_second), "namespace_create_seconds": round(created, 2),
        "compare_seconds": round(comparing, 2), "drop_seconds": round(dropped, 2),
        "replayed_requests": compared.totals["requests"], "dead_letters": s.dead_letters,
    }
    print(f"bench_replay: {events:,} events replayed in {done.seconds:.1f} s: {done.events_per_second:,.0f} events/s"
          f" (namespace created in {created:.1f} s, compared in {comparing:.1f} s, dropped in {dropped:.1f} s)")
    report("bench_replay", summary)
    return 0 if events == EVENTS and s.dead_letters == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
