"""Sizing on paper, recomputed from what `make bench` measured (docs/sizing.md shows the output).

    python -m devtools.sizing [bench-results.json | make-bench-output.log] [--markdown]

Reads the `bench: summary {json}` / `bench-enforcer: summary {json}` lines of a `make bench` output, or the
bench-results.json file the benchmark writes, and prints for each scale (people, calls a day): Kinesis
shards, consumer tasks, Redis memory and nodes, MySQL rows written per second and storage, monthly cost.
Every constant below that is not measured is an ASSUMPTION, named as such; change it here.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# -- assumptions: AWS limits (Kinesis Data Streams quotas, provisioned mode) -------------------------------
SHARD_IN_RECORDS_S = 1000  # records/s written per shard
SHARD_IN_BYTES_S = 1_000_000  # bytes/s written per shard (1 MB)
SHARD_OUT_BYTES_S = 2_000_000  # bytes/s read per shard, shared by the consumers (one here: the KCL app)
PUT_UNIT_BYTES = 25 * 1024  # a PUT payload unit

# -- assumptions: traffic and deployment ------------------------------------------------------------------
LOGS_PER_CALL = 1.0  # one invocation-log record per call (the benchmark's worst case: real payloads batch many)
PEAK_FACTOR = 3.0  # peak hour / average hour (calls crowd into office hours)
CONSUMER_UTILISATION = 0.5  # run consumer cores at half the measured rate: headroom for catch-up after an outage
VCPU_PER_TASK = 2  # a consumer task (Fargate) of 2 vCPU / 4 GB: one shard processor per core
MIN_TASKS = 2  # two tasks at least: one can die
PEOPLE_PER_TEAM = 50
COUNTER_DAYS = 31 + 3  # dedupe sets live to the month's end + COUNTER_GRACE_DAYS (default 3)
INTSET_MAX = 512  # Redis keeps a set of integers this small compact (set-max-intset-entries)
REDIS_OVERHEAD = 1.25  # fragmentation, replication and client buffers over the keys' MEMORY USAGE
REDIS_USABLE = 0.75  # ElastiCache reserves 25 % of a node's memory (reserved-memory-percent)
REDIS_REPLICAS = 1  # one replica per shard (Multi-AZ failover)
MYSQL_ROWS_S_PER_VCPU = 2500.0  # batched inserts a MySQL vCPU sustains (assumption: not measured here)
MYSQL_MULTI_AZ = 2  # Multi-AZ: a standby instance billed as the primary
RETENTION_MONTHS = 24  # `bedrockctl db retention --keep-months 24`
HOURS_MONTH = 730

# -- assumptions: AWS on-demand list prices, us-east-1, USD, as noted 2025-06 (check the AWS pricing pages) -
PRICE_SHARD_HOUR = 0.015
PRICE_PUT_MILLION_UNITS = 0.014
PRICE_FARGATE_VCPU_HOUR = 0.04048
PRICE_FARGATE_GB_HOUR = 0.004445
FARGATE_GB_PER_VCPU = 2
PRICE_RDS_GB_MONTH = 0.115  # gp3
# ElastiCache (Redis OSS) node types: (name, GiB, USD/hour); RDS MySQL (name, vCPU, USD/hour).
REDIS_NODES = (("cache.r7g.large", 13.07, 0.219), ("cache.r7g.xlarge", 26.32, 0.437),
               ("cache.r7g.2xlarge", 52.82, 0.873), ("cache.r7g.4xlarge", 105.81, 1.747))
CLUSTER_NODE = REDIS_NODES[1]  # cluster mode: shards of this type
RDS_INSTANCES = (("db.r6g.large", 2, 0.215), ("db.r6g.xlarge", 4, 0.43), ("db.r6g.2xlarge", 8, 0.86),
                 ("db.r6g.4xlarge", 16, 1.72), ("db.r6g.8xlarge", 32, 3.44), ("db.r6g.16xlarge", 64, 6.88))

SCALES = ((1_000, 1_000_000), (100_000, 100_000_000), (1_000_000, 1_000_000_000))
GIB = 1024**3


@dataclass(frozen=True)
class Measured:
    """What `make bench` measured that the sizing needs."""

    records_per_s: float  # one consumer process (≈ one core), half the records invocation logs
    bytes_per_record: float
    person_fixed_bytes: float  # a person's Redis keys other than the dedupe sets
    team_fixed_bytes: float
    small_set_bytes_per_entry: float  # dedupe entries in a person's small (intset) set
    large_set_bytes_per_entry: float  # … in a team's large (hashtable) set
    call_row_bytes: float  # bedrock_calls, data + indexes
    log_row_bytes: float  # invocation_logs


@dataclass(frozen=True)
class Row:
    people: int
    calls_per_day: int
    peak_records_s: float
    shards: int
    consumer_vcpus: int
    consumer_tasks: int
    redis_bytes: float
    redis_nodes: str
    redis_node_count: int
    mysql_rows_s: float
    mysql_peak_rows_s: float
    mysql_instance: str
    partition_gb: float
    storage_gb_year: float
    cost_month: dict[str, float]

    @property
    def total_cost(self) -> float:
        return sum(self.cost_month.values())


def load(text: str) -> dict[str, Any]:
    """The benchmarks' summaries from a `make bench` output or a bench-results.json."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return dict(json.loads(stripped))
    found: dict[str, Any] = {}
    for line in text.splitlines():
        name, mark, payload = line.partition(": summary ")
        if mark and name.strip() in ("bench", "bench-enforcer"):
            found[name.strip()] = json.loads(payload)
    if "bench" not in found:
        raise ValueError("no `bench: summary {...}` line: is this a `make bench` output?")
    return found


