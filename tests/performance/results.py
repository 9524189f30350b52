"""What the benchmarks measured, in a form a program reads: each prints one `<name>: summary {json}` line at
its end and merges the same object into BENCH_RESULTS (default bench-results.json) under its name;
tests/performance/sizing.py recomputes the sizing table from either."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pymysql

from bedrock_usage.config import MySQLParams

RESULTS = Path(os.environ.get("BENCH_RESULTS", "bench-results.json"))
SUMMARY_MARK = ": summary "
# The tables that grow with every call (partitioned by month); the rest grow with people.
GROWING_TABLES = ("bedrock_calls", "invocation_logs")


def report(name: str, summary: dict[str, Any]) -> None:
    line = json.dumps(summary, sort_keys=True, default=str)
    print(f"{name}{SUMMARY_MARK}{line}", flush=True)
    existing: dict[str, Any] = {}
    if RESULTS.exists():
        try:
            existing = json.loads(RESULTS.read_text())
        except ValueError:
            existing = {}
    existing[name] = json.loads(line)
    RESULTS.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")


def table_bytes(params: MySQLParams) -> dict[str, dict[str, float]]:
    """Rows and on-disk bytes (data + indexes, from information_schema after ANALYZE) of the growing tables."""
    conn = pymysql.connect(host=params.host, port=params.port, user=params.user, password=params.password,
                           database=params.database)
    out: dict[str, dict[str, float]] = {}
    try:
        with conn.cursor() as cur:
            for table in GROWING_TABLES:
                cur.execute(f"ANALYZE TABLE `{table}`")
                cur.fetchall()
                cur.execute(f"SELECT COUNT(*) FROM `{table}`")
                rows = int(cur.fetchone()[0])  # type: ignore[index]
                cur.execute("SELECT SUM(data_length), SUM(index_length) FROM information_schema.partitions"
                            " WHERE table_schema = %s AND table_name = %s", (params.database, table))
                data, index = cur.fetchone()  # type: ignore[misc]
                out[table] = {"rows": rows, "data_bytes": int(data or 0), "index_bytes": int(index or 0),
                              "bytes_per_row": (int(data or 0) + int(index or 0)) / max(1, rows)}
    finally:
        conn.close()
    return out
