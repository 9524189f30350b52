"""The replay engine: a period's events through the consumer's own processor core, into a namespace of its own.

The processor is assembled exactly as the live consumer's (consumer/assembly.py), with the namespace's
settings: its MySQL database, its Redis key prefix — so its decisions go to the namespace's own decision
stream, which no enforcer reads — and no lookups (the people copied from live decide the teams). Nothing in
the core calls IAM or queues a notification; the enforcer and the notifier are other processes, never
started here. Only the events whose time falls in the period count: the decoder skips the others
(`outside_period`), so a source may hold more than the period (a day's files, a stream read from a little
before), as it always will.

The processor's clock is the replay's: it starts at the period's start and follows the latest event seen, so
that the quota day a batch is decided in is the one live decided it in (a late call of a closed day decides
nothing, as live). Batches are pipelined as the KCL processor does (the next is decoded while the previous is
counted and written).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from prometheus_client import CollectorRegistry

from audit.compare import compare_usage
from audit.namespace import Namespace, isolated
from audit.output import Cell, Report, Section
from audit.period import Period
from consumer.assembly import assemble_consumer, sync_limits
from consumer.ingest import Summary
from consumer.processor import BatchInFlight
from consumer.records import InputRecord
from consumer.settings import ConsumerSettings

Batches = Iterable[Sequence[InputRecord]]


class ReplayClock:
    """The processor's clock during a replay: the period's start, then the latest event time kept."""

    def __init__(self, period: Period) -> None:
        self._period = period
        self.now = period.start

    def __call__(self) -> datetime:
        return self.now

    def keep(self, event_time: datetime) -> bool:
        """The decoder's predicate: in the period? (and the clock follows the events kept)."""
        if event_time not in self._period:
            return False
        self.now = max(self.now, event_time)
        return True


class Progress:
    """Records read and events/s on one line of stderr, only when stderr is a terminal."""

    def __init__(self, out: TextIO | None = None, *, every_seconds: float = 0.5) -> None:
        self._out = out if out is not None else sys.stderr
        self._on = self._out.isatty()
        self._every = every_seconds
        self._started = self._shown = time.monotonic()

    def update(self, summary: Summary, *, final: bool = False) -> None:
        if not self._on:
            return
        now = time.monotonic()
        if not final and now - self._shown < self._every:
            return
        self._shown = now
        events = summary.calls + summary.invocation_logs
        rate = events / max(now - self._started, 1e-9)
        self._out.write(f"\rreplay: {summary.records:,} records read, {events:,} events in the period,"
                        f" {rate:,.0f} events/s ")
        if final:
            self._out.write("\n")
        self._out.flush()


@dataclass
class ReplayRun:
    """What the engine did: the processor's counts (ingest's summary) and its wall time."""

    summary: Summary
    seconds: float

    @property
    def events_per_second(self) -> float:
        return (self.summary.calls + self.summary.invocation_logs) / max(self.seconds, 1e-9)


def run(ns: Namespace, period: Period, batches: Batches, *, progress: Progress | None = None) -> ReplayRun:
    """Feed `batches` through the processor core into `ns`; returns once every batch is durable."""
    clock = ReplayClock(period)
    started = time.monotonic()
    summary = Summary()
    parts = assemble_consumer(ns.settings, source="replay", registry=CollectorRegistry(), clock=clock,
                              lookups=False, keep_event=clock.keep)
    try:
        sync_limits(parts, ns.keys)  # the limit overrides copied from live, into the namespace's Redis cache
        in_flight: BatchInFlight | None = None
        for batch in batches:
            submitted = parts.processor.submit(batch)
            if in_flight is not None:
                summary.add(in_flight.wait())
            in_flight = submitted
            if progress is not None:
                progress.update(summary)
        if in_flight is not None:
            summary.add(in_flight.wait())
        # Whoever was counted unresolved is settled with the team MySQL gives them (no lookups: at once).
        parts.people.finish_lookups(timeout=60)
        summary.add(parts.processor.process([]))
    finally:
        parts.close()
    if progress is not None:
        progress.update(summary, final=True)
    return ReplayRun(summary, time.monotonic() - started)


# A part of the report, computed before the namespace is dropped: (sections, totals, differs).
SectionBuilder = Callable[[Namespace, Period], tuple[list[Section], dict[str, Cell], bool]]


def usage_part(ns: Namespace, period: Period) -> tuple[list[Section], dict[str, Cell], bool]:
    compared = compare_usage(ns.live.mysql, ns.settings.mysql, period)
    return compared.sections, compared.totals, compared.differs


# The usage comparison; `bedrockctl replay` adds the decisions audit and the what-if parts
# (audit/replay_parts.py).
PARTS: tuple[SectionBuilder, ...] = (usage_part,)


def replay_report(settings: ConsumerSettings, period: Period, batches: Batches, *, source: str, keep: bool = False,
                  progress: Progress | None = None, parts: Sequence[SectionBuilder] = PARTS,
                  prepare: Callable[[Namespace], None] | None = None) -> Report:
    """Replay `batches` into a new namespace, compare it with the live record, drop it (unless `keep`).
    `prepare` changes the namespace before the replay reads it (the what-if price table or limits)."""
    with isolated(settings, keep=keep) as ns:
        if prepare is not None:
            prepare(ns)
        done = run(ns, period, batches, progress=progress)
        sections: list[Section] = []
        totals: dict[str, Cell] = {}
        differs = False
        for part in parts:
            more, sums, differ = part(ns, period)
            sections += more
            totals.update(sums)
            differs = differs or differ
    s = done.summary
    notes = [f"replayed {s.records} records from {source}: {s.calls} calls and {s.invocation_logs} invocation logs"
             f" in the period ({s.duplicates} duplicate calls),"
             f" {s.skipped} skipped (outside the period or not counted), {s.dead_letters} dead letters;"
             f" {done.seconds:.1f} s, {done.events_per_second:,.0f} events/s"]
    if keep:
        notes.append(f"namespace kept: MySQL database {ns.database}, Redis keys {ns.prefix}:*")
    return Report(f"replay of {period.describe()} beside the live record", sections, totals, differs, notes)
