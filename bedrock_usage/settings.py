"""Every setting of every process, read from the environment in one place.

Each process builds one `Settings` in `main()` (never at import time) and passes it down. Validation
happens before the first record is taken: a bad value is a clear error at start-up, not a crash later.
The README's settings table lists exactly the variables declared in `SPECS`; a test keeps them in step.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote, urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bedrock_usage.quota import Limits, nanos_of

LANGUAGES = ("en", "es")  # the languages messages are written in (notifier/i18n/)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Spec:
    name: str
    default: str | None
    help: str


# The single list of environment variables. Order is the README table's order.
SPECS: tuple[Spec, ...] = (
    Spec("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis holding counters, limits cache and the decision stream."),
    Spec("MYSQL_URL", "mysql://root@127.0.0.1:3306/bedrock_usage", "MySQL 8 / MariaDB database of record."),
    Spec("MYSQL_PASSWORD", "", "MySQL password, when not in MYSQL_URL (ECS injects it from Secrets Manager)."),
    Spec("AWS_ENDPOINT_URL", None, "Override for every AWS endpoint (moto locally); unset in AWS."),
    Spec("AWS_REGION", "us-east-1", "Region of the stream, the lease table and IAM calls."),
    Spec("STREAM_NAME", "bedrock-usage-events", "Kinesis stream the EventBridge rule writes to."),
    Spec("RULE_NAME", "bedrock-usage-control", "Name of the EventBridge rule (and prefix of its DLQ and roles)"
         " that `bedrockctl producer apply` manages."),
    Spec("SOURCE_REGIONS", "", "Comma-separated regions whose Bedrock calls are counted (each gets a rule forwarding"
         " them to AWS_REGION's event bus); empty: AWS_REGION only. Calls in a region not listed are not counted."),
    Spec("INVOCATION_LOG_GROUP", "", "CloudWatch Logs group of Bedrock model invocation logs to subscribe to"
         " the stream (token metering); empty: none."),
    Spec("KCL_APPLICATION_NAME", "bedrock-usage-consumer", "KCL application (names the DynamoDB lease table)."),
    Spec("KCL_INITIAL_POSITION", "TRIM_HORIZON", "Where a shard with no checkpoint starts: TRIM_HORIZON or LATEST."),
    Spec("KCL_POLL_INTERVAL_MS", "250", "Idle time between GetRecords calls per shard (Kinesis allows 5/s/shard)."),
    Spec("KCL_MAX_RECORDS", "10000", "Most records per GetRecords call."),
    Spec("KCL_FAILOVER_MS", "10000", "Lease failover time: how soon a dead worker's shards are taken over."),
    Spec("KCL_JAR_DIR", None, "Directory of the KCL multilang jars; default: the installed amazon_kclpy jars."),
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
    Spec("PRICES_REFRESH_SECONDS", "60", "How often each consumer re-reads the price table (after `prices import`"
         " or `prices sync`)."),
    Spec("INFERENCE_PROFILE_MAX_AGE_SECONDS", "86400", "How long an application inference profile's model (from"
         " bedrock:GetInferenceProfile, shared in MySQL) is reused before it is asked again."),
    Spec("UNMETERED_AFTER_SECONDS", "900", "A successful call whose invocation log has not come this long after"
         " it is unmetered (no cost known): counted in a metric, alerted, and listed in the daily summary."),
    Spec("WARNING_THRESHOLDS", "60,85", "Percentages of a quota at which a warning decision is emitted."),
    Spec("DEFAULT_TEAM", "unassigned", "What people with no team (no quota-file team, Team tag or Identity"
         " Center group) are listed under. Not a team: no team quota applies to it, no team block is decided."),
    Spec("SESSION_ROLES", "", "Comma-separated role-name globs whose session name is a person (else: the role)."),
    Spec("TEAM_TAG_LOOKUP", "true", "Read the Team/Person/Email IAM tags of new people's users and roles (in the"
         " consumer's account) to find their team."),
    Spec("TEAM_LOOKUP_WAIT_MS", "2000", "How long a batch waits for the lookups of its new people; who is not"
         " resolved by then is counted for themself and held for their team until it is known."),
    Spec("TEAM_LOOKUP_MAX_AGE_SECONDS", "3600", "How old a person's looked-up team may get before it is looked"
         " up again (a changed tag or group applies from then on)."),
    Spec("DIRECTORY_REFRESH_SECONDS", "10", "How often each consumer process reads the changes to people and"
         " teams made elsewhere (`limits apply`, other consumers' lookups)."),
    Spec("COUNTER_GRACE_DAYS", "3", "Days Redis keeps a month's counters after it ends; older events: MySQL only."),
    Spec("REDIS_KEY_PREFIX", "bu", "Prefix of every Redis key (several deployments can share one Redis)."),
    Spec("DECISION_STREAM_MAXLEN", "1000000", "Approximate cap on the decision stream's length."),
    Spec("METRICS_PORT", "9101", "Port of the consumer's Prometheus /metrics and /health endpoint."),
    Spec("ENFORCEMENT_MODE", "enforce", "enforce: deny over-quota people in IAM; shadow: decide, record and notify"
         " (marked shadow) but change no IAM policy."),
    Spec("PROTECTED_PRINCIPALS", "", "Comma-separated quota-key globs never denied (break-glass admins),"
         " e.g. `arn:aws:iam::*:user/breakglass-*`."),
    Spec("DENY_POLICY_NAME", "BedrockUsageControlDeny", "Name of the product's deny policy (path"
         " /bedrock-usage-control/); the session policies are <name>Sessions1..N."),
    Spec("SESSION_DENY_POLICIES", "3", "Session deny policies (each holds ~100-200 sessions; attach all to"
         " shared roles and permission sets)."),
    Spec("MAX_QUOTA_DENIES_PER_HOUR", "100", "Circuit breaker: past this many people denied for quotas in an"
         " hour, further quota denies are refused and alerted (0: no limit). Admin blocks are not limited."),
    Spec("RECONCILE_INTERVAL_SECONDS", "300", "How often the enforcer compares desired and actual IAM state."),
    Spec("ENFORCER_METRICS_PORT", "9102", "Port of the enforcer's Prometheus /metrics and /health endpoint."),
    Spec("NOTIFY_LANGUAGE", "en", "Language of messages for people without their own (quota file `language`,"
         " IAM tag `Language`): en or es."),
    Spec("NOTIFY_TIMEZONE", "", "Time zone of times in messages for people without their own (quota file"
         " `timezone`, IAM tag `TimeZone`); empty: QUOTA_TIMEZONE."),
    Spec("EMAIL_BACKEND", "ses", "How email is sent: ses, smtp, or none (no email; other channels still work)."),
    Spec("EMAIL_FROM", "bedrock-usage@example.com", "Sender address (an SES-verified identity with ses)."),
    Spec("SMTP_HOST", "", "SMTP server (EMAIL_BACKEND=smtp), e.g. smtp.gmail.com."),
    Spec("SMTP_PORT", "587", "SMTP port."),
    Spec("SMTP_USERNAME", "", "SMTP login (empty: no login)."),
    Spec("SMTP_PASSWORD", "", "SMTP password (from Secrets Manager in AWS)."),
    Spec("SMTP_STARTTLS", "true", "Upgrade the SMTP connection with STARTTLS before logging in."),
    Spec("SMTP_CA_FILE", "", "CA bundle to verify the SMTP server's certificate (empty: the system's)."),
    Spec("ADMIN_EMAILS", "", "Comma-separated admins who get alerts, blocks and the daily summary."),
    Spec("ALERT_SNS_TOPIC_ARN", "", "SNS topic for admin alerts (refusals, failures); empty: none."),
    Spec("SLACK_WEBHOOK_URL", "", "Slack incoming webhook for alerts, blocks and the summary; empty: none."),
    Spec("TEAMS_WEBHOOK_URL", "", "Microsoft Teams incoming webhook for the same; empty: none."),
    Spec("NOTIFY_MAX_ATTEMPTS", "8", "Tries before a delivery is dead (retried with capped exponential backoff)."),
    Spec("NOTIFY_LEASE_SECONDS", "60", "How long a notifier task reserves a delivery it is sending; one that"
         " dies mid-send leaves its message to be sent again after this."),
    Spec("DAILY_SUMMARY_HOUR", "8", "Local hour (NOTIFY_TIMEZONE) of the admins' daily summary; empty: none."),
    Spec("NOTIFIER_METRICS_PORT", "9103", "Port of the notifier's Prometheus /metrics and /health endpoint."),
    Spec("LOG_LEVEL", "INFO", "Log level (logs go to stderr as JSON lines)."),
)

_BY_NAME = {spec.name: spec for spec in SPECS}


def _int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _optional_int(name: str, raw: str) -> int | None:
    return None if raw.strip() == "" else _int(name, raw, minimum=1)


def _optional_usd(name: str, raw: str) -> int | None:
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


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _thresholds(raw: str) -> tuple[int, ...]:
    values = sorted({_int("WARNING_THRESHOLDS", part.strip(), 1) for part in raw.split(",") if part.strip()})
    if any(v >= 100 for v in values):
        raise SettingsError("WARNING_THRESHOLDS are percentages below 100 (100 % is the limit itself)")
    return tuple(values)


def _zone(raw: str, name: str = "QUOTA_TIMEZONE") -> ZoneInfo:
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name} {raw!r} is not an IANA time zone") from None


def _with_password(params: MySQLParams, password: str) -> MySQLParams:
    return replace(params, password=password) if password else params


_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")


def regions(raw: str, name: str = "SOURCE_REGIONS") -> tuple[str, ...]:
    """A comma-separated list of AWS regions, in the order given, without repeats."""
    listed = [part.strip() for part in raw.split(",") if part.strip()]
    bad = [region for region in listed if not _REGION.fullmatch(region)]
    if bad:
        raise SettingsError(f"{name} must be comma-separated AWS regions (e.g. eu-west-1), got {bad[0]!r}")
    return tuple(dict.fromkeys(listed))


def _optional_hour(raw: str) -> int | None:
    if raw.strip() == "":
        return None
    hour = _int("DAILY_SUMMARY_HOUR", raw)
    if hour > 23:
        raise SettingsError(f"DAILY_SUMMARY_HOUR must be 0-23 (or empty), got {hour}")
    return hour


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


@dataclass(frozen=True)
class Settings:
    redis_url: str
    mysql: MySQLParams
    mysql_url: str
    aws_endpoint_url: str | None
    aws_region: str
    stream_name: str
    rule_name: str
    source_regions: tuple[str, ...]
    invocation_log_group: str | None
    kcl_application_name: str
    kcl_initial_position: str
    kcl_poll_interval_ms: int
    kcl_max_records: int
    kcl_failover_ms: int
    kcl_jar_dir: str | None
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
    prices_refresh_seconds: int
    inference_profile_max_age_seconds: int
    unmetered_after_seconds: int
    warning_thresholds: tuple[int, ...]
    default_team: str
    session_roles: tuple[str, ...]
    team_tag_lookup: bool
    team_lookup_wait_ms: int
    team_lookup_max_age_seconds: int
    directory_refresh_seconds: int
    counter_grace_days: int
    redis_key_prefix: str
    decision_stream_maxlen: int
    metrics_port: int
    enforcement_mode: str
    protected_principals: tuple[str, ...]
    deny_policy_name: str
    session_deny_policies: int
    max_quota_denies_per_hour: int
    reconcile_interval_seconds: int
    enforcer_metrics_port: int
    notify_language: str
    notify_timezone: ZoneInfo
    email_backend: str
    email_from: str
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: str
    smtp_starttls: bool
    smtp_ca_file: str | None
    admin_emails: tuple[str, ...]
    alert_sns_topic_arn: str | None
    slack_webhook_url: str | None
    teams_webhook_url: str | None
    notify_max_attempts: int
    notify_lease_seconds: int
    daily_summary_hour: int | None
    notifier_metrics_port: int
    log_level: str

    @property
    def shadow(self) -> bool:
        return self.enforcement_mode == "shadow"

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
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str) -> Settings:
        """Build and validate settings; `overrides` win over `env` (handy in tests)."""
        source = dict(os.environ if env is None else env)
        source.update(overrides)
        unknown = set(overrides) - set(_BY_NAME)
        if unknown:
            raise SettingsError(f"unknown settings: {sorted(unknown)}")

        def get(name: str) -> str:
            value = source.get(name)
            if value is None:
                default = _BY_NAME[name].default
                return "" if default is None else default
            return value

        position = get("KCL_INITIAL_POSITION").upper()
        if position not in ("TRIM_HORIZON", "LATEST"):
            raise SettingsError(f"KCL_INITIAL_POSITION must be TRIM_HORIZON or LATEST, got {position!r}")
        level = get("LOG_LEVEL").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        prefix = get("REDIS_KEY_PREFIX")
        if not prefix or any(c in prefix for c in "{}: "):
            raise SettingsError("REDIS_KEY_PREFIX must be non-empty without braces, colons or spaces")
        mode = get("ENFORCEMENT_MODE").strip().lower()
        if mode not in ("enforce", "shadow"):
            raise SettingsError(f"ENFORCEMENT_MODE must be enforce or shadow, got {mode!r}")
        policy_name = get("DENY_POLICY_NAME").strip()
        if not re.fullmatch(r"[\w+=,.@-]{1,100}", policy_name):
            raise SettingsError(f"DENY_POLICY_NAME must be a valid IAM policy name, got {policy_name!r}")
        session_policies = _int("SESSION_DENY_POLICIES", get("SESSION_DENY_POLICIES"), 1)
        if session_policies > 8:
            raise SettingsError("SESSION_DENY_POLICIES must be at most 8 (a role holds 10 managed policies)")
        language = get("NOTIFY_LANGUAGE").strip().lower()
        if language not in LANGUAGES:
            raise SettingsError(f"NOTIFY_LANGUAGE must be one of {', '.join(LANGUAGES)}, got {language!r}")
        backend = get("EMAIL_BACKEND").strip().lower()
        if backend not in ("ses", "smtp", "none"):
            raise SettingsError(f"EMAIL_BACKEND must be ses, smtp or none, got {backend!r}")
        if backend == "smtp" and not get("SMTP_HOST").strip():
            raise SettingsError("SMTP_HOST is needed with EMAIL_BACKEND=smtp")
        summary_hour = _optional_hour(get("DAILY_SUMMARY_HOUR"))
        fallback = get("PRICE_FALLBACK").strip()
        if not fallback or any(c.isspace() for c in fallback):
            raise SettingsError(f"PRICE_FALLBACK must be provider, dearest or a model ID, got {fallback!r}")
        default_team = get("DEFAULT_TEAM").strip()
        if not default_team:
            raise SettingsError("DEFAULT_TEAM must not be empty")

        return cls(
            redis_url=get("REDIS_URL"),
            mysql=_with_password(MySQLParams.from_url(get("MYSQL_URL")), get("MYSQL_PASSWORD")),
            mysql_url=get("MYSQL_URL"),
            aws_endpoint_url=get("AWS_ENDPOINT_URL") or None,
            aws_region=get("AWS_REGION"),
            stream_name=get("STREAM_NAME"),
            rule_name=get("RULE_NAME").strip(),
            source_regions=regions(get("SOURCE_REGIONS")),
            invocation_log_group=get("INVOCATION_LOG_GROUP").strip() or None,
            kcl_application_name=get("KCL_APPLICATION_NAME"),
            kcl_initial_position=position,
            kcl_poll_interval_ms=_int("KCL_POLL_INTERVAL_MS", get("KCL_POLL_INTERVAL_MS"), 1),
            kcl_max_records=_int("KCL_MAX_RECORDS", get("KCL_MAX_RECORDS"), 1),
            kcl_failover_ms=_int("KCL_FAILOVER_MS", get("KCL_FAILOVER_MS"), 1000),
            kcl_jar_dir=get("KCL_JAR_DIR") or None,
            quota_timezone=_zone(get("QUOTA_TIMEZONE")),
            default_daily_limit=_optional_int("DEFAULT_DAILY_REQUEST_LIMIT", get("DEFAULT_DAILY_REQUEST_LIMIT")),
            default_monthly_limit=_optional_int(
                "DEFAULT_MONTHLY_REQUEST_LIMIT", get("DEFAULT_MONTHLY_REQUEST_LIMIT")
            ),
            default_team_daily_limit=_optional_int(
                "DEFAULT_TEAM_DAILY_REQUEST_LIMIT", get("DEFAULT_TEAM_DAILY_REQUEST_LIMIT")
            ),
            default_team_monthly_limit=_optional_int(
                "DEFAULT_TEAM_MONTHLY_REQUEST_LIMIT", get("DEFAULT_TEAM_MONTHLY_REQUEST_LIMIT")
            ),
            default_daily_cost_limit=_optional_usd("DEFAULT_DAILY_COST_LIMIT_USD", get("DEFAULT_DAILY_COST_LIMIT_USD")),
            default_monthly_cost_limit=_optional_usd(
                "DEFAULT_MONTHLY_COST_LIMIT_USD", get("DEFAULT_MONTHLY_COST_LIMIT_USD")),
            default_team_daily_cost_limit=_optional_usd(
                "DEFAULT_TEAM_DAILY_COST_LIMIT_USD", get("DEFAULT_TEAM_DAILY_COST_LIMIT_USD")),
            default_team_monthly_cost_limit=_optional_usd(
                "DEFAULT_TEAM_MONTHLY_COST_LIMIT_USD", get("DEFAULT_TEAM_MONTHLY_COST_LIMIT_USD")),
            price_fallback=fallback,
            prices_refresh_seconds=_int("PRICES_REFRESH_SECONDS", get("PRICES_REFRESH_SECONDS"), 1),
            inference_profile_max_age_seconds=_int(
                "INFERENCE_PROFILE_MAX_AGE_SECONDS", get("INFERENCE_PROFILE_MAX_AGE_SECONDS"), 60),
            unmetered_after_seconds=_int("UNMETERED_AFTER_SECONDS", get("UNMETERED_AFTER_SECONDS"), 60),
            warning_thresholds=_thresholds(get("WARNING_THRESHOLDS")),
            default_team=default_team,
            session_roles=tuple(p.strip() for p in get("SESSION_ROLES").split(",") if p.strip()),
            team_tag_lookup=_bool("TEAM_TAG_LOOKUP", get("TEAM_TAG_LOOKUP")),
            team_lookup_wait_ms=_int("TEAM_LOOKUP_WAIT_MS", get("TEAM_LOOKUP_WAIT_MS"), 0),
            team_lookup_max_age_seconds=_int("TEAM_LOOKUP_MAX_AGE_SECONDS", get("TEAM_LOOKUP_MAX_AGE_SECONDS"), 60),
            directory_refresh_seconds=_int("DIRECTORY_REFRESH_SECONDS", get("DIRECTORY_REFRESH_SECONDS"), 1),
            counter_grace_days=_int("COUNTER_GRACE_DAYS", get("COUNTER_GRACE_DAYS"), 1),
            redis_key_prefix=prefix,
            decision_stream_maxlen=_int("DECISION_STREAM_MAXLEN", get("DECISION_STREAM_MAXLEN"), 1000),
            metrics_port=_int("METRICS_PORT", get("METRICS_PORT"), 0),
            enforcement_mode=mode,
            protected_principals=tuple(p.strip() for p in get("PROTECTED_PRINCIPALS").split(",") if p.strip()),
            deny_policy_name=policy_name,
            session_deny_policies=session_policies,
            max_quota_denies_per_hour=_int("MAX_QUOTA_DENIES_PER_HOUR", get("MAX_QUOTA_DENIES_PER_HOUR"), 0),
            reconcile_interval_seconds=_int("RECONCILE_INTERVAL_SECONDS", get("RECONCILE_INTERVAL_SECONDS"), 5),
            enforcer_metrics_port=_int("ENFORCER_METRICS_PORT", get("ENFORCER_METRICS_PORT"), 0),
            notify_language=language,
            notify_timezone=_zone(get("NOTIFY_TIMEZONE") or get("QUOTA_TIMEZONE"), "NOTIFY_TIMEZONE"),
            email_backend=backend,
            email_from=get("EMAIL_FROM").strip(),
            smtp_host=get("SMTP_HOST").strip(),
            smtp_port=_int("SMTP_PORT", get("SMTP_PORT"), 1),
            smtp_username=get("SMTP_USERNAME"),
            smtp_password=get("SMTP_PASSWORD"),
            smtp_starttls=_bool("SMTP_STARTTLS", get("SMTP_STARTTLS")),
            smtp_ca_file=get("SMTP_CA_FILE") or None,
            admin_emails=tuple(e.strip() for e in get("ADMIN_EMAILS").split(",") if e.strip()),
            alert_sns_topic_arn=get("ALERT_SNS_TOPIC_ARN").strip() or None,
            slack_webhook_url=get("SLACK_WEBHOOK_URL").strip() or None,
            teams_webhook_url=get("TEAMS_WEBHOOK_URL").strip() or None,
            notify_max_attempts=_int("NOTIFY_MAX_ATTEMPTS", get("NOTIFY_MAX_ATTEMPTS"), 1),
            notify_lease_seconds=_int("NOTIFY_LEASE_SECONDS", get("NOTIFY_LEASE_SECONDS"), 1),
            daily_summary_hour=summary_hour,
            notifier_metrics_port=_int("NOTIFIER_METRICS_PORT", get("NOTIFIER_METRICS_PORT"), 0),
            log_level=level,
        )
