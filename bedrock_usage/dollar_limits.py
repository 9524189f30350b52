"""Dollar amounts in the quota file, read exactly.

YAML reads `12.5` as a float, and a float is already rounded: `0.1` is 0.1000000000000000055…, and
`9007199254740993.5` is not even the number written. A cost limit is money, so the quota file is read with
a loader that turns every YAML float into the `Decimal` of the text as written (`12.5` → Decimal("12.5"))
instead; integers stay integers. Nothing else in the file is a float, so nothing else changes meaning
(a float where an integer belongs is still rejected, and reported with the number as written).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from bedrock_usage.quota import NANOS_PER_USD

# principals/teams store cost limits as DECIMAL(14,4) (sql/013, sql/014): more places would be rounded
# silently by MySQL. The counting script compares nano-dollars as Lua numbers (doubles), exact up to 2^53:
# about nine million dollars a period, far beyond a person's or a team's budget.
PLACES = 4
MOST_USD = Decimal(9_000_000)


class DecimalLoader(yaml.SafeLoader):
    """yaml.SafeLoader, but floats as `Decimal` of their text."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal | str:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    try:
        return Decimal(text)  # also .inf / .nan, which the checks below reject
    except InvalidOperation:
        return text  # a YAML 1.1 sexagesimal float (1:30.5): not an amount; reported as written


DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


def load(text: str) -> Any:
    return yaml.load(text, Loader=DecimalLoader)  # a SafeLoader subclass: no arbitrary objects


def shown(value: Any) -> str:
    """A value as the person wrote it, for an error message (`12.5`, not `Decimal('12.5')`)."""
    return str(value) if isinstance(value, Decimal) else repr(value)


def dollars_problem(value: Any) -> str | None:
    """Why `value` (as `load` read it) is not a cost limit, or None."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return f"must be an amount of dollars like 25 or 12.50, got {shown(value)}"
    amount = Decimal(value)
    if not amount.is_finite() or amount <= 0:
        return f"must be an amount of dollars above 0, got {shown(value)}"
    if amount > MOST_USD:
        return f"{shown(value)} is above the largest limit, {MOST_USD} dollars"
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PLACES:
        return f"{shown(value)} has more than {PLACES} decimal places"
    return None


def nanos(value: int | Decimal) -> int:
    """A checked amount of dollars as nano-dollars (exact: at most 4 places)."""
    return int(Decimal(value) * NANOS_PER_USD)
