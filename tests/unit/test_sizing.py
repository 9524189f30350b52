"""devtools/sizing.py's arithmetic on a fixed `make bench` output."""

from __future__ import annotations

import json
import math

import pytest

from devtools import sizing

BENCH = {"core": {"records": 200000, "records_per_s": 5000.0, "record_bytes": 200000 * 1000},
         "redis": {"person_fixed_bytes": 400.0, "team_fixed_bytes": 2000.0, "person_seen_bytes_per_entry": 10.0,
                   "team_seen_bytes_per_entry": 60.0},
         "mysql": {"bedrock_calls": {"bytes_per_row": 1000.0}, "invocation_logs": {"bytes_per_row": 800.0}}}
OUTPUT = ("bench: 200000 records ...\ncore: 200000 records through kclpy ...\n"
          f"bench: summary {json.dumps(BENCH)}\nbench-enforcer: summary {json.dumps({'team_all_denied_s': 4.0})}\n")


def test_reads_the_summary_lines_of_a_make_bench_output_and_the_results_file() -> None:
    from_output = sizing.load(OUTPUT)
    assert from_output["bench"] == BENCH and from_output["bench-enforcer"] == {"team_all_denied_s": 4.0}
    assert sizing.load(json.dumps({"bench": BENCH})) == {"bench": BENCH}
    with pytest.raises(ValueError, match="summary"):
        sizing.load("core: 5,000 records/s\n")


def test_one_row_computed_by_the_documented_formulas() -> None:
    m = sizing.measured(sizing.load(OUTPUT))
    assert m.bytes_per_record == 1000 and m.records_per_s == 5000
    row = sizing.size(m, 100_000, 100_000_000)
    records_day = 200_000_000  # a call and its log
    peak = records_day / 86400 * sizing.PEAK_FACTOR
    assert row.peak_records_s == pytest.approx(peak)  # 6,944/s
    assert row.shards == math.ceil(peak / 1000) == 7  # 1,000 records/s and 1 MB/s a shard: both give 7
    assert row.consumer_vcpus == math.ceil(peak / (5000 * sizing.CONSUMER_UTILISATION)) == 3
    assert row.consumer_tasks == 2
    # 2,000 records a person a day: past the intset size, so the person's sets cost as much as the team's.
    entries = records_day * sizing.COUNTER_DAYS
    expected = sizing.REDIS_OVERHEAD * (100_000 * 400 + 2000 * 2000 + entries * (60 + 60))
    assert row.redis_bytes == pytest.approx(expected)
    assert row.redis_nodes.startswith("cluster: ")
    assert row.mysql_rows_s == pytest.approx(records_day / 86400)
    assert row.partition_gb == pytest.approx(100_000_000 * 365 / 12 * 1800 / 1e9)
    assert row.storage_gb_year == pytest.approx(row.partition_gb * 12)
    assert row.total_cost == pytest.approx(sum(row.cost_month.values()))


def test_small_deployments_use_the_compact_set_size_and_one_redis_node() -> None:
    m = sizing.measured({"bench": BENCH})
    row = sizing.size(m, 1_000, 100_000)  # 200 records a person a day: compact sets
    entries = 200_000 * sizing.COUNTER_DAYS
    assert row.redis_bytes == pytest.approx(sizing.REDIS_OVERHEAD * (1000 * 400 + 20 * 2000 + entries * (10 + 60)))
    assert "no cluster" in row.redis_nodes and row.redis_node_count == 1 + sizing.REDIS_REPLICAS
    assert row.shards == 1 and row.consumer_tasks == sizing.MIN_TASKS


def test_redis_beyond_the_largest_node_is_a_cluster_of_enough_shards() -> None:
    usable = sizing.CLUSTER_NODE[1] * sizing.GIB * sizing.REDIS_USABLE
    description, nodes, _ = sizing.redis_plan(usable * 10.5)
    assert description.startswith("cluster: 11 shards") and nodes == 11 * (1 + sizing.REDIS_REPLICAS)
