"""What several commands print the same way."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def rejected(file: str, problems: Sequence[str]) -> int:
    """A file that failed its checks: every problem at once (one edit fixes the file); exit status 2."""
    count = len(problems)
    print(f"bedrockctl: {file} rejected ({count} problem{'s' if count > 1 else ''}), nothing written:",
          file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 2
