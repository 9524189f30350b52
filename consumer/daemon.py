"""`bedrockctl consumer run`: supervise the KCL MultiLangDaemon.

Writes the daemon's properties from settings, starts the JVM (which starts one record-processor
process per shard it leases), serves /metrics (aggregated across those processes, prometheus
multiprocess mode) and /health on METRICS_PORT, forwards SIGTERM for a graceful shutdown (processors
get shutdown_requested and checkpoint), and exits with the daemon's exit code so ECS restarts it.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import amazon_kclpy
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from bedrock_usage import logs
from bedrock_usage.http import serve
from consumer.settings import ConsumerSettings

log = logging.getLogger("consumer.daemon")

MAIN_CLASS = "software.amazon.kinesis.multilang.MultiLangDaemon"


# What the KCL MultiLangDaemon calls with the task role (polling retrieval), declared beside the code
# that configures it; infra/ grants exactly this (tests/unit/test_infra.py). <…> are the stack's ARNs.
IAM_PERMISSIONS: tuple[dict[str, Any], ...] = (
    {"Sid": "ReadStream", "Action": ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary",
                                     "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"],
     "Resource": ["<STREAM_ARN>"]},
    {"Sid": "Leases", "Action": ["dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:Scan",
                                 "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                 "dynamodb:DeleteItem"],
     "Resource": ["<LEASE_TABLE_ARN>"]},
    {"Sid": "KclMetrics", "Action": ["cloudwatch:PutMetricData"], "Resource": ["*"]},
)


def jar_dir(settings: ConsumerSettings) -> Path:
    if settings.kcl_jar_dir:
        return Path(settings.kcl_jar_dir)
    return Path(amazon_kclpy.__file__).parent / "jars"


def render_properties(settings: ConsumerSettings, *, executable: str) -> str:
    """The daemon's properties file (pure). `executable` is split on spaces by the daemon."""
    props: dict[str, str | int] = {
        "executableName": executable,
        "streamName": settings.stream_name,
        "applicationName": settings.kcl_application_name,
        "regionName": settings.aws_region,
        "processingLanguage": f"python/{sys.version_info.major}.{sys.version_info.minor}",
        "initialPositionInStream": settings.kcl_initial_position.value,
        "retrievalMode": "POLLING",
        "idleTimeBetweenReadsInMillis": settings.kcl_poll_interval_ms,
        "maxRecords": settings.kcl_max_records,
        "failoverTimeMillis": settings.kcl_failover_ms,
        # Without a grace period SIGTERM skips shutdown_requested: no last checkpoint, a longer replay.
        "shutdownGraceMillis": max(10000, settings.kcl_failover_ms * 2),
        "parentShardPollIntervalMillis": 1000,
        # Empty polls reach the processor too: a person whose team lookup answered after their batch has
        # their held calls settled within a poll, and a backlog's last batch is acknowledged once caught up.
        "callProcessRecordsEvenForEmptyRecordList": "true",
    }
    if settings.aws_endpoint_url:
        # Local stack (moto): static credentials from the environment, no CloudWatch metrics.
        props.update(
            kinesisEndpoint=settings.aws_endpoint_url,
            dynamoDBEndpoint=settings.aws_endpoint_url,
            AWSCredentialsProvider="EnvironmentVariableCredentialsProvider",
            metricsLevel="NONE",
            shardSyncIntervalMillis=5000,
        )
    else:
        # ECS: the task role, through the default chain. KCL's own CloudWatch metrics at summary level.
        props.update(AWSCredentialsProvider="DefaultAWSCredentialsProviderChain", metricsLevel="SUMMARY")
    return "".join(f"{key} = {value}\n" for key, value in props.items())


def java_command(settings: ConsumerSettings, properties: Path, logback: Path) -> list[str]:
    return [
        shutil.which("java") or "java",
        # The daemon's Kinesis client defaults to CBOR, which moto answers with HTTP 500.
        *(["-Daws.cborEnabled=false"] if settings.aws_endpoint_url else []),
        "-cp", f"{jar_dir(settings)}/*",
        MAIN_CLASS, "--properties-file", str(properties), "--log-configuration", str(logback),
    ]


def _multiprocess_metrics() -> bytes:
    """The aggregate of every shard processor's metrics files (prometheus-client multiprocess mode)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def _work_dir() -> Path:
    """A fresh directory for the properties and the metrics files, named after this process. Those of
    supervisors that died without cleaning up (SIGKILL, OOM) are removed first."""
    parent = Path(tempfile.gettempdir()) / "bedrock-kcl"
    parent.mkdir(exist_ok=True)
    for old in parent.iterdir():
        pid = old.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=parent))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run(settings: ConsumerSettings) -> int:
    logs.setup("consumer", settings.log_level)
    if shutil.which("java") is None:
        log.error("java not found: the KCL MultiLangDaemon needs a Java runtime (17+)")
        return 2
    work = _work_dir()
    metrics_dir = work / "metrics"
    metrics_dir.mkdir()
    properties = work / "consumer.properties"
    properties.write_text(render_properties(settings, executable=f"{sys.executable} -m consumer.kcl_processor"))
    logback = work / "logback.xml"
    logback.write_text((Path(__file__).parent / "logback.xml").read_text())

    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    command = java_command(settings, properties, logback)
    log.info("starting the KCL daemon", extra={"stream": settings.stream_name,
                                               "application": settings.kcl_application_name})
    process = subprocess.Popen(command, env=env, stdout=sys.stderr, stderr=sys.stderr, cwd=work)

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    server = serve(settings.metrics_port,
                   lambda: (True, "ok") if process.poll() is None else (False, "daemon down"),
                   _multiprocess_metrics)

    stopping = threading.Event()

    def forward(signum: int, frame: FrameType | None) -> None:
        log.info("stopping the KCL daemon", extra={"signal": signum})
        stopping.set()
        process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = process.wait()
    server.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    log.info("KCL daemon exited", extra={"code": code})
    # The JVM exits 143 (128 + SIGTERM) after the graceful shutdown we asked for.
    return 0 if stopping.is_set() and code in (0, 143) else code
