"""boto3 clients built from settings (AWS_ENDPOINT_URL points every client at moto locally)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from bedrock_usage.settings import SharedSettings

_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=20)
# For callers that retry on their own terms (the enforcer's IAM adapter: named throttling codes only).
_NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=20)


def client(settings: SharedSettings, service: str, *, own_retries: bool = False, region: str | None = None) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name=region or settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=_NO_RETRIES if own_retries else _CONFIG,
    )


def account_id(settings: SharedSettings) -> str:
    """The account these credentials belong to (STS GetCallerIdentity needs no permission)."""
    return str(client(settings, "sts").get_caller_identity()["Account"])
