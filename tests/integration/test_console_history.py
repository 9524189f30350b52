"""The console's readings of MySQL on their own: a day's hours counted from the quota day's local midnight,
in a zone half an hour off UTC too (a UTC hour would straddle two of its hours)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pymysql

from console.history import day_hours

KOLKATA = ZoneInfo("Asia/Kolkata")  # UTC+05:30


def _call(cur: pymysql.cursors.Cursor, at_utc: datetime, day: date, n: int) -> None:
    cur.execute("INSERT INTO bedrock_calls (event_date, event_id, event_time, principal_id, team, account_id,"
                " operation, model_ref, region) VALUES (%s, %s, %s, 1, 'alpha', '123456789012', 'Converse', 1,"
                " 'ap-south-1')", (day, f"e{n}", at_utc))


def test_a_days_hours_in_a_half_hour_zone(mysql: pymysql.connections.Connection) -> None:
    day = date(2026, 12, 1)  # 2026-11-30 18:30 UTC to 2026-12-01 18:30 UTC
    with mysql.cursor() as cur:
        _call(cur, datetime(2026, 11, 30, 18, 30), day, 1)  # local 00:00: the first hour
        _call(cur, datetime(2026, 11, 30, 19, 29), day, 2)  # local 00:59: still the first
        _call(cur, datetime(2026, 12, 1, 18, 15), day, 3)  # local 23:45: the last hour, in UTC hour 18
        cur.execute("INSERT INTO invocation_logs (event_date, event_time, request_id, principal_id, team, account_id,"
                    " operation, model_ref, region, price_scope, tier, input_tokens, output_tokens,"
                    " cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cost_usd, price_status,"
                    " cache_split) VALUES (%s, %s, 'r1', 1, 'alpha', '123456789012', 'Converse', 1, 'ap-south-1',"
                    " 'regional', 'standard', 10, 10, 0, 0, 0, 0.25, 'priced', 'body')",
                    (day, datetime(2026, 12, 1, 18, 20)))
    mysql.commit()

    hours = day_hours(mysql, "principal_id", 1, day, KOLKATA)

    assert len(hours) == 24
    assert hours[0].hour == "2026-11-30T18:30:00+00:00" and hours[0].requests == 2
    assert hours[-1].hour == "2026-12-01T17:30:00+00:00" and hours[-1].requests == 1
    assert hours[-1].cost_usd == Decimal("0.25")
    assert sum(h.requests for h in hours) == 3
