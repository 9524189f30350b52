"""consumer.daemon: the MultiLangDaemon's properties and command line, rendered from settings (pure)."""

from __future__ import annotations

import sys
from pathlib import Path

import amazon_kclpy

from consumer.daemon import MAIN_CLASS, jar_dir, java_command, render_properties
from devtools.settings import AllSettings

EXECUTABLE = "/srv/venv/bin/python -m consumer.kcl_processor"
MOTO = "http://127.0.0.1:5000"
PYTHON = f"python/{sys.version_info.major}.{sys.version_info.minor}"


def parse(text: str) -> dict[str, str]:
    assert text.endswith("\n")
    pairs = [line.split(" = ", 1) for line in text.splitlines()]
    assert all(len(pair) == 2 for pair in pairs), text
    return dict(pairs)


def test_local_properties_point_every_client_at_the_endpoint() -> None:
    settings = AllSettings.from_env({"AWS_ENDPOINT_URL": MOTO})

    assert parse(render_properties(settings, executable=EXECUTABLE)) == {
        "executableName": EXECUTABLE,
        "streamName": "bedrock-usage-events",
        "applicationName": "bedrock-usage-consumer",
        "regionName": "us-east-1",
        "processingLanguage": PYTHON,
        "initialPositionInStream": "TRIM_HORIZON",
        "retrievalMode": "POLLING",
        "idleTimeBetweenReadsInMillis": "250",
        "callProcessRecordsEvenForEmptyRecordList": "true",
        "maxRecords": "10000",
        "failoverTimeMillis": "10000",
        "shutdownGraceMillis": "20000",
        "parentShardPollIntervalMillis": "1000",
        "kinesisEndpoint": MOTO,
        "dynamoDBEndpoint": MOTO,
        "AWSCredentialsProvider": "EnvironmentVariableCredentialsProvider",
        "metricsLevel": "NONE",
        "shardSyncIntervalMillis": "5000",
    }


def test_aws_properties_use_the_default_chain_and_no_endpoints() -> None:
    settings = AllSettings.from_env({})

    props = parse(render_properties(settings, executable=EXECUTABLE))

    assert props == {
        "executableName": EXECUTABLE,
        "streamName": "bedrock-usage-events",
        "applicationName": "bedrock-usage-consumer",
        "regionName": "us-east-1",
        "processingLanguage": PYTHON,
        "initialPositionInStream": "TRIM_HORIZON",
        "retrievalMode": "POLLING",
        "idleTimeBetweenReadsInMillis": "250",
        "callProcessRecordsEvenForEmptyRecordList": "true",
        "maxRecords": "10000",
        "failoverTimeMillis": "10000",
        "shutdownGraceMillis": "20000",
        "parentShardPollIntervalMillis": "1000",
        "AWSCredentialsProvider": "DefaultAWSCredentialsProviderChain",
        "metricsLevel": "SUMMARY",
    }
    assert "Endpoint" not in render_properties(settings, executable=EXECUTABLE)


def test_properties_take_their_values_from_settings() -> None:
    settings = AllSettings.from_env({
        "STREAM_NAME": "usage-prod",
        "KCL_APPLICATION_NAME": "usage-consumer-prod",
        "AWS_REGION": "eu-west-1",
        "KCL_POLL_INTERVAL_MS": "1000",
        "KCL_MAX_RECORDS": "500",
        "KCL_FAILOVER_MS": "30000",
        "KCL_INITIAL_POSITION": "latest",
    })

    props = parse(render_properties(settings, executable=EXECUTABLE))

    assert {k: props[k] for k in (
        "streamName", "applicationName", "regionName", "idleTimeBetweenReadsInMillis", "maxRecords",
        "failoverTimeMillis", "shutdownGraceMillis", "initialPositionInStream")} == {
        "streamName": "usage-prod",
        "applicationName": "usage-consumer-prod",
        "regionName": "eu-west-1",
        "idleTimeBetweenReadsInMillis": "1000",
        "maxRecords": "500",
        "failoverTimeMillis": "30000",
        "shutdownGraceMillis": "60000",  # twice the failover time
        "initialPositionInStream": "LATEST",
    }


def test_shutdown_grace_is_at_least_ten_seconds() -> None:
    settings = AllSettings.from_env({"KCL_FAILOVER_MS": "2000"})

    assert parse(render_properties(settings, executable=EXECUTABLE))["shutdownGraceMillis"] == "10000"


def test_local_java_command_disables_cbor() -> None:
    settings = AllSettings.from_env({"AWS_ENDPOINT_URL": MOTO, "KCL_JAR_DIR": "/opt/kcl/jars"})

    command = java_command(settings, Path("/tmp/w/consumer.properties"), Path("/tmp/w/logback.xml"))

    assert Path(command[0]).name == "java"
    assert command[1:] == [
        "-Daws.cborEnabled=false",
        "-cp", "/opt/kcl/jars/*",
        MAIN_CLASS, "--properties-file", "/tmp/w/consumer.properties", "--log-configuration", "/tmp/w/logback.xml",
    ]


def test_aws_java_command_keeps_cbor() -> None:
    settings = AllSettings.from_env({"KCL_JAR_DIR": "/opt/kcl/jars"})

    command = java_command(settings, Path("/tmp/w/consumer.properties"), Path("/tmp/w/logback.xml"))

    assert "-Daws.cborEnabled=false" not in command
    assert command[1:] == [
        "-cp", "/opt/kcl/jars/*",
        MAIN_CLASS, "--properties-file", "/tmp/w/consumer.properties", "--log-configuration", "/tmp/w/logback.xml",
    ]


def test_default_jar_dir_is_the_installed_amazon_kclpy_jars() -> None:
    settings = AllSettings.from_env({})
    expected = Path(amazon_kclpy.__file__).parent / "jars"

    assert jar_dir(settings) == expected
    assert java_command(settings, Path("p"), Path("l"))[1:3] == ["-cp", f"{expected}/*"]
    assert any(jar.name.startswith("amazon-kinesis-client-multilang-") for jar in expected.glob("*.jar"))


def test_main_class_is_the_multilang_daemon() -> None:
    assert MAIN_CLASS == "software.amazon.kinesis.multilang.MultiLangDaemon"
