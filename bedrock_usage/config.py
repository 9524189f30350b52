"""Reading settings from the environment: declarations (`Spec`), checked parsers, and `Source`.

Each process's settings class (`SharedSettings` and the one in each process package) declares its own
`Spec`s and reads only them; every parser raises `SettingsError` naming the variable, so a bad value is
a clear error at start-up, not a crash later.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote, urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bedrock_usage.quota import nanos_of


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Spec:
    name: str
    default: str | None
    help: str


class Source:
    """The environment as one settings class sees it: its own variables, with their defaults.

    `overrides` (tests, `--regions`-style flags) win over `env` and must name a declared variable:
    a typo there would otherwise be silently ignored.
    """

    def __init__(self, specs: Iterable[Spec], env: Mapping[str, str], overrides: Mapping[str, str]) -> None:
        self._specs = {spec.name: spec for spec in specs}
        unknown = set(overrides) - set(self._specs)
        if unknown:
            raise SettingsError(f"unknown settings: {sorted(unknown)}")
        self._values = {**env, **overrides}

    def get(self, name: str) -> str:
        value = self._values.get(name)
        if value is None:
            default = self._specs[name].default  # KeyError: a class reading a variable it did not declare
            return "" if default is None else default
        return value


def integer(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def optional_int(name: str, raw: str) -> int | None:
    return None if raw.strip() == "" else integer(name, raw, minimum=1)


def optional_usd(name: str, raw: str) -> int | None:
    """A dollar amount (decimal, > 0) as nano-dollars; empty: None."""
    if raw.strip() == "":
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise SettingsError(f"{name} must be an amount of dollars like 25 or 12.50, got {raw!r}") from None
    if not value.is_finite() or value <= 0:
        raise SettingsError(f"{name} must be above 0, got {raw!r}")
    if value > 9_000_000:  # the counters compare exactly up to 2^53 nano-dollars (bedrock_usage/dollar_limits.py)
        raise SettingsError(f"{name} must be at most 9000000 dollars, got {raw!r}")
    return nanos_of(value)


def boolean(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def zone(raw: str, name: str) -> ZoneInfo:
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name} {raw!r} is not an IANA time zone") from None


def listed(raw: str) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def choice(name: str, raw: str, allowed: Iterable[str]) -> str:
    value = raw.strip().lower()
    options = tuple(allowed)
    if value not in options:
        raise SettingsError(f"{name} must be {', '.join(options[:-1])} or {options[-1]}, got {value!r}")
    return value


_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")


def regions(raw: str, name: str = "SOURCE_REGIONS") -> tuple[str, ...]:
    """A comma-separated list of AWS regions, in the order given, without repeats."""
    found = listed(raw)
    bad = [region for region in found if not _REGION.fullmatch(region)]
    if bad:
        raise SettingsError(f"{name} must be comma-separated AWS regions (e.g. eu-west-1), got {bad[0]!r}")
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class MySQLParams:
    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def from_url(cls, url: str) -> MySQLParams:
        parsed = urlparse(url)
        if parsed.scheme not in ("mysql", "mysql+pymysql"):
            raise SettingsError(f"MYSQL_URL must start with mysql://, got {url!r}")
        database = parsed.path.lstrip("/")
        if not database:
            raise SettingsError("MYSQL_URL must name a database, e.g. mysql://root@127.0.0.1:3306/bedrock_usage")
        try:
            port = parsed.port or 3306
        except ValueError:
            raise SettingsError("MYSQL_URL has an invalid port (expected 1-65535)") from None
        return cls(
            host=parsed.hostname or "127.0.0.1",
            port=port,
            user=unquote(parsed.username or "root"),
            password=unquote(parsed.password or ""),
            database=database,
        )
