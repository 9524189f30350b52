"""How an audit report leaves the program: `--format table|csv|json`, `--out PATH`, and the exit status
(0: the two sides agree, 1: they differ, 2: the audit could not be done).

A report is sections of rows (per person, per team, per day, findings…) and a totals line; cells are
plain values — text, ints, `Decimal` dollars (exact in JSON and CSV), None (no value: "-" in a table,
empty in CSV, null in JSON). CSV holds one section per file part, each headed by its name, so that a
spreadsheet import keeps them apart; JSON is one object an auditor's script can read.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any

from bedrock_usage import json_decimal
from bedrock_usage.printing import table


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


class Status(IntEnum):
    AGREE = 0
    DIFFER = 1
    ERROR = 2


Cell = str | int | Decimal | None


@dataclass
class Section:
    name: str  # e.g. "people", "teams", "days", "blocks": the JSON key and the CSV part's heading
    columns: Sequence[str]
    rows: list[Sequence[Cell]] = field(default_factory=list)

    def as_dicts(self) -> list[dict[str, Cell]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass
class Report:
    title: str  # one line: what was compared, over which period
    sections: list[Section]
    totals: dict[str, Cell]  # the totals line
    differs: bool  # whether the two sides disagree anywhere: the exit status
    notes: list[str] = field(default_factory=list)  # causes named, caveats

    @property
    def status(self) -> Status:
        return Status.DIFFER if self.differs else Status.AGREE


def _text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return json_decimal.number(value)
    return str(value)


def render(report: Report, fmt: Format) -> str:
    if fmt is Format.JSON:
        return json_decimal.dumps({
            "title": report.title, "differs": report.differs, "totals": report.totals, "notes": report.notes,
            **{s.name: s.as_dicts() for s in report.sections}}, indent=2) + "\n"
    if fmt is Format.CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for section in report.sections:
            writer.writerow([f"# {section.name}"])
            writer.writerow(section.columns)
            writer.writerows([[_text(v) for v in row] for row in section.rows])
        writer.writerow(["# totals"])
        writer.writerow(list(report.totals))
        writer.writerow([_text(v) for v in report.totals.values()])
        return out.getvalue()
    parts = [report.title, ""]
    for section in report.sections:
        parts += [f"{section.name}:", table(section.columns, [[None if v is None else _text(v) for v in row]
                                                               for row in section.rows])
                  if section.rows else "  (none)", ""]
    parts.append("totals: " + ", ".join(f"{k} {_text(v) or '-'}" for k, v in report.totals.items()))
    parts += [f"note: {n}" for n in report.notes]
    parts.append("the two sides differ" if report.differs else "the two sides agree")
    return "\n".join(parts) + "\n"


def emit(report: Report, fmt: Format, out: Path | None) -> int:
    """Write the report (to `out`, else stdout) and return the exit status it calls for."""
    text = render(report, fmt)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        print(f"bedrockctl: report written to {out} ({report.status.name.lower()})", file=sys.stderr)
    return int(report.status)


def add_output_arguments(parser: Any) -> None:
    """--format and --out, the same for every audit command."""
    parser.add_argument("--format", choices=[f.value for f in Format], default=Format.TABLE.value,
                        help="table (default), csv or json")
    parser.add_argument("--out", metavar="PATH", type=Path, help="write the report there instead of stdout")
