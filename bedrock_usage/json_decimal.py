"""JSON with exact decimal numbers: a `Decimal` is written as a JSON number with its own digits.

The standard library writes a Decimal only as a string (or, through float, rounded); a FinOps team
reading `bedrockctl usage --json` wants `41.2`, a number, and exactly the amount counted. Each Decimal is
written first as a string marked with a one-off token, and the marked strings are then replaced by the
number: the token is random per call, so no value in the data can look like one.
"""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from typing import Any


def number(value: Decimal) -> str:
    """`41.2`, `500`, `0.000000123`: plain notation, no trailing zeros, never an exponent."""
    if not value.is_finite():
        raise ValueError(f"{value} is not a number JSON can hold")
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def dumps(value: Any, **options: Any) -> str:
    token = uuid.uuid4().hex

    def default(item: Any) -> Any:
        if isinstance(item, Decimal):
            return f"{token}:{number(item)}"
        if "default" in options:
            return options["default"](item)
        raise TypeError(f"{type(item).__name__} is not JSON serialisable")

    text = json.dumps(value, **{**options, "default": default})
    return re.sub(f'"{token}:([-0-9.]+)"', r"\1", text)
