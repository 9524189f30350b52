"""The replay's sources on moto: the Kinesis stream by AT_TIMESTAMP across a reshard, and the S3 archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import orjson
import pytest
from botocore.stub import Stubber
from moto.kinesis.models import Shard, Stream

from audit.period import Period, parse_period
from audit.sources import StreamRetentionError, object_keys, s3_batches, stream_batches
from consumer.decode import Decoder
from consumer.events import BedrockCall, InvocationLog
from consumer.ingest import documents_in
from consumer.records import InputRecord

EVENTS = Path(__file__).resolve().parents[1] / "events"
STREAM = "bedrock-usage"
UTC_ZONE = ZoneInfo("UTC")


@pytest.fixture
def kinesis(aws: None) -> Any:
    client = boto3.client("kinesis", region_name="us-east-1")
    client.create_stream(StreamName=STREAM, ShardCount=2)
    return client


@pytest.fixture
def reshard_as_aws(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2's SplitShard differs from Kinesis in two ways that matter here: it routes every record written
    after the split to the closed parent (its shard lookup ignores whether a shard is open), and it moves the
    parent's records into the children (new sequence numbers, new arrival times). On Kinesis a closed parent
    keeps its records until they expire and new records go to the open children. Both are put right here,
    in moto's model, so that the test reads a reshard as Kinesis keeps it."""
    def open_shard_for_key(self: Stream, partition_key: str, explicit_hash_key: str | None) -> Shard:
        key = int(explicit_hash_key) if explicit_hash_key else int(
            hashlib.md5(partition_key.encode(), usedforsecurity=False).hexdigest(), 16)
        return next(s for s in self.shards.values() if s.is_open and s.starting_hash <= key <= s.ending_hash)

    original_split = Stream.split_shard

    def split_keeping_records(self: Stream, shard_to_split: str, new_starting_hash_key: str) -> None:
        parent = self.shards[shard_to_split]
        kept = parent.records
        original_split(self, shard_to_split, new_starting_hash_key)
        parent.records = kept
        for shard in self.shards.values():
            if shard.parent == shard_to_split:
                shard.records.clear()

    monkeypatch.setattr(Stream, "get_shard_for_key", open_shard_for_key)
    monkeypatch.setattr(Stream, "split_shard", split_keeping_records)


def _put(kinesis: Any, phase: str, count: int, keys: int = 5) -> list[str]:
    names = []
    for n in range(count):
        name = f"{phase}-{n}"
        kinesis.put_record(StreamName=STREAM, PartitionKey=f"person-{n % keys}",
                           Data=json.dumps({"name": name, "key": f"person-{n % keys}", "n": n}).encode())
        names.append(name)
    return names


def _instant() -> datetime:
    """A moment strictly between the records written before it and those written after (moto stamps arrival
    with the wall clock, at millisecond precision on the wire)."""
    time.sleep(0.02)
    now = datetime.now(UTC)
    time.sleep(0.02)
    return now


def _read(kinesis: Any, period: Period, **options: Any) -> list[list[InputRecord]]:
    return list(stream_batches(kinesis, STREAM, period, min_call_interval=0, **options))


def _doc(record: InputRecord) -> dict[str, Any]:
    return dict(orjson.loads(record.data))


def _assert_in_order(records: list[InputRecord]) -> None:
    """Each person's records in the order they were written; each shard's in sequence; all by arrival."""
    by_key: dict[str, list[int]] = {}
    by_shard: dict[str, list[int]] = {}
    for record in records:
        by_key.setdefault(_doc(record)["key"], []).append(_doc(record)["n"])
        assert record.shard_id is not None and record.sequence_number is not None
        by_shard.setdefault(record.shard_id, []).append(int(record.sequence_number))
    assert all(ns == sorted(ns) for ns in by_key.values())
    assert all(seqs == sorted(seqs) for seqs in by_shard.values())
    arrivals = [r.arrival_ms or 0 for r in records]
    assert arrivals == sorted(arrivals)


