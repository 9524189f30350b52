"""The parts of a replay's report beyond usage (audit/replay.py's `usage_part`): the decisions and blocks
audit, and the what-if sections. Each is a `SectionBuilder`, run on the namespace before it is dropped."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

from audit import decision_audit, whatif
from audit.namespace import Namespace
from audit.output import Cell, Section
from audit.period import Period
from audit.replay import SectionBuilder
from bedrock_usage import db


@contextlib.contextmanager
def _both(ns: Namespace) -> Iterator[tuple[Any, Any]]:
    live, replay = db.connect(ns.live.mysql), db.connect(ns.settings.mysql)
    try:
        yield live, replay
    finally:
        live.close()
        replay.close()


def decisions_part(late_after: timedelta, *, findings_count: bool = True) -> SectionBuilder:
    """Decisions taken in the replay beside those recorded, and blocks: missed, late, with no crossing.
    `findings_count` False (a replay under other limits): they are shown, and differ by design."""

    def build(ns: Namespace, period: Period) -> tuple[list[Section], dict[str, Cell], bool]:
        with _both(ns) as (live, replay):
            sections, finding = decision_audit.audit_decisions(live, replay, period, late_after=late_after)
        totals: dict[str, Cell] = {s.name: len(s.rows) for s in sections
                                   if s.name in ("missed_blocks", "late_blocks", "blocks_without_crossing")}
        return sections, totals, finding and findings_count

    return build


def repricing_part(ns: Namespace, period: Period) -> tuple[list[Section], dict[str, Cell], bool]:
    """`--prices`: who was over- or under-charged against the other price table, and by how much."""
    with _both(ns) as (live, replay):
        section = whatif.repricing_section(live, replay, period)
    people = [r for r in section.rows if r[0] == "user"]
    over = sum((Decimal(str(r[6])) for r in people if Decimal(str(r[6])) > 0), Decimal(0))
    under = sum((-Decimal(str(r[6])) for r in people if Decimal(str(r[6])) < 0), Decimal(0))
    differs = any(r[6] != 0 for r in section.rows)
    return [section], {"overcharged_usd": over, "undercharged_usd": under}, differs


def outcomes_part(ns: Namespace, period: Period) -> tuple[list[Section], dict[str, Cell], bool]:
    """`--quotas`: who would have been warned and who blocked under the other limits (not a difference)."""
    replay = db.connect(ns.settings.mysql)
    try:
        return [whatif.outcomes_section(replay, period)], {}, False
    finally:
        replay.close()
