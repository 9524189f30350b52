"""Fetching the Price List through a real boto3 pricing client (moto has no Pricing service: a botocore
Stubber serves recorded GetProducts pages and checks each request)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from bedrock_usage.pricing import price_list
from bedrock_usage.pricing.price_list import fetch, fetch_price_table
from tests.pricing_stubs import fake_credentials, page, stub_client, stub_price_list


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_credentials(monkeypatch)


def test_every_page_of_every_service_code_is_read() -> None:
    client, stubber = stub_price_list()
    with stubber:
        result = fetch(client, effective_from=date(2025, 11, 3))
        stubber.assert_no_pending_responses()  # all 8 pages asked for, with the right NextTokens
    assert result.products == 57
    models = {e.model for e in result.table.entries}
    # one model from each service code's last page: paging reached them
    assert {"meta.llama3-1-70b-instruct-v1:0", "anthropic.claude-opus-4-5-20251101-v1:0"} <= models
    assert "anthropic.claude-sonnet-4-20250514-v1:0" in models  # AmazonBedrockService
    assert "via the us-east-1 endpoint" in result.table.source


def test_fetch_price_table_is_effective_today_by_default() -> None:
    client, stubber = stub_price_list("ap-south-1")
    with stubber:
        table = fetch_price_table(client)
    assert table.effective_from == datetime.now(UTC).date()
    assert "via the ap-south-1 endpoint" in table.source
    sonnet = next(e for e in table.entries if e.model == "anthropic.claude-sonnet-4-5-20250929-v1:0"
                  and e.scope == "global")
    assert sonnet.rates.cache_write_1h == Decimal("6")


def test_an_aws_error_propagates_and_nothing_is_half_fetched() -> None:
    client = stub_client("pricing", "us-east-1")
    stubber = Stubber(client)
    stubber.add_response("get_products", page("amazonbedrock-page1.json"))
    stubber.add_client_error("get_products", "AccessDeniedException", "not authorized to perform pricing:GetProducts",
                             http_status_code=400)
    with stubber, pytest.raises(ClientError) as raised:
        fetch(client)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"


def test_a_pagination_that_never_ends_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(price_list, "MAX_PAGES", 3)
    client = stub_client("pricing", "us-east-1")
    stubber = Stubber(client)
    for _ in range(3):
        stubber.add_response("get_products", page("amazonbedrock-page1.json"))
    with stubber, pytest.raises(price_list.PriceListError, match="still paginating after 3 pages"):
        fetch(client)
    stubber.assert_no_pending_responses()
