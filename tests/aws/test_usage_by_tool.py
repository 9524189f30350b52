"""`bedrockctl usage --by-tool` (issue 15, part 3): each person's calls split by the tool that made them.

Keys made by `bedrockctl user create-key` (moto's IAM for the user, the named stand-in for the service-specific
credential API moto lacks), calls through the consumer's real core (real Redis and MariaDB) with CloudTrail's
`callWithBearerToken` and real-shaped user agents, then the report as bedrockctl prints it."""

from __future__ import annotations

import io
import json
import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pymysql
import pytest

from bedrockctl.main import main, parser
from consumer.assembly import ConsumerParts
from consumer.records import InputRecord
from devtools.simulate import Person, invocation_log, subscription_payload
from provisioning import key_commands
from provisioning.parts import Parts
from tests.aws.service_credentials import MotoLacksServiceCredentials
from tests.conftest import NOW, envelope, records

ACCOUNT = "123456789012"  # moto's
ALICE_KEY = f"arn:aws:iam::{ACCOUNT}:user/bedrock-access/alice"
BOB_KEY = f"arn:aws:iam::{ACCOUNT}:user/bedrock-access/bob"
BOTO3 = ("Boto3/1.40.61 md/Botocore#1.40.61 ua/2.1 os/linux#6.8.0 md/arch#x86_64 lang/python#3.12.7"
         " md/pyimpl#CPython m/Z,b cfg/retry-mode#legacy Botocore/1.40.61")
# The AWS SDK for JavaScript v3 with AWS_SDK_UA_APP_ID=cline: the SDKs append `app/<id>` to every call.
JS_CLINE = ("aws-sdk-js/3.901.0 ua/2.1 os/darwin#24.6.0 lang/js md/nodejs#22.20.0 api/bedrock-runtime#3.901.0"
            " m/E,N app/cline")
JS_NOTEBOOK = JS_CLINE.replace("app/cline", "app/notebook")
LITELLM = "litellm/1.77.7"


@pytest.fixture
def keys(stand_in_parts: tuple[Parts, MotoLacksServiceCredentials]) -> Parts:
    assert main(["team", "create", "data"]) == 0
    assert main(["user", "create", "alice", "--person", "Ana García", "--team", "data"]) == 0
    assert main(["user", "create", "bob", "--person", "Bob", "--team", "data", "--tool", "jupyter"]) == 0
    return stand_in_parts[0]


def create_key(parts: Parts, user: str, tool: str, made_at: datetime, mysql: pymysql.connections.Connection) -> str:
    """`bedrockctl user create-key`, then its row dated `made_at` (the key was made before the calls below)."""
    args = parser().parse_args(["user", "create-key", user, "--tool", tool, "--by", "ops"])
    assert key_commands.create_key(parts, args, io.StringIO()) == 0
    with mysql.cursor() as cur:
        cur.execute("SELECT credential_id FROM bedrock_api_keys WHERE tool = %s", (tool,))
        (credential,) = cur.fetchone() or (None,)
        cur.execute("UPDATE bedrock_api_keys SET created_at = %s WHERE credential_id = %s",
                    (made_at.replace(tzinfo=None), credential))
    mysql.commit()
    return str(credential)


def call(user: str, minutes_ago: int, agent: str, *, bearer: bool, seed: int,
         error: str | None = None) -> dict[str, Any]:
    event = envelope(Person(user, sso=False, account=ACCOUNT), NOW - timedelta(minutes=minutes_ago), seed=seed,
                     error=error)
    detail = event["detail"]
    detail["userIdentity"]["arn"] = f"arn:aws:iam::{ACCOUNT}:user/bedrock-access/{user}"
    detail["userAgent"] = agent
    if bearer:  # as CloudTrail marks a call made with a Bedrock API key
        detail["additionalEventData"] = {"callWithBearerToken": True}
    return event


def by_tool(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["usage", "--by-tool", "--json", *argv]) == 0
    listed: list[dict[str, Any]] = json.loads(capsys.readouterr().out, parse_float=Decimal)
    return listed


