"""Every IAM permission each service's code uses, gathered from where it is declared (beside the code
that makes the calls). infra/ grants each task role exactly these; tests/unit/test_infra.py compares.
`<STREAM_ARN>`-style resources are the stack's own ARNs."""

from __future__ import annotations

from typing import Any

Statement = dict[str, Any]


def for_service(service: str) -> list[Statement]:
    # Imported here: each is the service's own module, and bedrockctl should not load them all.
    if service == "consumer":
        from bedrock_usage.pricing import profiles  # noqa: PLC0415
        from consumer import daemon, lookups  # noqa: PLC0415

        return [*daemon.IAM_PERMISSIONS, *lookups.IAM_PERMISSIONS, *profiles.IAM_PERMISSIONS]
    if service == "enforcer":
        from enforcement import iam  # noqa: PLC0415

        return list(iam.IAM_PERMISSIONS)
    if service == "notifier":
        from notifier.channels import ses, sns  # noqa: PLC0415

        return [*ses.IAM_PERMISSIONS, *sns.IAM_PERMISSIONS]
    raise ValueError(f"unknown service {service!r}")


SERVICES = ("consumer", "enforcer", "notifier")
