from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

from audit.output import Format, Report, Section, Status, render


def _report(differs: bool) -> Report:
    people = Section("people", ["person", "requests", "cost_usd"],
                     [["ana", 3, Decimal("0.000123")], ["bo", 0, None]])
    return Report("replay 2026-11-01 to 2026-11-02", [people], {"requests": 3, "cost_usd": Decimal("0.000123")},
                  differs, ["one note"])


def test_json_keeps_exact_dollars_and_sections() -> None:
    data = json.loads(render(_report(True), Format.JSON), parse_float=Decimal)
    assert data["people"] == [{"person": "ana", "requests": 3, "cost_usd": Decimal("0.000123")},
                              {"person": "bo", "requests": 0, "cost_usd": None}]
    assert data["differs"] is True and data["totals"]["cost_usd"] == Decimal("0.000123")


def test_csv_parts_are_headed_and_exact() -> None:
    rows = list(csv.reader(io.StringIO(render(_report(False), Format.CSV))))
    assert rows[:4] == [["# people"], ["person", "requests", "cost_usd"], ["ana", "3", "0.000123"], ["bo", "0", ""]]
    assert rows[-3:] == [["# totals"], ["requests", "cost_usd"], ["3", "0.000123"]]


def test_table_says_whether_the_sides_agree_and_the_status_follows() -> None:
    assert render(_report(False), Format.TABLE).rstrip().endswith("the two sides agree")
    assert _report(True).status is Status.DIFFER and _report(False).status is Status.AGREE
