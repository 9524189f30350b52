"""Settings: defaults, parsing, a clear error (naming the variable) for each bad value, and each process
reading only its own (plus the shared ones)."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bedrock_usage.config import MySQLParams, SettingsError
from bedrock_usage.settings import SharedSettings
from bedrockctl.settings_command import readers
from console.settings import ConsoleSettings
from consumer.settings import ConsumerSettings, KclInitialPosition
from devtools.settings import AllSettings
from enforcement.settings import EnforcerSettings
from notifier.settings import NotifierSettings
from producer_config.settings import ProducerSettings
from provisioning.settings import ProvisioningSettings

SPECS = AllSettings.specs()

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults() -> None:
    settings = AllSettings.from_env({})

    assert settings.quota_timezone == ZoneInfo("Europe/Madrid")
    assert (settings.default_daily_limit, settings.default_monthly_limit) == (250, 5000)
    assert (settings.default_team_daily_limit, settings.default_team_monthly_limit) == (None, None)
    assert settings.warning_thresholds == (60, 85)
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.mysql_url == "mysql://root@127.0.0.1:3306/bedrock_usage"
    assert settings.mysql == MySQLParams("127.0.0.1", 3306, "root", "", "bedrock_usage")
    assert settings.aws_endpoint_url is None
    assert settings.aws_region == "us-east-1"
    assert (settings.stream_name, settings.kcl_application_name) == ("bedrock-usage-events", "bedrock-usage-consumer")
    assert settings.kcl_initial_position == "TRIM_HORIZON"
    assert (settings.kcl_poll_interval_ms, settings.kcl_max_records, settings.kcl_failover_ms) == (250, 10000, 10000)
    assert settings.kcl_jar_dir is None
    assert settings.default_team == "unassigned"
    assert settings.session_roles == ()
    assert settings.team_tag_lookup is True
    assert settings.counter_grace_days == 3
    assert settings.redis_key_prefix == "bu"
    assert settings.decision_stream_maxlen == 1_000_000
    assert settings.metrics_port == 9101
    assert settings.log_level == "INFO"


def test_every_spec_default_is_valid() -> None:
    env = {spec.name: spec.default for spec in SPECS if spec.default is not None}

    assert AllSettings.from_env(env) == AllSettings.from_env({})


def test_values_from_the_environment() -> None:
    settings = AllSettings.from_env({
        "QUOTA_TIMEZONE": "America/New_York",
        "DEFAULT_DAILY_REQUEST_LIMIT": "",
        "DEFAULT_TEAM_MONTHLY_REQUEST_LIMIT": "90000",
        "WARNING_THRESHOLDS": " 85, 50,85 ,",
        "SESSION_ROLES": " Dev*, ci-* ,,",
        "TEAM_TAG_LOOKUP": "off",
        "KCL_INITIAL_POSITION": "latest",
        "LOG_LEVEL": "debug",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "KCL_JAR_DIR": "/opt/kcl/jars",
    })

    assert settings.quota_timezone == ZoneInfo("America/New_York")
    assert settings.default_daily_limit is None
    assert settings.default_team_monthly_limit == 90000
    assert settings.warning_thresholds == (50, 85)
    assert settings.session_roles == ("Dev*", "ci-*")
    assert settings.team_tag_lookup is False
    assert settings.kcl_initial_position is KclInitialPosition.LATEST
    assert settings.log_level == "DEBUG"
    assert settings.aws_endpoint_url == "http://127.0.0.1:5000"
    assert settings.kcl_jar_dir == "/opt/kcl/jars"


def test_overrides_win_over_the_environment() -> None:
    settings = AllSettings.from_env({"STREAM_NAME": "from-env", "AWS_REGION": "eu-west-1"}, STREAM_NAME="override")

    assert (settings.stream_name, settings.aws_region) == ("override", "eu-west-1")


def test_mysql_url_parsing() -> None:
    params = MySQLParams.from_url("mysql://us%40er:p%40ss%3Aw%2Fd%25@db.internal:3307/usage_db")

    assert params == MySQLParams(host="db.internal", port=3307, user="us@er", password="p@ss:w/d%",
                                 database="usage_db")


def test_mysql_url_defaults_and_pymysql_scheme() -> None:
    assert MySQLParams.from_url("mysql+pymysql://db.internal/usage") == MySQLParams(
        "db.internal", 3306, "root", "", "usage")


def test_mysql_url_reaches_settings() -> None:
    settings = AllSettings.from_env({"MYSQL_URL": "mysql://app:s%23cret@10.0.0.5:3310/bu"})

    assert settings.mysql == MySQLParams("10.0.0.5", 3310, "app", "s#cret", "bu")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("KCL_POLL_INTERVAL_MS", "fast", "KCL_POLL_INTERVAL_MS must be an integer, got 'fast'"),
        ("KCL_MAX_RECORDS", "0", "KCL_MAX_RECORDS must be >= 1, got 0"),
        ("KCL_FAILOVER_MS", "500", "KCL_FAILOVER_MS must be >= 1000, got 500"),
        ("DEFAULT_DAILY_REQUEST_LIMIT", "2.5", "DEFAULT_DAILY_REQUEST_LIMIT must be an integer, got '2.5'"),
        ("DEFAULT_MONTHLY_REQUEST_LIMIT", "0", "DEFAULT_MONTHLY_REQUEST_LIMIT must be >= 1, got 0"),
        ("COUNTER_GRACE_DAYS", "0", "COUNTER_GRACE_DAYS must be >= 1, got 0"),
        ("DECISION_STREAM_MAXLEN", "10", "DECISION_STREAM_MAXLEN must be >= 1000, got 10"),
        ("METRICS_PORT", "http", "METRICS_PORT must be an integer, got 'http'"),
        ("WARNING_THRESHOLDS", "60,abc", "WARNING_THRESHOLDS must be an integer, got 'abc'"),
        ("WARNING_THRESHOLDS", "0,50", "WARNING_THRESHOLDS must be >= 1, got 0"),
    ],
)
def test_bad_integers_name_the_variable_and_the_value(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        AllSettings.from_env({name: value})

    assert str(error.value) == message


@pytest.mark.parametrize("value", ["60,100", "100", "50,150"])
def test_warning_thresholds_must_be_below_100(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^WARNING_THRESHOLDS are percentages below 100"):
        AllSettings.from_env({"WARNING_THRESHOLDS": value})


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe/Madrid ", "", "../../etc/passwd", "/etc/localtime"])
def test_unknown_time_zone(zone: str) -> None:
    with pytest.raises(SettingsError) as error:
        AllSettings.from_env({"QUOTA_TIMEZONE": zone})

    assert str(error.value) == f"QUOTA_TIMEZONE {zone!r} is not an IANA time zone"


@pytest.mark.parametrize("position", ["AT_TIMESTAMP", "earliest", ""])
def test_bad_initial_position(position: str) -> None:
    with pytest.raises(SettingsError) as error:
        AllSettings.from_env({"KCL_INITIAL_POSITION": position})

    assert str(error.value) == f"KCL_INITIAL_POSITION must be TRIM_HORIZON or LATEST, got {position.upper()!r}"


@pytest.mark.parametrize("url", ["mysql://root@127.0.0.1:3306", "mysql://root@127.0.0.1:3306/", "mysql://db"])
def test_mysql_url_without_database(url: str) -> None:
    with pytest.raises(SettingsError, match=r"^MYSQL_URL must name a database"):
        AllSettings.from_env({"MYSQL_URL": url})


def test_mysql_url_of_another_scheme() -> None:
    with pytest.raises(SettingsError, match=r"^MYSQL_URL must start with mysql://"):
        AllSettings.from_env({"MYSQL_URL": "postgres://root@127.0.0.1/bedrock_usage"})


@pytest.mark.parametrize("url", ["mysql://root@127.0.0.1:port/bedrock_usage", "mysql://root@127.0.0.1:99999/bu"])
def test_mysql_url_with_a_bad_port(url: str) -> None:
    with pytest.raises(SettingsError, match="MYSQL_URL"):
        AllSettings.from_env({"MYSQL_URL": url})


def test_unknown_override_name() -> None:
    with pytest.raises(SettingsError) as error:
        AllSettings.from_env({}, REDIS_URI="redis://x", STREAM="s")

    assert str(error.value) == "unknown settings: ['REDIS_URI', 'STREAM']"


def test_unknown_names_in_the_environment_are_ignored() -> None:
    assert AllSettings.from_env({"PATH": "/usr/bin", "REDIS_URI": "x"}) == AllSettings.from_env({})


@pytest.mark.parametrize(
    ("name", "value", "pattern"),
    [
        ("TEAM_TAG_LOOKUP", "maybe", r"^TEAM_TAG_LOOKUP must be true or false, got 'maybe'$"),
        ("LOG_LEVEL", "trace", r"^LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got 'TRACE'$"),
        ("REDIS_KEY_PREFIX", "bu:prod", r"^REDIS_KEY_PREFIX must be non-empty"),
        ("REDIS_KEY_PREFIX", "{bu}", r"^REDIS_KEY_PREFIX must be non-empty"),
        ("REDIS_KEY_PREFIX", "", r"^REDIS_KEY_PREFIX must be non-empty"),
        ("DEFAULT_TEAM", "  ", r"^DEFAULT_TEAM must not be empty$"),
    ],
)
def test_other_bad_values(name: str, value: str, pattern: str) -> None:
    with pytest.raises(SettingsError, match=pattern):
        AllSettings.from_env({name: value})


def test_spec_names_are_unique() -> None:
    names = [spec.name for spec in SPECS]

    assert len(names) == len(set(names))


def _readme_settings_table(text: str) -> list[str]:
    """Variables of the README table (first column a backticked `VARIABLE`) holding most of the SPECS."""
    tables: list[list[str]] = [[]]
    for line in text.splitlines():
        if not line.lstrip().startswith("|"):
            if tables[-1]:
                tables.append([])
            continue
        match = re.match(r"^\s*\|\s*`([A-Z][A-Z0-9_]*)`\s*\|", line)
        if match:
            tables[-1].append(match.group(1))
    names = {spec.name for spec in SPECS}
    return max(tables, key=lambda table: len(names & set(table)))


def _readme_readers(text: str) -> dict[str, str]:
    """The README table's "Read by" column, by variable."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^\s*\|\s*`([A-Z][A-Z0-9_]*)`\s*\|[^|]*\|\s*([a-z, ]+?)\s*\|", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_readme_settings_table_lists_exactly_the_specs() -> None:
    table = _readme_settings_table(README.read_text())

    missing = [spec.name for spec in SPECS if spec.name not in table]
    unknown = [name for name in table if name not in {spec.name for spec in SPECS}]
    assert missing == [], f"settings missing from README.md's table: {missing}"
    assert unknown == [], f"README.md's settings table lists unknown variables: {unknown}"


