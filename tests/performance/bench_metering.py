"""What the enforcer's unmetered-calls count costs MySQL (enforcement/metering_watch.py), on a table of
BENCH_METERING_ROWS calls (default 300,000) spread over 48 hours, 1 in 1,000 unmetered.

    BENCH_MYSQL_URL=mysql://root@127.0.0.1:3306/bu_bench_metering python -m tests.performance.bench_metering

The database is dropped and built from sql/. Prints the rows in the 24-hour window and the median time of
the two counts (the last hour every EVERY_SECONDS, the 24 hours every FULL_EVERY_SECONDS), with the plan.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bedrock_usage import db
from devtools.settings import AllSettings
from enforcement.metering_watch import RECENT, WINDOW, count, statement
from tests.conftest import fresh_schema, test_env

ROWS = int(os.environ.get("BENCH_METERING_ROWS", "300000"))
BATCH = 5000
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-west-3")


def main() -> None:
    url = os.environ.get("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/bu_bench_metering")
    settings = fresh_schema(AllSettings.from_env(test_env(MYSQL_URL=url)))
    tz = ZoneInfo("Europe/Madrid")
    conn = db.connect(settings.mysql)
    now = datetime.now(UTC).replace(microsecond=0)
    step = timedelta(hours=48) / ROWS
    started = time.monotonic()
    with conn.cursor() as cur:
        for first in range(0, ROWS, BATCH):
            rows = []
            for i in range(first, min(first + BATCH, ROWS)):
                when = now - i * step
                metered = i % 1000 != 0
                rows.append((when.astimezone(tz).date(), f"ev-{i:09d}", db.to_db(when), REGIONS[i % len(REGIONS)],
                             f"req-{i:09d}", "ThrottlingException" if i % 50 == 1 else None,
                             100 if metered else None))
            cur.executemany(
                "INSERT INTO bedrock_calls (event_date, event_id, event_time, principal_id, team, account_id,"
                " operation, model_ref, region, request_id, error_code, input_tokens) VALUES (%s, %s, %s, 1, 't',"
                " '111122223333', 'Converse', 1, %s, %s, %s, %s)", rows)
            conn.commit()
    print(f"{ROWS} calls over 48 h inserted in {time.monotonic() - started:.1f} s")
    start, end = now - WINDOW, now - timedelta(seconds=settings.unmetered_after_seconds)
    sql, params = statement(start, end, end - RECENT, tz)
    with conn.cursor() as cur:
        cur.execute("ANALYZE TABLE bedrock_calls")
        cur.fetchall()
        cur.execute("SELECT COUNT(*) FROM bedrock_calls WHERE event_time >= %s AND event_time < %s",
                    (db.to_db(start), db.to_db(end)))
        (in_window,) = cur.fetchone()
        cur.execute("EXPLAIN " + sql, params)
        print("plan:", cur.fetchall())
    conn.commit()
    for label, since, rows in (("24 h (every FULL_EVERY_SECONDS)", start, in_window),
                               ("last hour (every pass)", end - RECENT, in_window / 24)):
        timings = []
        for _ in range(7):
            began = time.perf_counter()
            found = count(conn, since, end, end - RECENT, tz)
            timings.append(time.perf_counter() - began)
        median = statistics.median(timings)
        print(f"{label}: ~{rows:.0f} rows, unmetered {sum(c.unmetered for c in found.values())}, median"
              f" {median * 1000:.0f} ms ({median / rows * 1e9:.0f} ms per million rows)")
    conn.close()


if __name__ == "__main__":
    main()