def test_the_stream_gives_the_records_that_arrived_in_the_period_each_once_in_order(kinesis: Any) -> None:
    before = _put(kinesis, "before", 12)
    start = _instant()
    inside = _put(kinesis, "inside", 40)
    end = _instant()
    after = _put(kinesis, "after", 12)

    batches = _read(kinesis, Period(start, end, UTC_ZONE, exact=True), margin=timedelta(0), batch_records=7)

    records = [r for batch in batches for r in batch]
    assert sorted(_doc(r)["name"] for r in records) == sorted(inside)  # all of them, each once, nothing else
    assert all(len(batch) <= 7 for batch in batches) and len(batches) == 6
    assert {r.shard_id for r in records} == {"shardId-000000000000", "shardId-000000000001"}
    _assert_in_order(records)
    assert all(int(start.timestamp() * 1000) - 1 <= (r.arrival_ms or 0) < end.timestamp() * 1000 for r in records)

    # The default margin reads a quarter of an hour past both ends: the late arrivals (the replay itself
    # keeps only the events whose own time is in the period).
    everything = [r for batch in _read(kinesis, Period(start, end, UTC_ZONE, exact=True)) for r in batch]
    assert sorted(_doc(r)["name"] for r in everything) == sorted(before + inside + after)

    # A replay reads what the stream held when it started, never what arrives while it reads.
    so_far = [r for batch in _read(kinesis, Period(start, end, UTC_ZONE, exact=True), now=lambda: end) for r in batch]
    assert sorted(_doc(r)["name"] for r in so_far) == sorted(before + inside)


def test_a_reshard_in_the_period_is_read_across_parents_and_children_each_record_once(
    kinesis: Any, reshard_as_aws: None,
) -> None:
    _put(kinesis, "before", 10)  # in the parents, before the period
    start = _instant()
    first = _put(kinesis, "first", 30)
    # A split, then a scaling to six, in the period: parents closed with records of the period in them.
    kinesis.split_shard(StreamName=STREAM, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**125))
    second = [f"second-{n}" for n in range(30)]
    for n in range(30):  # carrying on each person's numbering, so that order per person can be checked
        kinesis.put_record(StreamName=STREAM, PartitionKey=f"person-{n % 5}",
                           Data=json.dumps({"name": second[n], "key": f"person-{n % 5}", "n": 100 + n}).encode())
    kinesis.update_shard_count(StreamName=STREAM, TargetShardCount=6, ScalingType="UNIFORM_SCALING")
    third = [f"third-{n}" for n in range(30)]
    for n in range(30):
        kinesis.put_record(StreamName=STREAM, PartitionKey=f"person-{n % 5}",
                           Data=json.dumps({"name": third[n], "key": f"person-{n % 5}", "n": 200 + n}).encode())
    end = _instant()
    _put(kinesis, "after", 10)

    shards = kinesis.list_shards(StreamName=STREAM)["Shards"]
    closed = {s["ShardId"] for s in shards if "EndingSequenceNumber" in s["SequenceNumberRange"]}
    assert len(closed) == 4 and len(shards) == 10  # 2 → split → 3 → 6 open: four parents closed

    records = [r for batch in _read(kinesis, Period(start, end, UTC_ZONE, exact=True), margin=timedelta(0))
               for r in batch]

    names = [_doc(r)["name"] for r in records]
    assert sorted(names) == sorted(first + second + third)
    read_from = {r.shard_id for r in records}
    assert closed <= read_from and len(read_from) >= 6  # the closed parents and the children alike
    _assert_in_order(records)
    assert len({(r.shard_id, r.sequence_number) for r in records}) == len(records)


def test_a_period_older_than_the_stream_keeps_is_refused_with_the_way_out(kinesis: Any) -> None:
    now = datetime.now(UTC)
    period = Period(now - timedelta(days=2), now - timedelta(days=1), UTC_ZONE, exact=True)

    with pytest.raises(StreamRetentionError) as refused:
        _read(kinesis, period)

    assert refused.value.hours == 24
    assert "keeps 24 hours" in str(refused.value) and "--s3 or --files" in str(refused.value)