def test_source_regions_in_the_order_given_without_repeats() -> None:
    assert AllSettings.from_env({}).source_regions == ()
    settings = AllSettings.from_env({"SOURCE_REGIONS": " eu-west-1,us-gov-west-1,, eu-west-1 ,ap-southeast-4"})

    assert settings.source_regions == ("eu-west-1", "us-gov-west-1", "ap-southeast-4")


@pytest.mark.parametrize("value", ["Europe", "eu-west", "EU-WEST-1", "eu-west-1,eu_west_2", "eu-west-12a"])
def test_a_source_region_that_is_not_a_region_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError) as error:
        AllSettings.from_env({"SOURCE_REGIONS": value})

    assert str(error.value).startswith("SOURCE_REGIONS must be comma-separated AWS regions (e.g. eu-west-1), got '")
    assert "\n" not in str(error.value)


def test_the_readme_says_which_process_reads_each_setting() -> None:
    assert _readme_readers(README.read_text()) == {spec.name: reader for spec, reader in readers()}


def test_every_setting_is_read_by_exactly_one_settings_class_or_shared() -> None:
    owners = [spec.name for klass in (SharedSettings, ConsumerSettings, EnforcerSettings, NotifierSettings,
                                      ProducerSettings, ConsoleSettings, ProvisioningSettings)
              for spec in klass.__dict__["OWN_SPECS"]]

    assert sorted(owners) == sorted(spec.name for spec in SPECS)


