"""A batch's plan: the quota day of every call and log, their MySQL rows and their Redis groups (one per
person and day). Pure but for a small cache; the processor runs it on the caller's thread."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bedrock_usage.periods import Periods, periods_of
from bedrock_usage.pricing.rates import Charge
from bedrock_usage.quota import Scope
from consumer.counters import Group, event_argument, log_argument
from consumer.directory import Assignment
from consumer.events import BedrockCall, InvocationLog
from consumer.metering import Metered
from consumer.records import InputRecord
from consumer.rows import CallRow, LogRow


class Planner:
    def __init__(self, timezone_: ZoneInfo, grace_days: int) -> None:
        self._tz = timezone_
        self._grace = timedelta(days=grace_days)
        self._periods: dict[int, Periods] = {}

    def period(self, instant: datetime) -> Periods:
        # Cached per quarter hour: every UTC offset in use is a multiple of 15 minutes, so all instants
        # of a bucket share their local day.
        bucket = int(instant.timestamp()) // 900
        periods = self._periods.get(bucket)
        if periods is None:
            if len(self._periods) > 10_000:
                self._periods.clear()
            periods = self._periods[bucket] = periods_of(instant, self._tz)
        return periods

    def rows(self, calls: Sequence[tuple[BedrockCall, InputRecord]], entries: dict[str, Assignment]) -> list[CallRow]:
        rows = []
        for call, _ in calls:
            entry = entries[call.principal.key]
            rows.append(CallRow(
                self.period(call.event_time).day, call.event_id, call.event_time.replace(tzinfo=None), entry.id,
                entry.team, call.account_id, call.operation, call.model_id, call.region, call.inference_region,
                call.source_ip, call.user_agent, call.request_id, call.error_code,
            ))
        return rows

    def log_rows(
        self, logs: Sequence[tuple[InvocationLog, InputRecord]], metered: Metered, entries: dict[str, Assignment]
    ) -> list[LogRow]:
        rows = []
        for (entry, _), charge in zip(logs, metered.charges, strict=True):
            assigned = entries[entry.principal.key]
            rows.append(LogRow(
                self.period(entry.timestamp).day, entry.timestamp.replace(tzinfo=None), entry.request_id,
                assigned.id, assigned.team, entry.account_id, entry.operation, entry.model_id, charge.price_model,
                entry.region, entry.inference_region, charge.scope.value, entry.tier, entry.error_code,
                entry.tokens, charge.nanos, charge.status.value, entry.cache_split.value,
            ))
        return rows

    def groups(
        self, calls: Sequence[tuple[BedrockCall, InputRecord]], logs: Sequence[tuple[InvocationLog, InputRecord]],
        metered: Metered, entries: dict[str, Assignment], now: datetime,
    ) -> tuple[list[Group], int]:
        """The Redis groups of the calls and logs (one per person and day; their scripts hand the new events
        to the team), and how many are too old for Redis."""
        today = self.period(now)
        groups: dict[tuple[str, date], Group] = {}
        beyond = 0
        events: list[tuple[datetime, str, BedrockCall | InvocationLog, Charge | None]] = [
            (call.event_time, call.principal.key, call, None) for call, _ in calls]
        events += [(entry.timestamp, entry.principal.key, entry, charge)
                   for (entry, _), charge in zip(logs, metered.charges, strict=True)]
        for event_time, key, item, charge in events:
            periods = self.period(event_time)
            expire_at = periods.month_ends_at + self._grace
            if expire_at <= now:
                # Redis no longer holds that month: the call is recorded in MySQL only (rebuildable).
                beyond += 1
                continue
            group = groups.get((key, periods.day))
            if group is None:
                group = groups[(key, periods.day)] = Group(
                    scope=Scope.USER,
                    subject=key,
                    team=entries[key].team,
                    day_id=periods.day_id,
                    month_id=periods.month_id,
                    expire_at=int(expire_at.timestamp()),
                    # Late calls still count, but a quota of a period already over decides nothing.
                    decide_daily=periods.day >= today.day,
                    decide_monthly=periods.month_id >= today.month_id,
                )
            if isinstance(item, BedrockCall):
                group.events.append(event_argument(item.event_id, event_time.isoformat(), key, item.counted))
            elif charge is not None:
                group.events.append(log_argument(item.request_id, event_time.isoformat(), key, charge.nanos,
                                                 item.tokens))
                group.logs += 1
        return list(groups.values()), beyond