def test_listing_pages_throttling_and_an_expired_iterator_are_handled(aws: None) -> None:
    """What moto does not do (it neither throttles nor expires iterators, and its ListShards pages want the
    stream's name beside the token, which Kinesis refuses), scripted with botocore's Stubber."""
    client = boto3.client("kinesis", region_name="us-east-1")
    now = datetime.now(UTC)
    period = Period(now - timedelta(hours=1), now, UTC_ZONE, exact=True)
    arrival = now - timedelta(minutes=30)

    def record(seq: str) -> dict[str, Any]:
        return {"SequenceNumber": seq, "Data": seq.encode(), "PartitionKey": "p",
                "ApproximateArrivalTimestamp": arrival}

    def shard(n: int) -> dict[str, Any]:
        return {"ShardId": f"shardId-{n}", "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "1"},
                "SequenceNumberRange": {"StartingSequenceNumber": "1"}}

    sleeps: list[float] = []
    with Stubber(client) as stub:
        stub.add_response("describe_stream_summary", {"StreamDescriptionSummary": {
            "StreamName": STREAM, "StreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/x",
            "StreamStatus": "ACTIVE", "RetentionPeriodHours": 24, "StreamCreationTimestamp": now,
            "EnhancedMonitoring": [], "OpenShardCount": 2}})
        stub.add_response("list_shards", {"Shards": [shard(0)], "NextToken": "page-2"},
                          {"StreamName": STREAM, "MaxResults": 1000})
        stub.add_client_error("list_shards", "LimitExceededException")
        stub.add_response("list_shards", {"Shards": [shard(1)]}, {"NextToken": "page-2", "MaxResults": 1000})
        for n in (0, 1):  # each shard started: an iterator at the period's start (less the margin), a page
            stub.add_response("get_shard_iterator", {"ShardIterator": f"it-{n}-a"}, {
                "StreamName": STREAM, "ShardId": f"shardId-{n}", "ShardIteratorType": "AT_TIMESTAMP",
                "Timestamp": period.start - timedelta(minutes=15)})
            stub.add_client_error("get_records", "ProvisionedThroughputExceededException")
            stub.add_response("get_records", {"Records": [record(f"{n}1")], "NextShardIterator": f"it-{n}-b",
                                              "MillisBehindLatest": 5000})
        # Shard 0's iterator expired meanwhile: it resumes after the last record it gave, then ends.
        stub.add_client_error("get_records", "ExpiredIteratorException")
        stub.add_response("get_shard_iterator", {"ShardIterator": "it-0-c"}, {
            "StreamName": STREAM, "ShardId": "shardId-0", "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
            "StartingSequenceNumber": "01"})
        stub.add_response("get_records", {"Records": [record("02")], "MillisBehindLatest": 0})
        stub.add_response("get_records", {"Records": [record("12")], "MillisBehindLatest": 0})  # shard 1 ends
        records = [r for batch in stream_batches(client, STREAM, period, min_call_interval=0, sleep=sleeps.append,
                                                  now=lambda: now) for r in batch]
        stub.assert_no_pending_responses()

    assert sorted(r.sequence_number or "" for r in records) == ["01", "02", "11", "12"]
    assert len(sleeps) == 3 and all(0 <= s <= 5 for s in sleeps)  # one backoff per throttled call


# ---- S3 ------------------------------------------------------------------------------------------------------

ACCOUNT = "123456789012"
BUCKET = "org-trail"


