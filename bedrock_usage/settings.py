"""The settings every process reads: where the stores are, the quota calendar and default limits.

Each process extends `SharedSettings` with its own (consumer/settings.py, enforcement/settings.py,
notifier/settings.py, producer_config/settings.py) and reads and validates only those and these, once, in
`main()` (never at import time), then passes them down. The README's settings table lists every
variable declared by these classes (`bedrockctl settings` prints it); a test keeps them in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from bedrock_usage.config import (
    MySQLParams,
    SettingsError,
    Source,
    Spec,
    boolean,
    integer,
    listed,
    optional_int,
    optional_usd,
    zone,
)
from bedrock_usage.quota import Limits

SHARED_SPECS: tuple[Spec, ...] = (
    Spec("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis holding counters, limits cache and the decision stream."),
    Spec("REDIS_CLUSTER", "false", "Redis is a Redis Cluster (ElastiCache cluster mode): REDIS_URL names any one"
         " node (or the configuration endpoint), database 0."),
    Spec("MYSQL_URL", "mysql://root@127.0.0.1:3306/bedrock_usage", "MySQL 8 / MariaDB database of record."),
    Spec("MYSQL_PASSWORD", "", "MySQL password, when not in MYSQL_URL (ECS injects it from Secrets Manager)."),
    Spec("AWS_ENDPOINT_URL", None, "Override for every AWS endpoint (moto locally); unset in AWS."),
    Spec("AWS_REGION", "us-east-1", "Region of the stream, the lease table and IAM calls."),
    Spec("STREAM_NAME", "bedrock-usage-events", "Kinesis stream the EventBridge rule writes to."),
    Spec("QUOTA_TIMEZONE", "Europe/Madrid", "Time zone in which quota days and months begin."),
    Spec("DEFAULT_DAILY_REQUEST_LIMIT", "250", "Requests per person per day, unless overridden."),
    Spec("DEFAULT_MONTHLY_REQUEST_LIMIT", "5000", "Requests per person per month, unless overridden."),
    Spec("DEFAULT_TEAM_DAILY_REQUEST_LIMIT", "", "Requests per team per day (empty: no team daily quota)."),
    Spec("DEFAULT_TEAM_MONTHLY_REQUEST_LIMIT", "", "Requests per team per month (empty: no team monthly quota)."),
    Spec("DEFAULT_DAILY_COST_LIMIT_USD", "50", "Dollars per person per day, unless overridden (empty: no quota)."),
    Spec("DEFAULT_MONTHLY_COST_LIMIT_USD", "500", "Dollars per person per month, unless overridden (empty: no quota)."),
    Spec("DEFAULT_TEAM_DAILY_COST_LIMIT_USD", "", "Dollars per team per day (empty: no team daily cost quota)."),
    Spec("DEFAULT_TEAM_MONTHLY_COST_LIMIT_USD", "", "Dollars per team per month (empty: no team monthly cost quota)."),
    Spec("PRICE_FALLBACK", "provider", "Price of a model the price table lacks (never free): `provider` = the"
         " dearest known model of its provider, `dearest` = the dearest known model, or a model ID."),
    Spec("WARNING_THRESHOLDS", "60,85", "Percentages of a quota at which a warning decision is emitted."),
    Spec("DEFAULT_TEAM", "unassigned", "What people with no team (no quota-file team, Team tag or Identity"
         " Center group) are listed under. Not a team: no team quota applies to it, no team block is decided."),
    Spec("SESSION_ROLES", "", "Comma-separated role-name globs whose session name is a person (else: the role)."),
    Spec("COUNTER_GRACE_DAYS", "3", "Days Redis keeps a month's counters after it ends; older events: MySQL only."),
    Spec("REDIS_KEY_PREFIX", "bu", "Prefix of every Redis key (several deployments can share one Redis)."),
    Spec("LOG_LEVEL", "INFO", "Log level (logs go to stderr as JSON lines)."),
)


def _thresholds(raw: str) -> tuple[int, ...]:
    values = sorted({integer("WARNING_THRESHOLDS", part, 1) for part in listed(raw)})
    if any(v >= 100 for v in values):
        raise SettingsError("WARNING_THRESHOLDS are percentages below 100 (100 % is the limit itself)")
    return tuple(values)


def _mysql(source: Source) -> MySQLParams:
    params = MySQLParams.from_url(source.get("MYSQL_URL"))
    password = source.get("MYSQL_PASSWORD")
    return replace(params, password=password) if password else params


@dataclass(frozen=True)
class SharedSettings:
    """What the kernel's code reads, whichever process runs it."""

    OWN_SPECS: ClassVar[tuple[Spec, ...]] = SHARED_SPECS

    redis_url: str
    redis_cluster: bool
    mysql: MySQLParams
    mysql_url: str
    aws_endpoint_url: str | None
    aws_region: str
    stream_name: str
    quota_timezone: ZoneInfo
    default_daily_limit: int | None
    default_monthly_limit: int | None
    default_team_daily_limit: int | None
    default_team_monthly_limit: int | None
    default_daily_cost_limit: int | None  # nano-dollars
    default_monthly_cost_limit: int | None
    default_team_daily_cost_limit: int | None
    default_team_monthly_cost_limit: int | None
    price_fallback: str
    warning_thresholds: tuple[int, ...]
    default_team: str
    session_roles: tuple[str, ...]
    counter_grace_days: int
    redis_key_prefix: str
    log_level: str

    @property
    def user_defaults(self) -> Limits:
        """A person's limits when nothing overrides them."""
        return Limits(self.default_daily_limit, self.default_monthly_limit, self.default_daily_cost_limit,
                      self.default_monthly_cost_limit)

    @property
    def team_defaults(self) -> Limits:
        return Limits(self.default_team_daily_limit, self.default_team_monthly_limit,
                      self.default_team_daily_cost_limit, self.default_team_monthly_cost_limit)

    @classmethod
    def specs(cls) -> tuple[Spec, ...]:
        """Every variable this class reads: the shared ones first, then each extension's own."""
        return tuple(spec for klass in reversed(cls.__mro__) for spec in klass.__dict__.get("OWN_SPECS", ()))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str) -> Self:
        """Build and validate settings; `overrides` win over `env` (handy in tests)."""
        source = Source(cls.specs(), os.environ if env is None else env, overrides)
        return cls(**cls.read(source))

    @classmethod
    def read(cls, source: Source) -> dict[str, Any]:
        """The fields this class adds, checked; an extension adds its own to `super().read(source)`."""
        get = source.get
        level = get("LOG_LEVEL").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        prefix = get("REDIS_KEY_PREFIX")
        if not prefix or any(c in prefix for c in "{}: "):
            raise SettingsError("REDIS_KEY_PREFIX must be non-empty without braces, colons or spaces")
        fallback = get("PRICE_FALLBACK").strip()
        if not fallback or any(c.isspace() for c in fallback):
            raise SettingsError(f"PRICE_FALLBACK must be provider, dearest or a model ID, got {fallback!r}")
        redis_cluster = boolean("REDIS_CLUSTER", get("REDIS_CLUSTER"))
        if redis_cluster and urlparse(get("REDIS_URL")).path.strip("/") not in ("", "0"):
            raise SettingsError("REDIS_URL must name database 0 (or none) when REDIS_CLUSTER is true:"
                                " a Redis Cluster has only database 0")
        default_team = get("DEFAULT_TEAM").strip()
        if not default_team:
            raise SettingsError("DEFAULT_TEAM must not be empty")

        def limit(name: str) -> int | None:
            return optional_usd(name, get(name)) if name.endswith("_USD") else optional_int(name, get(name))

        return {
            "redis_url": get("REDIS_URL"),
            "redis_cluster": redis_cluster,
            "mysql": _mysql(source),
            "mysql_url": get("MYSQL_URL"),
            "aws_endpoint_url": get("AWS_ENDPOINT_URL") or None,
            "aws_region": get("AWS_REGION"),
            "stream_name": get("STREAM_NAME"),
            "quota_timezone": zone(get("QUOTA_TIMEZONE"), "QUOTA_TIMEZONE"),
            "default_daily_limit": limit("DEFAULT_DAILY_REQUEST_LIMIT"),
            "default_monthly_limit": limit("DEFAULT_MONTHLY_REQUEST_LIMIT"),
            "default_team_daily_limit": limit("DEFAULT_TEAM_DAILY_REQUEST_LIMIT"),
            "default_team_monthly_limit": limit("DEFAULT_TEAM_MONTHLY_REQUEST_LIMIT"),
            "default_daily_cost_limit": limit("DEFAULT_DAILY_COST_LIMIT_USD"),
            "default_monthly_cost_limit": limit("DEFAULT_MONTHLY_COST_LIMIT_USD"),
            "default_team_daily_cost_limit": limit("DEFAULT_TEAM_DAILY_COST_LIMIT_USD"),
            "default_team_monthly_cost_limit": limit("DEFAULT_TEAM_MONTHLY_COST_LIMIT_USD"),
            "price_fallback": fallback,
            "warning_thresholds": _thresholds(get("WARNING_THRESHOLDS")),
            "default_team": default_team,
            "session_roles": listed(get("SESSION_ROLES")),
            "counter_grace_days": integer("COUNTER_GRACE_DAYS", get("COUNTER_GRACE_DAYS"), 1),
            "redis_key_prefix": prefix,
            "log_level": level,
        }

