"""`bedrockctl bill reconcile` on real MariaDB: the metered side is what the consumer's processor core wrote
from simulated calls and invocation logs; the billed side is CUR 2.0 data this test writes from the
documented columns — Parquet (pyarrow) and gzip'd CSV, locally and on S3 (moto) — with Bedrock and other
services' lines, tax, credit and unattributed lines, two people, several UTC days."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pymysql
import pytest
import redis
from moto import mock_aws

from bedrockctl.main import main
from consumer.assembly import ConsumerParts
from consumer.records import InputRecord
from devtools.simulate import ACCOUNT, SSO_ROLE, Person, invocation_log, subscription_payload
from tests.conftest import NOW, envelope, load_event, records
from tests.conftest import test_env as settings_env

ALICE = Person("alice", sso=False)
BOB = Person("bob@example.com", sso=True)
# How the CUR names them: an IAM user by its ARN, an Identity Center user by the session's assumed-role ARN.
CUR_PRINCIPAL = {ALICE.quota_key: ALICE.quota_key,
                 BOB.quota_key: f"arn:aws:sts::{ACCOUNT}:assumed-role/{SSO_ROLE}/bob@example.com"}
COLUMNS = ("identity_line_item_id", "bill_billing_entity", "line_item_usage_account_id", "line_item_line_item_type",
           "line_item_usage_start_date", "line_item_usage_end_date", "line_item_product_code",
           "line_item_usage_type", "line_item_resource_id", "line_item_unblended_cost",
           "line_item_net_unblended_cost", "line_item_iam_principal", "product_region_code", "product")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, mysql: pymysql.connections.Connection, redis_client: redis.Redis) -> None:
    for name, value in settings_env().items():
        monkeypatch.setenv(name, value)


def _traffic(consumer: ConsumerParts) -> None:
    """Calls of Alice and Bob on three UTC days, each with its invocation log."""
    rng = random.Random(13)
    calls = [envelope(person, NOW - timedelta(days=days, minutes=7 * i),
                      seed=100 * days + i + (50 if person.sso else 0))
             for person in (ALICE, BOB) for days in (0, 1, 2) for i in range(4)]
    logs = [invocation_log(call, rng) for call in calls]
    consumer.processor.process(records(calls))
    consumer.processor.process([InputRecord(subscription_payload(logs[i:i + 6]), "shardId-000000000000",
                                            str(900 + i)) for i in range(0, len(logs), 6)])


def _logged(mysql: pymysql.connections.Connection) -> list[tuple[str, datetime, Decimal, str]]:
    with mysql.cursor() as cur:
        cur.execute("SELECT p.quota_key, l.event_time, l.cost_usd, l.region FROM invocation_logs l"
                    " JOIN principals p ON p.id = l.principal_id")
        rows = [(str(k), t.replace(tzinfo=UTC), Decimal(c), str(r)) for k, t, c, r in cur.fetchall()]
    mysql.commit()
    return rows


def line(principal: str, start: datetime, cost: Decimal, *, usage_type: str = "EUW1-Claude-input-tokens",
         item_type: str = "Usage", product_code: str = "AmazonBedrock", region: str = "eu-west-1",
         entity: str = "AWS", product_name: str = "Amazon Bedrock") -> dict[str, Any]:
    return {"identity_line_item_id": f"id{random.random()}", "bill_billing_entity": entity,
            "line_item_usage_account_id": ACCOUNT, "line_item_line_item_type": item_type,
            "line_item_usage_start_date": start, "line_item_usage_end_date": start + timedelta(hours=1),
            "line_item_product_code": product_code, "line_item_usage_type": usage_type,
            "line_item_resource_id": "", "line_item_unblended_cost": cost, "line_item_net_unblended_cost": cost,
            "line_item_iam_principal": principal, "product_region_code": region,
            "product": {"product_name": product_name, "region": region}}


def billed_as_metered(mysql: pymysql.connections.Connection) -> list[dict[str, Any]]:
    """Hourly CUR lines holding exactly what was metered, each hour split into input and output lines."""
    hours: dict[tuple[str, datetime, str], Decimal] = defaultdict(Decimal)
    for key, when, cost, region in _logged(mysql):
        hours[(CUR_PRINCIPAL[key], when.replace(minute=0, second=0, microsecond=0), region)] += cost
    out = []
    for (principal, hour, region), cost in sorted(hours.items()):
        part = (cost / 3).quantize(Decimal("0.000000001"))
        out += [line(principal, hour, part, region=region),
                line(principal, hour, cost - part, usage_type="EUW1-Claude-output-tokens", region=region)]
    return out


def noise() -> list[dict[str, Any]]:
    """Lines that must not be compared: another service, tax, a credit, Bedrock usage with no principal."""
    day = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    return [line(ALICE.quota_key, day, Decimal("5.00"), product_code="AmazonEC2", usage_type="BoxUsage:t3.micro"),
            line("", day, Decimal("1.23"), item_type="Tax", usage_type="Tax"),
            line(ALICE.quota_key, day, Decimal("-0.50"), item_type="Credit"),
            line("", day, Decimal("20.00"), usage_type="EUW1-ProvisionedThroughput-ModelUnits")]


def write_parquet(rows: list[dict[str, Any]], path: Path) -> Path:
    schema = pa.schema([(c, pa.map_(pa.string(), pa.string()) if c == "product" else
                         pa.timestamp("ms") if c.endswith("_date") else
                         pa.float64() if c.endswith("_cost") else pa.string()) for c in COLUMNS])
    table = pa.Table.from_pylist([{**r, **{c: float(r[c]) for c in COLUMNS if c.endswith("_cost")},
                                   **{c: r[c].replace(tzinfo=None) for c in COLUMNS if c.endswith("_date")},
                                   "product": list(r["product"].items())} for r in rows], schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=7)  # several row groups: read one at a time
    return path


def csv_gz(rows: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, **{c: r[c].strftime("%Y-%m-%dT%H:%M:%SZ") for c in COLUMNS if c.endswith("_date")},
                         "product": json.dumps(r["product"])})
    return gzip.compress(text.getvalue().encode())


def reconcile(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    status = main(["bill", "reconcile", *argv, "--format", "json"])
    captured = capsys.readouterr()
    return status, json.loads(captured.out, parse_float=Decimal) if captured.out else {"stderr": captured.err}


def _rows(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["principal"], r["day"]): r for r in report["drift"]}


def test_a_bill_that_matches_the_metering_agrees_and_only_bedrock_usage_is_compared(
    env: None, make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    _traffic(make_consumer())
    write_parquet(billed_as_metered(mysql) + noise(),
                        tmp_path / "export/data/BILLING_PERIOD=2026-11/part-0.snappy.parquet")
    metered = sum((cost for _, _, cost, _ in _logged(mysql)), Decimal(0))

    status, report = reconcile(capsys, "--cur", str(tmp_path / "export"))

    assert status == 0, report
    assert Decimal(report["totals"]["billed_usd"]) == Decimal(report["totals"]["metered_usd"]) == metered
    assert report["totals"]["rows_differing"] == 0
    days = {(NOW - timedelta(days=d, minutes=7 * i)).date().isoformat() for d in (0, 1, 2) for i in range(4)}
    assert set(_rows(report)) == {(key, day) for key in (ALICE.quota_key, BOB.quota_key) for day in days}
    assert {r["line_item_type"]: Decimal(r["billed_usd"]) for r in report["adjustments"]} == {
        "Tax": Decimal("1.23"), "Credit": Decimal("-0.50")}
    assert Decimal(report["totals"]["unattributed_usd"]) == Decimal("20.00")  # the EC2 line is nowhere


def test_unmetered_unknown_and_unlisted_region_lines_are_named_and_differ(
    env: None, make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    _traffic(make_consumer())
    # Alice billed on a day nothing metered her; Carol, never seen by the consumer, in a region not counted;
    # Bob called once more with no log (a call CloudTrail saw, not metered) and was billed for it.
    old = (NOW - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    carol = f"arn:aws:iam::{ACCOUNT}:user/carol"
    extra = envelope(BOB, NOW - timedelta(minutes=1), seed=999)
    make_consumer().processor.process(records([extra], start=5000))
    lines = billed_as_metered(mysql) + noise() + [
        line(ALICE.quota_key, old, Decimal("0.75")),
        line(carol, old, Decimal("2.00"), region="ap-south-1", usage_type="APS3-Claude-input-tokens"),
        line(CUR_PRINCIPAL[BOB.quota_key], NOW.replace(minute=0, second=0, microsecond=0), Decimal("0.40"))]
    path = tmp_path / "cur.csv.gz"
    path.write_bytes(csv_gz(lines))

    status, report = reconcile(capsys, "--cur", str(path), "--regions", "eu-west-1")

    assert status == 1
    rows = _rows(report)
    alice = rows[(ALICE.quota_key, old.date().isoformat())]
    assert (alice["status"], alice["billed_usd"], alice["metered_usd"]) == ("differ", Decimal("0.75"), 0)
    assert "not metered" in alice["causes"]
    carol_row = rows[(carol, old.date().isoformat())]
    assert "principal not known" in carol_row["causes"] and "unlisted region ap-south-1" in carol_row["causes"]
    bob = rows[(BOB.quota_key, NOW.date().isoformat())]
    assert bob["status"] == "differ" and "1 in eu-west-1" in bob["causes"]  # the call without a log
    assert Decimal(report["totals"]["difference_usd"]) == Decimal("3.15")
    assert report["totals"]["rows_differing"] == 3


def test_an_unpriced_model_is_named(
    env: None, make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    log = load_event("invocation-log-unpriced-model.json")
    log["timestamp"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    make_consumer().processor.process([InputRecord(orjson.dumps(log), "shardId-000000000000", "1")])
    ((key, when, fallback_cost, region),) = _logged(mysql)
    path = write_parquet([line(key, when.replace(minute=0, second=0, microsecond=0), fallback_cost / 2,
                               region=region)], tmp_path / "cur.parquet")

    status, report = reconcile(capsys, "--cur", str(path), "--from", NOW.date().isoformat(),
                               "--to", NOW.date().isoformat())

    assert status == 1
    (row,) = report["drift"]
    assert "unpriced model" in row["causes"] and "claude-future-9" in row["causes"]
    assert Decimal(row["difference_usd"]) == -fallback_cost / 2
    assert Decimal(row["difference_pct"]) == Decimal("-100.00")


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="billing")
        yield client


def test_an_export_on_s3_is_read_whole_parquet_and_csv(  # noqa: PLR0917
    env: None, make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection,
    capsys: pytest.CaptureFixture[str], tmp_path: Path, s3: Any,
) -> None:
    _traffic(make_consumer())
    lines = billed_as_metered(mysql)
    half = len(lines) // 2
    prefix = "cur/bedrock-export/data/BILLING_PERIOD=2026-11"
    s3.put_object(Bucket="billing", Key=f"{prefix}/part-0.snappy.parquet",
                  Body=write_parquet(lines[:half] + noise(), tmp_path / "p.parquet").read_bytes())
    s3.put_object(Bucket="billing", Key=f"{prefix}/part-1.csv.gz", Body=csv_gz(lines[half:]))
    s3.put_object(Bucket="billing", Key="cur/bedrock-export/metadata/BILLING_PERIOD=2026-11/x-Manifest.json",
                  Body=b"{}")

    status, report = reconcile(capsys, "--cur", "s3://billing/cur/bedrock-export")

    assert status == 0, report
    metered = sum((cost for _, _, cost, _ in _logged(mysql)), Decimal(0))
    assert Decimal(report["totals"]["billed_usd"]) == metered


def test_a_cur_without_the_principal_column_or_period_is_an_error(
    env: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = [{k: v for k, v in line(ALICE.quota_key, NOW, Decimal(1)).items()}]
    path = tmp_path / "cur.csv"
    text = io.StringIO()
    writer = csv.DictWriter(text, [c for c in COLUMNS if c != "line_item_iam_principal"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(text.getvalue())

    assert main(["bill", "reconcile", "--cur", str(path)]) == 2
    assert "line_item_iam_principal" in capsys.readouterr().err
    assert main(["bill", "reconcile", "--cur", str(path), "--from", "2026-11-31", "--to", "2026-12-01"]) == 2
    assert main(["bill", "reconcile", "--cur", str(tmp_path / "missing")]) == 2
