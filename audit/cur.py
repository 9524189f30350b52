"""Reading AWS Cost and Usage Report 2.0 data as Data Exports writes it: the Bedrock lines, one small
record each (principal, UTC day, region, usage type, line item type, cost), streamed.

A month's CUR can be gigabytes: Parquet is read one row group at a time and only the columns below, CSV
row by row; the Bedrock rows are picked out of each batch before anything becomes a Python object. A
source is a file, a directory, or `s3://bucket/prefix` (every data file under it: `*.parquet`,
`*.csv`, either gzip'd — Data Exports' layout is `<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/…`).

The columns (CUR 2.0 table dictionary, https://docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2.html):
`line_item_usage_start_date` / `_end_date` (UTC), `line_item_product_code`, `line_item_line_item_type`,
`line_item_usage_type`, `line_item_unblended_cost` or `line_item_net_unblended_cost`,
`product_region_code`, `bill_billing_entity`, `product` (a map: `product_name`), and
`line_item_iam_principal` — the caller's ARN, which Bedrock's IAM principal cost allocation fills for each
inference call once the export includes IAM principal data
(https://docs.aws.amazon.com/bedrock/latest/userguide/cost-mgmt-iam-principal-tracking.html; the column
is listed among CUR 2.0's additions in https://docs.aws.amazon.com/cur/latest/userguide/dataexports-migrate.html).

What counts as Bedrock: `line_item_product_code` AmazonBedrock (models AWS sells), and models sold through
AWS Marketplace on Bedrock (billing entity "AWS Marketplace", product name "… (Amazon Bedrock Edition)",
e.g. Anthropic's on some accounts) — their product code is the Marketplace product's, not Bedrock's.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

BEDROCK_PRODUCT_CODES = frozenset({"AmazonBedrock"})
MARKETPLACE_ENTITY = "AWS Marketplace"
MARKETPLACE_BEDROCK_SUFFIX = "(Amazon Bedrock Edition)"
PRINCIPAL = "line_item_iam_principal"
START, END = "line_item_usage_start_date", "line_item_usage_end_date"
PRODUCT_CODE, ITEM_TYPE, USAGE_TYPE = "line_item_product_code", "line_item_line_item_type", "line_item_usage_type"
REGION, ENTITY, PRODUCT = "product_region_code", "bill_billing_entity", "product"
_REQUIRED = (PRINCIPAL, START, PRODUCT_CODE, ITEM_TYPE, USAGE_TYPE)
_OPTIONAL = (END, REGION, ENTITY, PRODUCT, "product_product_name")
_BATCH_ROWS = 65_536  # Parquet rows per batch: a few MB of the needed columns


class CurError(ValueError):
    """A CUR source that cannot be read or reconciled (no such file, no principal column, monthly data…)."""


class CostColumn(StrEnum):
    """Unblended: usage at the rate billed before discounts (what metering at list prices should equal).
    Net unblended: after discounts (private pricing, EDP) — what was paid; only in exports of payers with
    discounts."""

    UNBLENDED = "unblended"
    NET_UNBLENDED = "net-unblended"

    @property
    def column(self) -> str:
        return "line_item_unblended_cost" if self is CostColumn.UNBLENDED else "line_item_net_unblended_cost"


@dataclass(frozen=True, slots=True)
class CurLine:
    principal: str  # line_item_iam_principal as written; "" when the line has none (not an inference call)
    day: date  # the UTC day of line_item_usage_start_date
    region: str  # product_region_code ("" when not given)
    usage_type: str  # e.g. USE1-Claude4.6Sonnet-input-tokens
    item_type: str  # Usage, Tax, Credit, Refund, DiscountedUsage…
    cost: Decimal  # dollars, exact as written


# --- where the files are ---------------------------------------------------------------------------------

_DATA_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".csv.gzip", ".parquet.gz")


def _is_data(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(_DATA_SUFFIXES) and "manifest" not in lower


def local_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise CurError(f"{path}: no such file or directory")
    found = sorted(p for p in path.rglob("*") if p.is_file() and _is_data(p.name))
    if not found:
        raise CurError(f"{path}: no CUR data files (*.parquet, *.csv, *.csv.gz) under it")
    return found


def parse_s3(url: str) -> tuple[str, str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise CurError(f"{url}: expected s3://bucket/prefix")
    return bucket, prefix


def s3_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys = [obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for obj in page.get("Contents", []) if _is_data(obj["Key"])]
    if not keys:
        raise CurError(f"s3://{bucket}/{prefix}: no CUR data files under it")
    return sorted(keys)


# --- reading ---------------------------------------------------------------------------------------------


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CurError(f"{START}: {text!r} is not a time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _money(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    # Parquet exports hold costs as doubles: str() gives the shortest text that reads back as the same
    # double, i.e. the number as AWS wrote it, where Decimal(float) would carry the binary error along.
    try:
        return Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise CurError(f"cost {value!r} is not a number") from None


def _product_name(row: dict[str, Any]) -> str:
    name = row.get("product_product_name")
    if name:
        return str(name)
    product = row.get(PRODUCT)
    if isinstance(product, str) and product.startswith("{"):  # CSV: the map column as JSON
        try:
            product = json.loads(product)
        except ValueError:
            return ""
    if isinstance(product, list):  # Parquet map → [(key, value), …]
        product = dict(product)
    return str(product.get("product_name") or "") if isinstance(product, dict) else ""


def is_bedrock(row: dict[str, Any], codes: frozenset[str]) -> bool:
    if row.get(PRODUCT_CODE) in codes:
        return True
    return row.get(ENTITY) == MARKETPLACE_ENTITY and _product_name(row).endswith(MARKETPLACE_BEDROCK_SUFFIX)


def to_line(row: dict[str, Any], cost: CostColumn) -> CurLine:
    start = _timestamp(row[START])
    end = row.get(END)
    # A monthly export's line covers the whole month: no day could be told, so no day can be reconciled.
    if end not in (None, "") and _timestamp(end) - start > timedelta(days=1):
        raise CurError(f"a line covers {start:%Y-%m-%d} to {_timestamp(end):%Y-%m-%d}: the export's time"
                       " granularity must be hourly or daily to reconcile per day")
    return CurLine(str(row.get(PRINCIPAL) or ""), start.date(), str(row.get(REGION) or ""),
                   str(row.get(USAGE_TYPE) or ""), str(row.get(ITEM_TYPE) or ""), _money(row.get(cost.column)))


def _check_columns(names: Sequence[str], cost: CostColumn, where: str) -> None:
    missing = [c for c in (*_REQUIRED, cost.column) if c not in names]
    if PRINCIPAL in missing:
        raise CurError(f"{where}: no {PRINCIPAL} column — the export must include IAM principal data"
                       " (edit the CUR 2.0 export in Data Exports and turn IAM principal data on)")
    if missing:
        raise CurError(f"{where}: not CUR 2.0 data, missing column(s) {', '.join(missing)}")


def _parquet_lines(source: Any, where: str, cost: CostColumn, codes: frozenset[str]) -> Iterator[CurLine]:
    import pyarrow.compute as pc  # noqa: PLC0415 - only the Parquet path needs pyarrow
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        parquet = pq.ParquetFile(source)
    except Exception as error:  # pyarrow raises ArrowInvalid / OSError kinds for a file that is not Parquet
        raise CurError(f"{where}: not a Parquet file ({error})") from None
    names = parquet.schema_arrow.names
    _check_columns(names, cost, where)
    wanted = [c for c in (*_REQUIRED, *_OPTIONAL, cost.column) if c in names]
    marketplace = ENTITY in names and (PRODUCT in names or "product_product_name" in names)
    for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=wanted):
        # Pick the Bedrock rows (and the Marketplace rows, checked by name below) in Arrow, before Python.
        mask = pc.is_in(batch.column(PRODUCT_CODE), value_set=_pa_strings(codes))
        if marketplace:
            mask = pc.or_(mask, pc.equal(batch.column(ENTITY), MARKETPLACE_ENTITY))
        picked = batch.filter(pc.fill_null(mask, False))
        for row in picked.to_pylist():
            if is_bedrock(row, codes):
                yield to_line(row, cost)


def _pa_strings(values: frozenset[str]) -> Any:
    import pyarrow as pa  # noqa: PLC0415

    return pa.array(sorted(values), type=pa.string())


def _csv_lines(text: IO[str], where: str, cost: CostColumn, codes: frozenset[str]) -> Iterator[CurLine]:
    reader = csv.DictReader(text)
    _check_columns(reader.fieldnames or [], cost, where)
    for row in reader:
        if is_bedrock(row, codes):
            yield to_line(row, cost)


def _opened_text(raw: IO[bytes], gzipped: bool) -> IO[str]:
    return io.TextIOWrapper(gzip.GzipFile(fileobj=raw) if gzipped else raw, encoding="utf-8", newline="")


def _gzipped(name: str) -> bool:
    return name.lower().endswith((".gz", ".gzip"))


def file_lines(path: Path, cost: CostColumn, codes: frozenset[str]) -> Iterator[CurLine]:
    name = path.name.lower()
    if ".parquet" in name and not _gzipped(name):
        yield from _parquet_lines(str(path), str(path), cost, codes)
        return
    with path.open("rb") as raw:
        if ".parquet" in name:  # a gzip'd Parquet file: unpacked to a temporary file, read by row group
            yield from _spooled_parquet(gzip.GzipFile(fileobj=raw), str(path), cost, codes)
        else:
            yield from _csv_lines(_opened_text(raw, _gzipped(name)), str(path), cost, codes)


def _spooled_parquet(body: Any, where: str, cost: CostColumn, codes: frozenset[str]) -> Iterator[CurLine]:
    """Parquet needs a seekable file (its footer is at the end): copy to disk, never to memory."""
    fd, name = tempfile.mkstemp(suffix=".parquet", prefix="bedrock-cur-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := body.read(1 << 20):
                out.write(chunk)
        yield from _parquet_lines(name, where, cost, codes)
    finally:
        os.unlink(name)


def s3_lines(s3: Any, bucket: str, key: str, cost: CostColumn, codes: frozenset[str]) -> Iterator[CurLine]:
    where = f"s3://{bucket}/{key}"
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        if ".parquet" in key.lower():
            yield from _spooled_parquet(gzip.GzipFile(fileobj=body) if _gzipped(key) else body, where, cost, codes)
        else:  # streamed: the body is read as the rows are
            yield from _csv_lines(_opened_text(body, _gzipped(key)), where, cost, codes)
    finally:
        body.close()


def read(source: str, cost: CostColumn, *, codes: frozenset[str] = BEDROCK_PRODUCT_CODES,
         s3: Callable[[], Any] | None = None) -> Iterator[CurLine]:
    """Every Bedrock line of a CUR source (a path or s3://bucket/prefix), file after file."""
    if source.startswith("s3://"):
        if s3 is None:
            raise CurError("an s3:// source needs an S3 client")
        client = s3()
        bucket, prefix = parse_s3(source)
        for key in s3_keys(client, bucket, prefix):
            yield from s3_lines(client, bucket, key, cost, codes)
        return
    for path in local_files(Path(source)):
        yield from file_lines(path, cost, codes)
