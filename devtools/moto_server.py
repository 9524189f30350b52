"""moto served by hypercorn, and what the local stack needs on it: the stream, the KCL lease table and
IAM users with keys. Development only: moto and hypercorn are dev dependencies, imported by the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from devtools.local_stack import REPO, free_port

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class MotoServer:
    """moto on 127.0.0.1:<port>, one hypercorn worker (moto keeps its state in that process)."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> MotoServer:
        out = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        # hypercorn puts the directory of the module path (the repository) on sys.path: devtools.moto_app.
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hypercorn", "--workers", "1", "--bind", f"127.0.0.1:{self.port}",
             "wsgi:devtools.moto_app:app"],
            cwd=REPO, stdout=out, stderr=out, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self._process.returncode}")
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.url}")

    def stop(self) -> None:
        """Stop hypercorn and its worker (they share a process group of their own)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=region,  # type: ignore[call-overload]
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def reset_auth(self, value: str) -> None:
        """moto's IAM authorisation: `0` checks every following request (keys, then policies); `inf`
        checks none (moto's default). Its body is a bare number, sent as text/plain."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset-auth", data=value.encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=10).read()

    def env(self, region: str = "us-east-1") -> dict[str, str]:
        return {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": self.url, "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region}


def user_keys(iam: Any, name: str, actions: str | list[str], *, create: bool = True) -> dict[str, str]:
    """An IAM user allowed `actions`, and access keys for it as environment variables: what a request
    needs once moto's authorisation is on (the default `testing` keys are then refused)."""
    if create:
        iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="access", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def ensure_stream(kinesis: Any, name: str, shards: int = 2, timeout: float = 30.0) -> None:
    with contextlib.suppress(kinesis.exceptions.ResourceInUseException):
        kinesis.create_stream(StreamName=name, ShardCount=shards)
    deadline = time.monotonic() + timeout
    while kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise RuntimeError(f"stream {name} did not become ACTIVE")
        time.sleep(0.2)


def precreate_leases(dynamodb: Any, kinesis: Any, application: str, stream: str) -> None:
    """Create the KCL lease table with one lease per shard, as the KCL itself would.

    A brand-new KCL application otherwise waits a random 1-30 s ("lease table is still empty") before
    its first shard sync: fine in production, where it happens once, slow for demos and tests.
    """
    try:
        dynamodb.create_table(
            TableName=application, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
        )
    except dynamodb.exceptions.ResourceInUseException:
        return
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        item = {
            "leaseKey": {"S": shard["ShardId"]},
            "checkpoint": {"S": "TRIM_HORIZON"},
            "checkpointSubSequenceNumber": {"N": "0"},
            "leaseCounter": {"N": "0"},
            "ownerSwitchesSinceCheckpoint": {"N": "0"},
            "startingHashKey": {"S": shard["HashKeyRange"]["StartingHashKey"]},
            "endingHashKey": {"S": shard["HashKeyRange"]["EndingHashKey"]},
        }
        if shard.get("ParentShardId"):
            item["parentShardIds"] = {"SS": [shard["ParentShardId"]]}
        dynamodb.put_item(TableName=application, Item=item)
