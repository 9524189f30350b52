"""Where a replay reads a period from: the Kinesis stream itself, or the S3 archives a trail and Bedrock write.

Both yield batches of `InputRecord`s, the processor core's input, and neither filters by event time: the replay
does, on the decoded events. They only bound what they read, generously, so that nothing of the period is
missed (an event reaches the stream, or a log file, minutes after it happens).

The stream (`stream_batches`) is read directly, with one `AT_TIMESTAMP` iterator per shard, never through
the live consumer's KCL leases (no lease table, no checkpoint: the live consumer never notices). Every shard
the listing holds is read, closed parents of a reshard included; a child only after all its parents are
exhausted, and the shards' records merged by arrival time, so that each person's events (one partition key)
come in the order the live consumer saw them, and everyone's nearly so.

The S3 archives (`s3_batches`) are read day by day under `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`
and `AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/`, for every account and region found,
an organisation trail's `AWSLogs/<org-id>/<account>/` included.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from botocore.exceptions import ClientError

from audit.period import Period
from bedrock_usage.retry import backoff_delay
from consumer.ingest import documents_in
from consumer.records import InputRecord, in_batches

log = logging.getLogger(__name__)

# Events reach Kinesis minutes after they happen (CloudTrail to EventBridge, invocation logs through a
# CloudWatch Logs subscription): read this far past the period's end. The same margin before its start
# costs little and covers a clock skew between the event's own time and the stream's arrival time.
MARGIN = timedelta(minutes=15)
# Kinesis allows 5 GetRecords calls a second per shard, and returns up to 10,000 records (10 MB) a call.
_MIN_CALL_INTERVAL = 0.2
_PAGE = 10_000
# Named throttling and transient codes only: anything else is a bug or a permission, and propagates.
_THROTTLED = frozenset({"ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException",
                        "KMSThrottlingException", "InternalFailure", "ServiceUnavailable"})
_MAX_ATTEMPTS = 20
# What the replay's role needs, beside the calls that need it.
STREAM_PERMISSIONS = ("kinesis:DescribeStreamSummary", "kinesis:ListShards", "kinesis:GetShardIterator",
                      "kinesis:GetRecords")
S3_PERMISSIONS = ("s3:ListBucket", "s3:GetObject")


class SourceError(Exception):
    """What the command shows before exiting 2: a source that cannot give the period."""


class StreamRetentionError(SourceError):
    def __init__(self, stream: str, hours: int, oldest: datetime, start: datetime) -> None:
        super().__init__(
            f"the stream {stream} keeps {hours} hours (records since {oldest:%Y-%m-%d %H:%M} UTC) and the period"
            f" starts at {start:%Y-%m-%d %H:%M} UTC: use --s3 or --files for older periods")
        self.hours = hours


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _call(fn: Callable[[], dict[str, Any]], sleep: Callable[[float], None]) -> dict[str, Any]:
    """One AWS call, retried with capped jittered backoff on throttling (a replay beside the live consumer
    shares the shards' 5 reads a second with it)."""
    for attempt in itertools.count(1):
        try:
            return fn()
        except ClientError as error:
            if _error_code(error) not in _THROTTLED or attempt >= _MAX_ATTEMPTS:
                raise
            sleep(backoff_delay(attempt, cap=5.0))
    raise AssertionError("unreachable")


# ---- the stream ----------------------------------------------------------------------------------------------

@dataclass
class _Shard:
    shard_id: str
    parents: tuple[str, ...]
    iterator: str | None = None
    last_sequence: str | None = None
    page: deque[InputRecord] = field(default_factory=deque)
    ended: bool = False      # nothing more to read: its end, caught up, or past the stop time
    past_stop: bool = False  # it held records that arrived after the stop time
    last_call: float = 0.0


def list_shards(kinesis: Any, stream: str, *, page_size: int = 1000,
                sleep: Callable[[float], None] = time.sleep) -> list[dict[str, Any]]:
    """Every shard the stream holds, open and closed (closed ones stay listed until their records expire).

    Kinesis refuses StreamName beside NextToken: the following pages name the token alone."""
    shards: list[dict[str, Any]] = []
    request: dict[str, Any] = {"StreamName": stream, "MaxResults": page_size}
    while True:
        answer = _call(lambda r=request: kinesis.list_shards(**r), sleep)  # type: ignore[misc]
        shards.extend(answer.get("Shards", []))
        token = answer.get("NextToken")
        if not token:
            return shards
        request = {"NextToken": token, "MaxResults": page_size}


def check_retention(kinesis: Any, stream: str, period: Period, now: datetime) -> None:
    """Raise StreamRetentionError when the stream no longer holds the period's start."""
    hours = int(kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["RetentionPeriodHours"])
    oldest = now - timedelta(hours=hours)
    if period.start < oldest:
        raise StreamRetentionError(stream, hours, oldest, period.start)


def stream_batches(
    kinesis: Any, stream: str, period: Period, *, batch_records: int = 10_000, margin: timedelta = MARGIN,
    page_records: int = _PAGE, min_call_interval: float = _MIN_CALL_INTERVAL,
    now: Callable[[], datetime] = lambda: datetime.now(UTC), sleep: Callable[[float], None] = time.sleep,
) -> Iterator[list[InputRecord]]:
    """The records that arrived in [period.start - margin, period.end + margin) and before the call, every
    shard once, merged by arrival time. Raises StreamRetentionError (before reading anything) when the stream
    no longer holds the period's start."""
    started = now()
    check_retention(kinesis, stream, period, started)
    # What arrives after the replay started is not read: an open shard under steady traffic would otherwise
    # keep it reading until the period's end plus the margin, when the period is today's.
    stop = min(period.end + margin, started)
    reader = _StreamReader(kinesis, stream, start=period.start - margin, stop=stop,
                           page_records=page_records, min_call_interval=min_call_interval, sleep=sleep)
    yield from in_batches(reader.records(list_shards(kinesis, stream, sleep=sleep)), batch_records)


class _StreamReader:
    def __init__(self, kinesis: Any, stream: str, *, start: datetime, stop: datetime, page_records: int,
                 min_call_interval: float, sleep: Callable[[float], None]) -> None:
        self._kinesis, self._stream = kinesis, stream
        self._start, self._stop_ms = start, int(stop.timestamp() * 1000)
        self._page, self._interval, self._sleep = page_records, min_call_interval, sleep

    def records(self, listing: Iterable[dict[str, Any]]) -> Iterator[InputRecord]:
        listed = list(listing)
        ids = {s["ShardId"] for s in listed}
        # A parent no longer listed has expired: its child is read at once.
        shards = {s["ShardId"]: _Shard(s["ShardId"], tuple(
            p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p and p in ids)) for s in listed}
        children: dict[str, list[str]] = {}
        for shard in shards.values():
            for parent in shard.parents:
                children.setdefault(parent, []).append(shard.shard_id)
        done: set[str] = set()
        heads: list[tuple[int, int, str]] = []  # (arrival ms, order, shard): the merge
        order = itertools.count()

        def start(shard: _Shard) -> None:
            if self._fill(shard):
                heapq.heappush(heads, (shard.page[0].arrival_ms or 0, next(order), shard.shard_id))
            else:
                finish(shard)

        def finish(shard: _Shard) -> None:
            done.add(shard.shard_id)
            for child_id in children.get(shard.shard_id, ()):
                child = shards[child_id]
                if shard.past_stop:
                    # The parent closed after the stop time, so everything in the child arrived later still.
                    child.past_stop = True
                if all(p in done for p in child.parents):
                    if child.past_stop:
                        child.ended = True
                        finish(child)
                    else:
                        start(child)

        for shard in list(shards.values()):
            if not shard.parents and shard.shard_id not in done:
                start(shard)
        while heads:
            _, _, shard_id = heapq.heappop(heads)
            shard = shards[shard_id]
            yield shard.page.popleft()
            if self._fill(shard):
                heapq.heappush(heads, (shard.page[0].arrival_ms or 0, next(order), shard_id))
            else:
                finish(shard)
        unread = set(shards) - done
        if unread:  # a cycle in the listing's lineage would leave shards unread: say so rather than skip them
            raise SourceError(f"shards never reached through their parents: {sorted(unread)}")

    def _fill(self, shard: _Shard) -> bool:
        """Make sure the shard's page holds a record if the shard has one left; False when it is exhausted."""
        while not shard.page and not shard.ended:
            self._read(shard)
        return bool(shard.page)

    def _read(self, shard: _Shard) -> None:
        if shard.iterator is None:
            shard.iterator = self._iterator(shard)
            if shard.iterator is None:
                shard.ended = True
                return
        wait = shard.last_call + self._interval - time.monotonic()
        if wait > 0:
            self._sleep(wait)
        try:
            answer = _call(lambda: self._kinesis.get_records(ShardIterator=shard.iterator, Limit=self._page),
                           self._sleep)
        except ClientError as error:
            if _error_code(error) != "ExpiredIteratorException":
                raise
            # Iterators live five minutes: a slow replay resumes after the last record it took.
            shard.iterator = None
            return
        finally:
            shard.last_call = time.monotonic()
        records = answer.get("Records", [])
        for record in records:
            arrival = int(record["ApproximateArrivalTimestamp"].timestamp() * 1000)
            if arrival >= self._stop_ms:
                shard.ended = shard.past_stop = True
                return
            shard.page.append(InputRecord(bytes(record["Data"]), shard_id=shard.shard_id,
                                          sequence_number=record["SequenceNumber"], arrival_ms=arrival))
            shard.last_sequence = record["SequenceNumber"]
        shard.iterator = answer.get("NextShardIterator")
        # A closed shard's end has no next iterator; an open shard is done once caught up with its writers.
        if shard.iterator is None or (not records and answer.get("MillisBehindLatest") == 0):
            shard.ended = True

    def _iterator(self, shard: _Shard) -> str | None:
        request: dict[str, Any] = {"StreamName": self._stream, "ShardId": shard.shard_id}
        if shard.last_sequence is None:
            request.update(ShardIteratorType="AT_TIMESTAMP", Timestamp=self._start)
        else:
            request.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=shard.last_sequence)
        try:
            answer = _call(lambda: self._kinesis.get_shard_iterator(**request), self._sleep)
        except ClientError as error:
            if _error_code(error) != "ResourceNotFoundException":
                raise
            log.warning("shard expired while the replay read the stream", extra={"shard": shard.shard_id})
            return None
        iterator = answer.get("ShardIterator")
        return str(iterator) if iterator else None


