"""Recorded AWS answers for the APIs moto lacks (Pricing GetProducts, Bedrock GetInferenceProfile), served by a
botocore Stubber on real boto3 clients: the request each call must make is checked, the answer is the
recording."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

EVENTS = Path(__file__).parent / "events"
# The recorded GetProducts pages of each service code, in order (each but the last carries a NextToken).
PAGES = {
    "AmazonBedrock": ["amazonbedrock-page1.json", "amazonbedrock-page2.json", "amazonbedrock-page3.json"],
    "AmazonBedrockFoundationModels": ["foundationmodels-page1.json", "foundationmodels-page2.json",
                                      "foundationmodels-page3.json"],
    "AmazonBedrockService": ["bedrockservice-page1.json", "bedrockservice-page2.json"],
}


def stub_client(service: str, region: str, **options: Any) -> Any:
    """A real client with credentials of its own: never boto3's default session, whose credentials, once
    resolved, would stay cached for every later test of the process (the e2e tests switch keys)."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    return session.client(service, region_name=region, **options)  # type: ignore[call-overload]


def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients need credentials to exist; the Stubber answers before anything is signed or sent."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def page(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / "pricing" / name).read_text())
    return loaded


def stub_price_list(region: str = "us-east-1") -> tuple[Any, Stubber]:
    """A real pricing client whose stubber expects every recorded page, in the order a full fetch asks."""
    client = stub_client("pricing", region)
    stubber = Stubber(client)
    for code, names in PAGES.items():
        token = None
        for name in names:
            expected: dict[str, Any] = {"ServiceCode": code, "FormatVersion": "aws_v1", "MaxResults": 100}
            if token:
                expected["NextToken"] = token
            answer = page(name)
            stubber.add_response("get_products", answer, expected)
            token = answer.get("NextToken")
    return client, stubber


def profile_answer(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / "bedrock" / f"get-inference-profile-{name}.json").read_text())
    return loaded