def measured(results: dict[str, Any]) -> Measured:
    bench = results["bench"]
    core, redis, mysql = bench["core"], bench["redis"], bench["mysql"]
    return Measured(
        records_per_s=float(core["records_per_s"]), bytes_per_record=core["record_bytes"] / core["records"],
        person_fixed_bytes=float(redis["person_fixed_bytes"]), team_fixed_bytes=float(redis["team_fixed_bytes"]),
        small_set_bytes_per_entry=float(redis["person_seen_bytes_per_entry"]),
        large_set_bytes_per_entry=float(redis["team_seen_bytes_per_entry"]),
        call_row_bytes=float(mysql["bedrock_calls"]["bytes_per_row"]),
        log_row_bytes=float(mysql["invocation_logs"]["bytes_per_row"]))


def redis_plan(needed_bytes: float) -> tuple[str, int, float]:
    """The smallest node whose usable memory holds `needed_bytes` (with replicas), else a cluster of
    CLUSTER_NODE shards: (description, nodes, USD/hour)."""
    copies = 1 + REDIS_REPLICAS
    for name, gib, price in REDIS_NODES:
        if needed_bytes <= gib * GIB * REDIS_USABLE:
            return f"{name} x{copies} (no cluster)", copies, price * copies
    name, gib, price = CLUSTER_NODE
    shards = math.ceil(needed_bytes / (gib * GIB * REDIS_USABLE))
    return f"cluster: {shards} shards of {name} x{copies}", shards * copies, shards * copies * price


def rds_plan(peak_rows_s: float) -> tuple[str, float]:
    vcpus = peak_rows_s / MYSQL_ROWS_S_PER_VCPU
    for name, cpus, price in RDS_INSTANCES:
        if vcpus <= cpus:
            return name, price
    name, cpus, price = RDS_INSTANCES[-1]
    writers = math.ceil(vcpus / cpus)
    return f"{writers} x {name} (sharded by team: beyond one writer)", writers * price


