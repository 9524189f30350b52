"""What several commands print the same way: plain-text tables, dollar cells, a rejected file."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from bedrock_usage.quota import format_usd, usd


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def dollars(nanos: int | None) -> Decimal | None:
    """Nano-dollars as exact dollars for JSON; None (no quota) stays None."""
    return None if nanos is None else usd(nanos)


def usd_cell(nanos: int | None) -> str | None:
    """For a table: "$41.20", or None (shown as "-")."""
    return None if nanos is None else format_usd(nanos)


def rejected(file: str, problems: Sequence[str]) -> int:
    """A file that failed its checks: every problem at once (one edit fixes the file); exit status 2."""
    count = len(problems)
    print(f"bedrockctl: {file} rejected ({count} problem{'s' if count > 1 else ''}), nothing written:",
          file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 2