def test_calls_are_split_by_the_tool_of_the_key_the_app_id_or_the_user_agent(
        keys: Parts, mysql: pymysql.connections.Connection, make_consumer: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    create_key(keys, "alice", "claude-code", NOW - timedelta(minutes=60), mysql)
    cline = create_key(keys, "alice", "cline", NOW - timedelta(minutes=30), mysql)
    events = [
        call("alice", 70, LITELLM, bearer=True, seed=1),  # a key's call before any recorded key: its agent
        call("alice", 45, BOTO3, bearer=True, seed=2),  # only the claude-code key live
        call("alice", 40, JS_CLINE, bearer=True, seed=3),  # only claude-code live: the key wins over the app ID
        call("alice", 20, JS_CLINE, bearer=True, seed=4),  # both live: the app ID picks the cline key
        call("alice", 15, BOTO3, bearer=True, seed=5),  # both live, nothing picks: the agent
        call("alice", 10, BOTO3, bearer=False, seed=6),  # SigV4: the agent
        call("alice", 5, JS_NOTEBOOK, bearer=False, seed=7),  # SigV4 with an app ID
        call("bob", 5, BOTO3, bearer=False, seed=8),
        call("bob", 4, BOTO3, bearer=False, seed=9, error="ThrottlingException"),
    ]
    logs = [invocation_log(e, random.Random(i)) for i, e in enumerate(events[1:4])]  # three calls' cost
    consumer: ConsumerParts = make_consumer()
    consumer.processor.process(records(events))
    consumer.processor.process([InputRecord(subscription_payload(logs), "shardId-000000000001", "1")])

    with mysql.cursor() as cur:  # the consumer kept which calls were made with a key
        cur.execute("SELECT event_id, bearer_token FROM bedrock_calls")
        assert dict(cur.fetchall()) == {
            e["detail"]["eventID"]: int("additionalEventData" in e["detail"]) for e in events}
        cur.execute("SELECT request_id, cost_usd FROM invocation_logs")  # each logged call's cost, as metered
        cost = {str(r): Decimal(c) for r, c in cur.fetchall()}
    mysql.commit()
    assert len(cost) == 3 and all(c > 0 for c in cost.values())

    def cost_of(*seeds: int) -> Decimal:
        return sum((cost.get(events[s - 1]["detail"]["requestID"], Decimal(0)) for s in seeds), Decimal(0))

    day = NOW.astimezone(ZoneInfo("Europe/Madrid")).date().isoformat()
    rows = by_tool(capsys, "--date", day)
    split = {(r["principal"], r["tool"], r["basis"]): (r["requests"], r["failed"], r["api_key_requests"],
                                                        r["cost_usd"]) for r in rows}
    assert split == {
        (ALICE_KEY, "claude-code", "api-key"): (2, 0, 2, cost_of(2, 3)),
        (ALICE_KEY, "cline", "api-key"): (1, 0, 1, cost_of(4)),
        (ALICE_KEY, "Boto3", "user-agent"): (2, 0, 1, Decimal(0)),
        (ALICE_KEY, "litellm", "user-agent"): (1, 0, 1, Decimal(0)),
        (ALICE_KEY, "notebook", "app-id"): (1, 0, 0, Decimal(0)),
        (BOB_KEY, "jupyter", "user-tag"): (1, 1, 0, Decimal(0)),  # SigV4, no app ID: his user's Tool tag
    }
    assert {(r["display_name"], r["team"]) for r in rows} == {("Ana García", "data"), ("Bob", "data")}
    assert [(r["principal"], r["requests"] + r["failed"]) for r in rows] == [  # by person, most calls first
        (ALICE_KEY, 2), (ALICE_KEY, 2), (ALICE_KEY, 1), (ALICE_KEY, 1), (ALICE_KEY, 1), (BOB_KEY, 2)]
    # The same for one person, one team, and the month; none for a team that made no calls.
    assert {(r["tool"], r["requests"]) for r in by_tool(capsys, "--date", day, "--user", BOB_KEY)} == {("jupyter", 1)}
    assert len(by_tool(capsys, "--date", day, "--team", "data")) == 6
    assert by_tool(capsys, "--date", day, "--team", "other") == []
    assert len(by_tool(capsys, "--month", day[:7])) == 6

    # A key revoked before the calls it would have made: those calls are no longer the key's.
    args = parser().parse_args(["user", "revoke-key", "alice", cline, "--by", "ops"])
    assert key_commands.revoke_key(keys, args, io.StringIO()) == 0
    with mysql.cursor() as cur:
        cur.execute("UPDATE bedrock_api_keys SET revoked_at = %s WHERE credential_id = %s",
                    ((NOW - timedelta(minutes=25)).replace(tzinfo=None), cline))
    mysql.commit()
    after = {(r["tool"], r["basis"]): r["requests"] for r in by_tool(capsys, "--date", day, "--user", ALICE_KEY)}
    assert after == {("claude-code", "api-key"): 4, ("Boto3", "user-agent"): 1, ("litellm", "user-agent"): 1,
                     ("notebook", "app-id"): 1}

    # The table for people to read.
    capsys.readouterr()
    assert main(["usage", "--by-tool", "--date", day]) == 0
    printed = capsys.readouterr().out
    assert "claude-code" in printed and "api-key" in printed and ALICE_KEY in printed


def test_by_tool_refuses_what_it_cannot_report(keys: Parts, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in [(["--by-tool", "--teams"], "per person"),
                          (["--by-tool", "--date", "2026-11-01", "--month", "2026-11"], "not both"),
                          (["--by-tool", "--month", "11-2026"], "not YYYY-MM"),
                          (["--by-tool", "--date", "1/11/2026"], "not YYYY-MM-DD"),
                          (["--date", "2026-13-01"], "not YYYY-MM-DD"),
                          (["--month", "2026-11"], "goes with --by-tool")]:
        capsys.readouterr()
        assert main(["usage", *argv]) == 2  # as every admin's mistake: one line, exit 2
        err = capsys.readouterr().err
        assert err.startswith("bedrockctl: ") and message in err, (argv, err)