def size(m: Measured, people: int, calls_per_day: int) -> Row:
    records_day = calls_per_day * (1 + LOGS_PER_CALL)
    peak = records_day / 86400 * PEAK_FACTOR
    peak_bytes = peak * m.bytes_per_record
    shards = max(1, math.ceil(peak / SHARD_IN_RECORDS_S), math.ceil(peak_bytes / SHARD_IN_BYTES_S),
                 math.ceil(peak_bytes / SHARD_OUT_BYTES_S))
    vcpus = max(1, math.ceil(peak / (m.records_per_s * CONSUMER_UTILISATION)))
    tasks = max(MIN_TASKS, math.ceil(vcpus / VCPU_PER_TASK))
    teams = max(1, math.ceil(people / PEOPLE_PER_TEAM))
    # Every call and log is one entry in its person's and its team's dedupe set of the day, kept COUNTER_DAYS.
    per_person_day = records_day / people
    person_entry = m.small_set_bytes_per_entry if per_person_day <= INTSET_MAX else m.large_set_bytes_per_entry
    entries = records_day * COUNTER_DAYS
    redis_bytes = REDIS_OVERHEAD * (people * m.person_fixed_bytes + teams * m.team_fixed_bytes
                                    + entries * (person_entry + m.large_set_bytes_per_entry))
    redis_desc, redis_nodes, redis_hour = redis_plan(redis_bytes)
    rows_s = records_day / 86400
    instance, rds_hour = rds_plan(rows_s * PEAK_FACTOR)
    month_bytes = calls_per_day * 365 / 12 * (m.call_row_bytes + LOGS_PER_CALL * m.log_row_bytes)
    stored_gb = month_bytes * RETENTION_MONTHS / 1e9
    put_units = records_day * 365 / 12 * math.ceil(m.bytes_per_record / PUT_UNIT_BYTES) / 1e6
    cost = {
        "kinesis": shards * PRICE_SHARD_HOUR * HOURS_MONTH + put_units * PRICE_PUT_MILLION_UNITS,
        "consumer": tasks * VCPU_PER_TASK * (PRICE_FARGATE_VCPU_HOUR + FARGATE_GB_PER_VCPU * PRICE_FARGATE_GB_HOUR)
        * HOURS_MONTH,
        "redis": redis_hour * HOURS_MONTH,
        "mysql": rds_hour * MYSQL_MULTI_AZ * HOURS_MONTH + stored_gb * PRICE_RDS_GB_MONTH * MYSQL_MULTI_AZ,
    }
    return Row(people, calls_per_day, peak, shards, vcpus, tasks, redis_bytes, redis_desc, redis_nodes, rows_s,
               rows_s * PEAK_FACTOR, instance, month_bytes / 1e9, month_bytes * 12 / 1e9, cost)


def _n(value: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:,.3g} {unit}"
    return f"{value:,.0f}"


def markdown(rows: list[Row], m: Measured) -> str:
    out = [f"Measured (from the bench): {m.records_per_s:,.0f} records/s per consumer core,"
           f" {m.bytes_per_record:,.0f} bytes per record, Redis {m.person_fixed_bytes:,.0f} B per person and"
           f" {m.team_fixed_bytes:,.0f} B per team + {m.small_set_bytes_per_entry:.1f} / "
           f"{m.large_set_bytes_per_entry:.1f} B per dedupe entry (small / large sets), MySQL"
           f" {m.call_row_bytes:,.0f} B per call row and {m.log_row_bytes:,.0f} B per log row.", "",
           "| people | calls/day | peak records/s | shards | consumer vCPU (tasks) | Redis | Redis nodes |"
           " MySQL rows/s avg (peak) | MySQL instance | partition/month | storage/year | $/month |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        costs = ", ".join(f"{k} {v:,.0f}" for k, v in r.cost_month.items())
        out.append(f"| {_n(r.people)} | {_n(r.calls_per_day)} | {r.peak_records_s:,.0f} | {r.shards:,} |"
                   f" {r.consumer_vcpus:,} ({r.consumer_tasks:,}) | {r.redis_bytes / GIB:,.1f} GiB | {r.redis_nodes} |"
                   f" {r.mysql_rows_s:,.0f} ({r.mysql_peak_rows_s:,.0f}) | {r.mysql_instance} |"
                   f" {r.partition_gb:,.1f} GB | {r.storage_gb_year:,.0f} GB | **{r.total_cost:,.0f}** ({costs}) |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("source", nargs="?", default="bench-results.json",
                        help="bench-results.json or a saved `make bench` output ('-': stdin)")
    parser.add_argument("--people", type=int, action="append", help="a scale of your own (with --calls)")
    parser.add_argument("--calls", type=int, action="append", help="calls a day, one per --people")
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.source == "-" else Path(args.source).read_text()
    m = measured(load(text))
    scales = list(zip(args.people, args.calls, strict=True)) if args.people and args.calls else list(SCALES)
    print(markdown([size(m, p, c) for p, c in scales], m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