@pytest.mark.parametrize("klass", [EnforcerSettings, NotifierSettings, ProducerSettings, SharedSettings])
def test_a_bad_kcl_setting_stops_only_the_consumer(klass: type[SharedSettings]) -> None:
    env = {"KCL_MAX_RECORDS": "lots", "KCL_INITIAL_POSITION": "middle"}

    assert klass.from_env(env).aws_region == "us-east-1"
    with pytest.raises(SettingsError, match="KCL_INITIAL_POSITION"):
        ConsumerSettings.from_env(env)


def test_the_console_reads_the_enforcers_settings_and_needs_its_alb_to_serve() -> None:
    settings = ConsoleSettings.from_env({"PROTECTED_PRINCIPALS": "arn:aws:iam::*:user/breakglass-*"})
    assert settings.protected_principals == ("arn:aws:iam::*:user/breakglass-*",)  # blocks as the enforcer does
    with pytest.raises(SettingsError, match="CONSOLE_ALB_ARN is required"):
        settings.check_serving()
    ConsoleSettings.from_env({}, CONSOLE_AUTH="local").check_serving()
    with pytest.raises(SettingsError, match="CONSOLE_ALB_ARN must be"):
        ConsoleSettings.from_env({}, CONSOLE_ALB_ARN="arn:aws:iam::1:role/x")
    with pytest.raises(SettingsError, match="CONSOLE_SERVICE_URLS"):
        ConsoleSettings.from_env({}, CONSOLE_SERVICE_URLS="consumer:9101")


