"""End to end with moto's IAM authorisation on: a real user's Bedrock call works, the user goes over quota
through the real pipeline (Kinesis → KCL daemon → Redis decision → `bedrockctl enforcer run` → IAM), the
same call is then denied by IAM, and works again after the quota's reset.

In its own module: it switches moto's authorisation on (`/moto-api/reset-auth`), so it has a moto server
of its own. moto ignores policy conditions; session scoping is proven on the documents (tests/aws).
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pymysql
import pytest
from botocore.exceptions import ClientError
from prometheus_client import CollectorRegistry

from devtools.local_stack import Service, free_port
from devtools.moto_server import user_keys
from devtools.settings import AllSettings
from devtools.simulate import Person, bedrock_event
from enforcement.assembly import assemble_enforcer
from producer_config.rule import partition_key
from tests.e2e.conftest import Stack, e2e_env, rows, wait_until

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
MODEL = "amazon.titan-text-express-v1"  # no ':' — hypercorn hands moto a decoded path and the signature differs
LIMIT = 3


def _invoke(runtime: Any) -> int:
    try:
        runtime.invoke_model(modelId=MODEL, body=json.dumps({"inputText": "hello"}))
        return 200
    except ClientError as error:
        status = int(error.response["ResponseMetadata"]["HTTPStatusCode"])
        assert status == 403 and "AccessDenied" in str(error), error  # denied by IAM, nothing else
        return status


def test_over_quota_user_is_denied_by_iam_then_restored_at_the_reset(
    stack: Stack, mysql: pymysql.connections.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    iam = stack.moto.client("iam")
    admin = user_keys(iam, "bedrock-usage-control", "*")  # the services' identity once auth is on
    app = user_keys(iam, "app", ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"])
    application = stack.application("enforce")
    runtime = boto3.client("bedrock-runtime", endpoint_url=stack.moto.url, region_name="us-east-1",
                           aws_access_key_id=app["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=app["AWS_SECRET_ACCESS_KEY"])
    kinesis = boto3.client("kinesis", endpoint_url=stack.moto.url, region_name="us-east-1",
                           aws_access_key_id=admin["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"])
    stack.moto.reset_auth("0")
    enforcer = None
    try:
        limits = {"DEFAULT_DAILY_REQUEST_LIMIT": str(LIMIT), "DEFAULT_MONTHLY_REQUEST_LIMIT": "1000"}
        consumer = stack.start(application, **limits, **admin)
        env = {**stack.moto.env(), **e2e_env(STREAM_NAME=stack.stream, ENFORCER_METRICS_PORT=str(free_port()),
                                             RECONCILE_INTERVAL_SECONDS="3600", **limits, **admin)}
        enforcer = Service(env, tmp_path / "enforcer.log", command=("enforcer", "run")).start()

        assert _invoke(runtime) == 200  # allowed before

        # The calls as CloudTrail → EventBridge would put them on the stream (moto records no CloudTrail).
        person = Person("app", sso=False, account=ACCOUNT)
        events = [bedrock_event(person, datetime.now(UTC), random.Random(i)) for i in range(LIMIT)]
        kinesis.put_records(StreamName=stack.stream, Records=[
            {"Data": json.dumps(e).encode(), "PartitionKey": partition_key(e)} for e in events])

        wait_until(lambda: _invoke(runtime), lambda status: status == 403, timeout=60,
                   what="the over-quota user's call to be denied by IAM", alive=[consumer])
        assert enforcer.process is not None and enforcer.process.poll() is None
        ((until,),) = rows(mysql, "SELECT blocked_until FROM blocks WHERE principal = %s",
                           f"arn:aws:iam::{ACCOUNT}:user/app")

        # The reset: the expiry job run at the period's end (a clock past it, not a wait until midnight).
        for name, value in admin.items():
            monkeypatch.setenv(name, value)
        # A fresh default session: botocore keeps the credentials it first resolved, and an earlier test in
        # this process may have resolved moto's anonymous ones, which moto refuses once authorisation is on.
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        settings = AllSettings.from_env({**env})
        reset = assemble_enforcer(settings, registry=CollectorRegistry(), account_id=ACCOUNT,
                      clock=lambda: until.replace(tzinfo=UTC) + timedelta(seconds=1))
        try:
            (lifted,) = reset.enforcer.expire_due()
        finally:
            reset.close()
        assert lifted.principal == f"arn:aws:iam::{ACCOUNT}:user/app"
        deadline = time.monotonic() + 10
        while _invoke(runtime) != 200:
            assert time.monotonic() < deadline, "still denied after the reset"
            time.sleep(0.2)
    finally:
        stack.moto.reset_auth("inf")
        stopped = enforcer.stop() if enforcer is not None else None
    assert stopped == 0  # SIGTERM: the current decision finished, a clean exit
    kinds = sorted(r[0] for r in rows(mysql, "SELECT kind FROM notifications"))
    assert kinds == ["blocked", "unblocked", "warning"]  # 60 %; the 85 % came with the 100 %: the block says it