def _gz(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as f:
        f.write(data)
    return out.getvalue()


def _trail_record(event_id: str, when: datetime, source: str = "bedrock.amazonaws.com") -> dict[str, Any]:
    record = json.loads((EVENTS / "cloudtrail-invokemodel-iamuser.json").read_text())
    record = record.get("detail", record)
    record.update(eventID=event_id, eventTime=when.strftime("%Y-%m-%dT%H:%M:%SZ"), eventSource=source)
    return dict(record)


def _log_line(request_id: str, when: datetime) -> bytes:
    record = json.loads((EVENTS / "invocation-log-conversestream.json").read_text())
    record.update(requestId=request_id, timestamp=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return json.dumps(record).encode()


@pytest.fixture
def archive(aws: None) -> tuple[Any, dict[str, bytes]]:
    """Five days of a trail's files and Bedrock's invocation logs, for two regions; plus what is not a log."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    objects: dict[str, bytes] = {}
    for day in range(1, 6):
        for region in ("us-east-1", "eu-west-1"):
            when = datetime(2026, 11, day, 10, 5, tzinfo=UTC)
            calls = [_trail_record(f"evt-{day}-{region}-{i}", when - timedelta(minutes=i)) for i in range(3)]
            trail = {"Records": [*calls, _trail_record(f"ec2-{day}-{region}", when, source="ec2.amazonaws.com")]}
            key = (f"logs/AWSLogs/{ACCOUNT}/CloudTrail/{region}/2026/11/{day:02d}/"
                   f"{ACCOUNT}_CloudTrail_{region}_202611{day:02d}T1005Z_Mu0KsOhtH1ar15ZZ.json.gz")
            objects[key] = _gz(json.dumps(trail).encode())
            lines = b"\n".join(_log_line(f"req-{day}-{region}-{i}", when) for i in range(4)) + b"\n"
            key = (f"logs/AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/{region}/2026/11/{day:02d}/10/"
                   f"202611{day:02d}T100700123Z_3f2c1a9b8d7e6f50.json.gz")
            objects[key] = _gz(lines)
    not_logs = {
        f"logs/AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2026/11/03/{ACCOUNT}_CloudTrail-Digest_x.json.gz": b"{}",
        f"logs/AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/us-east-1/2026/11/03/10/data/big-body.json": b"{}",
    }
    for key, body in {**objects, **not_logs}.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return s3, objects


def test_s3_reads_the_days_of_the_period_and_one_either_side_in_every_region(
    archive: tuple[Any, dict[str, bytes]],
) -> None:
    s3, objects = archive
    period = parse_period("2026-11-03", "2026-11-03", UTC_ZONE)

    keys = object_keys(s3, BUCKET, "logs", period)

    assert set(keys) == {k for k in objects if any(f"/2026/11/{d}/" in k for d in ("02", "03", "04"))}
    assert len(keys) == 12  # 3 days x 2 regions x (a trail file + an invocation-log file)
    assert keys.index(next(k for k in keys if "/11/02/" in k)) < keys.index(next(k for k in keys if "/11/03/" in k))


def test_s3_records_decode_as_ingest_decodes_the_same_files(archive: tuple[Any, dict[str, bytes]]) -> None:
    s3, objects = archive
    period = parse_period("2026-11-03", "2026-11-03", UTC_ZONE)

    batches = list(s3_batches(s3, f"s3://{BUCKET}/logs/", period, batch_records=5))

    records = [r for batch in batches for r in batch]
    assert all(len(batch) <= 5 for batch in batches)
    assert len(records) == 6 * 3 + 6 * 4  # per day and region: 3 Bedrock calls (not the EC2 one), 4 log lines
    decoder = Decoder()
    for key in {r.shard_id for r in records}:
        assert key is not None
        mine = [r for r in records if r.shard_id == key]
        theirs = [d for _, doc in documents_in(objects[key], key) for d in decoder.decode(doc)]
        ours = [d for r in mine for d in decoder.decode(r.data)]
        # The same calls and logs as `ingest` reads from the file; the EC2 record never becomes a dead letter.
        assert ours == [d for d in theirs if isinstance(d, (BedrockCall, InvocationLog))]
        assert all(isinstance(d, (BedrockCall, InvocationLog)) for d in ours)
        assert [r.sequence_number for r in mine] == (["0", "1", "2"] if "/CloudTrail/" in key else ["1", "2", "3", "4"])
    calls = [d for r in records for d in decoder.decode(r.data) if isinstance(d, BedrockCall)]
    assert {c.event_id.split("-")[1] for c in calls} == {"2", "3", "4"}  # the days read: the 3rd, ± one