def test_a_bad_notifier_setting_stops_only_the_notifier() -> None:
    env = {"EMAIL_BACKEND": "pigeon", "SMTP_PORT": "x"}

    assert ConsumerSettings.from_env(env).kcl_max_records == 10000
    assert EnforcerSettings.from_env(env).enforcement_mode == "enforce"
    with pytest.raises(SettingsError, match="EMAIL_BACKEND must be ses, smtp or none"):
        NotifierSettings.from_env(env)


def test_a_process_refuses_an_override_it_does_not_read() -> None:
    with pytest.raises(SettingsError, match="unknown settings: \\['KCL_MAX_RECORDS'\\]"):
        NotifierSettings.from_env({}, KCL_MAX_RECORDS="5")


def test_a_shared_bad_value_stops_every_process() -> None:
    for klass in (ConsumerSettings, EnforcerSettings, NotifierSettings, ProducerSettings):
        with pytest.raises(SettingsError, match="QUOTA_TIMEZONE"):
            klass.from_env({"QUOTA_TIMEZONE": "Mars/Olympus"})


def test_redis_cluster_is_off_by_default_and_needs_database_0() -> None:
    assert SharedSettings.from_env({}).redis_cluster is False
    on = SharedSettings.from_env({"REDIS_CLUSTER": "true", "REDIS_URL": "rediss://cfg.example:6379"})
    assert on.redis_cluster is True
    assert SharedSettings.from_env({"REDIS_CLUSTER": "yes", "REDIS_URL": "redis://node:7000/0"}).redis_cluster
    with pytest.raises(SettingsError, match="REDIS_URL must name database 0"):
        SharedSettings.from_env({"REDIS_CLUSTER": "true", "REDIS_URL": "redis://node:7000/9"})
    with pytest.raises(SettingsError, match="REDIS_CLUSTER"):
        SharedSettings.from_env({"REDIS_CLUSTER": "sometimes"})
