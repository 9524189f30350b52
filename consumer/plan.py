"""A batch's plan: the quota day of every call and log, their MySQL rows and their Redis groups (one per
person and day). Pure but for a small cache; the processor runs it on the caller's thread."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bedrock_usage.periods import Periods, periods_of
from bedrock_usage.pricing.rates import Charge
from bedrock_usage.quota import Scope
from consumer.counters import Group, event_argument, log_argument
from consumer.events import BedrockCall, InvocationLog
from consumer.metering import Metered
from consumer.people import Assignment
from consumer.records import InputRecord
from consumer.rows import CallRow, LogRow


@dataclass(frozen=True, slots=True)
class Slot:
    """What every instant of one quarter hour shares: its quota day and month, and until when Redis keeps
    that month (computed once per quarter hour, not per call)."""

    periods: Periods
    day: date
    day_id: str
    month_id: str
    expire_at: datetime  # the month's end + COUNTER_GRACE_DAYS
    expire_ts: int


class Planner:
    def __init__(self, timezone_: ZoneInfo, grace_days: int) -> None:
        self._tz = timezone_
        self._grace = timedelta(days=grace_days)
        self._slots: dict[int, Slot] = {}

    def period(self, instant: datetime) -> Periods:
        return self.slot(instant).periods

    def slot(self, instant: datetime) -> Slot:
        # Cached per quarter hour: every UTC offset in use is a multiple of 15 minutes, so all instants
        # of a bucket share their local day.
        bucket = int(instant.timestamp()) // 900
        slot = self._slots.get(bucket)
        if slot is None:
            if len(self._slots) > 10_000:
                self._slots.clear()
            periods = periods_of(instant, self._tz)
            expire_at = periods.month_ends_at + self._grace
            slot = self._slots[bucket] = Slot(periods, periods.day, periods.day_id, periods.month_id, expire_at,
                                              int(expire_at.timestamp()))
        return slot

    def rows(self, calls: Sequence[tuple[BedrockCall, InputRecord]], entries: dict[str, Assignment]) -> list[CallRow]:
        rows = []
        for call, _ in calls:
            entry = entries[call.principal.key]
            rows.append(CallRow(
                self.slot(call.event_time).day, call.event_id, call.event_time.replace(tzinfo=None), entry.id,
                entry.team, call.account_id, call.operation, call.model_id, call.region, call.inference_region,
                call.source_ip, call.user_agent, call.request_id, call.error_code, call.bearer_token,
            ))
        return rows

    def log_rows(
        self, logs: Sequence[tuple[InvocationLog, InputRecord]], metered: Metered, entries: dict[str, Assignment]
    ) -> list[LogRow]:
        rows = []
        for (entry, _), charge in zip(logs, metered.charges, strict=True):
            assigned = entries[entry.principal.key]
            rows.append(LogRow(
                self.slot(entry.timestamp).day, entry.timestamp.replace(tzinfo=None), entry.request_id,
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
        today_month = today.month_id
        events: list[tuple[BedrockCall | InvocationLog, Charge | None]] = [(call, None) for call, _ in calls]
        events += [(entry, charge) for (entry, _), charge in zip(logs, metered.charges, strict=True)]
        for item, charge in events:
            key = item.principal.key
            event_time = item.event_time if isinstance(item, BedrockCall) else item.timestamp
            slot = self.slot(event_time)
            if slot.expire_at <= now:
                # Redis no longer holds that month: the call is recorded in MySQL only (rebuildable).
                beyond += 1
                continue
            group = groups.get((key, slot.day))
            if group is None:
                group = groups[(key, slot.day)] = Group(
                    scope=Scope.USER,
                    subject=key,
                    team=entries[key].team,
                    day_id=slot.day_id,
                    month_id=slot.month_id,
                    expire_at=slot.expire_ts,
                    # Late calls still count, but a quota of a period already over decides nothing.
                    decide_daily=slot.day >= today.day,
                    decide_monthly=slot.month_id >= today_month,
                )
            if isinstance(item, BedrockCall):
                group.events.append(event_argument(item.event_id, event_time.isoformat(), key, item.counted))
            elif charge is not None:
                group.events.append(log_argument(item.request_id, event_time.isoformat(), key, charge.nanos,
                                                 item.tokens))
                group.logs += 1
        return list(groups.values()), beyond
