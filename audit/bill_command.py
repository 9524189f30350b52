"""`bedrockctl bill reconcile --cur PATH|s3://bucket/prefix [--from D --to D]`: the argument parsing and the
run; the reading is audit/cur.py's, the comparison audit/bill.py's."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from zoneinfo import ZoneInfo

from botocore.exceptions import BotoCoreError, ClientError
from pymysql import MySQLError

from audit.bill import Billed, Keys, Tolerance, ToleranceError, metered, reconcile, role_keys
from audit.cur import BEDROCK_PRODUCT_CODES, CostColumn, CurError, read
from audit.output import Format, add_output_arguments, emit
from audit.period import PeriodError, parse_period
from audit.settings import AuditSettings
from bedrock_usage import aws, db
from bedrock_usage.commands import CommandGroup
from bedrock_usage.config import SettingsError, regions

UTC_ZONE = ZoneInfo("UTC")


def run(args: argparse.Namespace, settings: AuditSettings) -> int:
    try:
        return _run(args, settings)
    except (PeriodError, CurError, ToleranceError, SettingsError, OSError) as error:
        print(f"bedrockctl bill reconcile: {error}", file=sys.stderr)
    except (ClientError, BotoCoreError) as error:
        print(f"bedrockctl bill reconcile: reading {args.cur}: {error}", file=sys.stderr)
    except MySQLError as error:
        print(f"bedrockctl bill reconcile: MySQL: {error}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace, settings: AuditSettings) -> int:
    if (args.from_ is None) != (args.to is None):
        raise PeriodError("give both --from and --to, or neither (then: every day the CUR holds)")
    # UTC days: the CUR's hours are UTC (see audit/bill.py).
    period = parse_period(args.from_, args.to, UTC_ZONE) if args.from_ else None
    tolerance = Tolerance.parse(args.tolerance) if args.tolerance else Tolerance()
    listed = set(regions(args.regions, "--regions")) | {settings.aws_region} if args.regions is not None else None
    cost = CostColumn(args.cost_column)
    conn = db.connect(settings.mysql)
    try:
        bill = Billed(Keys(settings.session_roles, role_keys(conn)))
        bill.add(read(args.cur, cost, codes=BEDROCK_PRODUCT_CODES | set(args.product_code),
                      s3=lambda: aws.client(settings, "s3")), period)
        if period is not None:
            start, end = period.start.date(), period.end.date()
        elif bill.first is not None and bill.last is not None:
            start, end = bill.first, bill.last + timedelta(days=1)
        else:
            raise CurError(f"{args.cur}: no Bedrock lines in it")
        record = metered(conn, start, end, (key for key, _ in bill.usage))
    finally:
        conn.close()
    notes = [f"CUR: {args.cur}, {bill.lines} Bedrock lines, cost column line_item_{cost.value.replace('-', '_')}_cost",
             "days are UTC days on both sides (the CUR's hours are UTC); the CUR's latest day may be incomplete"]
    if listed is None:
        listed = record.regions
        notes.append("a region is 'unlisted' when the record holds no call from it in the period (give --regions,"
                     " i.e. SOURCE_REGIONS, to check against the list instead)")
    title = (f"Bedrock cost billed (CUR 2.0) against metered (invocation logs), per principal and UTC day,"
             f" {start} to {end - timedelta(days=1)}")
    report = reconcile(bill, record, listed=listed, tolerance=tolerance, title=title, notes=notes)
    return emit(report, Format(args.format), args.out)


def register(commands: CommandGroup) -> None:
    bill = commands.group("bill", "the AWS bill (Cost and Usage Report 2.0) against the metered cost")
    p = bill.add("reconcile", run, "billed Bedrock cost per IAM principal and UTC day against the metered cost;"
                 " exit 0 within the tolerance, 1 when they differ, 2 on error", settings=AuditSettings)
    p.add_argument("--cur", required=True, metavar="PATH|s3://BUCKET/PREFIX",
                   help="CUR 2.0 data: a Parquet or CSV file (gzip'd or not), a directory or an S3 prefix of them")
    p.add_argument("--from", dest="from_", metavar="D", help="first UTC day (YYYY-MM-DD or YYYY-MM);"
                   " default: the CUR's first day")
    p.add_argument("--to", metavar="D", help="last UTC day, included; default: the CUR's last day")
    p.add_argument("--cost-column", choices=[c.value for c in CostColumn], default=CostColumn.UNBLENDED.value,
                   help="unblended (default: usage at the rate billed, what list-price metering should equal) or"
                        " net-unblended (after discounts)")
    p.add_argument("--tolerance", action="append", metavar="X|X%",
                   help="per row, in dollars (0.01) or percent of the bill (1%%); may be given once of each;"
                        " default: $0.01 or 1%%")
    p.add_argument("--regions", metavar="R1,R2", help="the regions whose calls are counted (SOURCE_REGIONS);"
                   " AWS_REGION is always counted; default: the regions the record holds calls from")
    p.add_argument("--product-code", action="append", default=[], metavar="CODE",
                   help="another line_item_product_code to count as Bedrock (besides AmazonBedrock and"
                        " Marketplace '(Amazon Bedrock Edition)' products)")
    add_output_arguments(p)