# ---- S3 ------------------------------------------------------------------------------------------------------

_SERVICES = ("CloudTrail", "BedrockModelInvocationLogs")
_BEDROCK = "bedrock.amazonaws.com"
_ACCOUNT = re.compile(r"^\d{12}$")
_STAMP = re.compile(r"_(\d{8}T\d{4,6})Z_")


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix` → (bucket, prefix without slashes at its ends)."""
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise SourceError(f"{url!r}: expected s3://bucket or s3://bucket/prefix")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


def s3_batches(s3: Any, url: str, period: Period, *, batch_records: int = 5000,
               sleep: Callable[[float], None] = time.sleep) -> Iterator[list[InputRecord]]:
    """The records of every trail log file and invocation log file delivered on the UTC days the period
    touches, one day either side (files are delivered minutes after their events, so an event's file can sit
    under the next day's folder). Each file's records in order; the files in order of delivery."""
    bucket, prefix = parse_s3_url(url)

    def records() -> Iterator[InputRecord]:
        for key in object_keys(s3, bucket, prefix, period, sleep=sleep):
            answer = _call(lambda k=key: s3.get_object(Bucket=bucket, Key=k), sleep)  # type: ignore[misc]
            arrival = int(answer["LastModified"].timestamp() * 1000)
            yield from object_records(key, answer["Body"].read(), arrival)

    yield from in_batches(records(), batch_records)


def object_records(key: str, raw: bytes, arrival_ms: int | None = None) -> Iterator[InputRecord]:
    """One S3 object's input records, read as `bedrockctl ingest` reads a file (gzip'd or not, one document or
    one per line); a trail's log file is cut into its records, numbered from 0 (the record's index in the
    file), each one input record, so that a batch never holds a whole file and a dead letter points at it."""
    for number, document in documents_in(raw, key.rsplit("/", 1)[-1]):
        records = _trail_records(document)
        if records is None:
            yield InputRecord(document, shard_id=key, sequence_number=str(number), arrival_ms=arrival_ms)
            continue
        for index, record in enumerate(records):
            # A trail logs every service; only Bedrock's calls reach the stream (the EventBridge rule's
            # pattern), and only those are replayed: the rest would all be dead letters.
            if isinstance(record, dict) and record.get("eventSource") != _BEDROCK:
                continue
            yield InputRecord(orjson.dumps(record), shard_id=key, sequence_number=str(index), arrival_ms=arrival_ms)


def _trail_records(document: bytes) -> list[Any] | None:
    if not document.lstrip().startswith(b"{") or b'"Records"' not in document[:4096]:
        return None
    try:
        parsed = orjson.loads(document)
    except orjson.JSONDecodeError:
        return None  # the decoder turns it into a dead letter, with its reason
    records = parsed.get("Records") if isinstance(parsed, dict) else None
    return records if isinstance(records, list) else None


def object_keys(s3: Any, bucket: str, prefix: str, period: Period, *,
                sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """The keys of the log files for the period's UTC days (± one), every account and region, in delivery
    order: by the time in the file name or folder, then by key."""
    touched = utc_days(period)
    days = [touched[0] - timedelta(days=1), *touched, touched[-1] + timedelta(days=1)]
    root = f"{prefix}/AWSLogs/" if prefix and not prefix.endswith("AWSLogs") else f"{prefix}/" if prefix else "AWSLogs/"
    keys: list[str] = []
    for account in _accounts(s3, bucket, root, sleep):
        for service in _SERVICES:
            for region in _folders(s3, bucket, f"{account}{service}/", sleep):
                for day in days:
                    keys.extend(k for k in _keys(s3, bucket, f"{region}{day:%Y/%m/%d}/", sleep) if _is_log_file(k))
    return sorted(keys, key=_delivery_order)


def _accounts(s3: Any, bucket: str, root: str, sleep: Callable[[float], None]) -> list[str]:
    """`AWSLogs/<account>/`, or an organisation trail's `AWSLogs/<org-id>/<account>/`."""
    accounts: list[str] = []
    for folder in _folders(s3, bucket, root, sleep):
        name = folder[len(root):].rstrip("/")
        if _ACCOUNT.match(name):
            accounts.append(folder)
        elif name.startswith("o-"):
            accounts.extend(f for f in _folders(s3, bucket, folder, sleep) if _ACCOUNT.match(f[len(folder):-1]))
    return accounts


def _folders(s3: Any, bucket: str, prefix: str, sleep: Callable[[float], None]) -> list[str]:
    folders: list[str] = []
    for page in _pages(s3, bucket, prefix, "/", sleep):
        folders.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    return folders


def _keys(s3: Any, bucket: str, prefix: str, sleep: Callable[[float], None]) -> Iterator[str]:
    for page in _pages(s3, bucket, prefix, None, sleep):
        yield from (o["Key"] for o in page.get("Contents", []))


def _pages(s3: Any, bucket: str, prefix: str, delimiter: str | None,
           sleep: Callable[[float], None]) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        request["Delimiter"] = delimiter
    while True:
        page = _call(lambda r=request: s3.list_objects_v2(**r), sleep)  # type: ignore[misc]
        yield page
        if not page.get("IsTruncated"):
            return
        request = {**request, "ContinuationToken": page["NextContinuationToken"]}


def _is_log_file(key: str) -> bool:
    # Bedrock writes bodies too large for the log beside it, under a `data/` folder: those are not records.
    return key.endswith((".json.gz", ".json")) and "/data/" not in key


def _delivery_order(key: str) -> tuple[str, str]:
    """A trail's file names its delivery minute (`..._20261103T1005Z_...`); an invocation log's folder names its
    hour (`.../2026/11/03/10/`). Files of several accounts and regions are read as they were delivered."""
    stamp = _STAMP.search(key.rsplit("/", 1)[-1])
    if stamp:
        return stamp.group(1), key
    parts = key.split("/")
    digits = [p for p in parts[:-1] if p.isdigit() and len(p) in (2, 4)]
    hour = "".join(digits[-4:])  # YYYY MM DD HH
    return (f"{hour[:8]}T{hour[8:]}" if len(hour) == 10 else hour[:8]), key


def utc_days(period: Period) -> list[date]:
    """The UTC days the period touches (what the archives' folders are named by)."""
    first, last = period.start.astimezone(UTC).date(), (period.end - timedelta(microseconds=1)).astimezone(UTC).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
