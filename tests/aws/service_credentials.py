"""A stand-in for the one IAM API moto does not implement: service-specific credentials (Bedrock API keys).

`MotoLacksServiceCredentials` wraps the real moto IAM client: every other call goes to moto; the four
credential calls check their parameters against botocore's own IAM model (a misspelt or missing parameter
fails as it would on AWS), check the user exists in moto (NoSuchEntity otherwise), and answer in the shape
of IAM's documented responses. IAM's limit of two credentials per user and service is enforced.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from botocore.validate import validate_parameters


class MotoLacksServiceCredentials:
    def __init__(self, moto_iam: Any) -> None:
        self._iam = moto_iam
        self.held: dict[str, dict[str, Any]] = {}  # by credential ID, secrets excluded
        self.secrets_shown: list[str] = []  # each secret IAM returned, to find it (or not) in outputs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._iam, name)

    def _checked(self, operation: str, params: dict[str, Any]) -> None:
        model = self._iam.meta.service_model.operation_model(operation)
        validate_parameters(params, model.input_shape)
        self._iam.get_user(UserName=params["UserName"])  # NoSuchEntity, as IAM answers

    def _find(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self.held.get(params["ServiceSpecificCredentialId"])
        if found is None or found["UserName"] != params["UserName"]:
            raise ClientError({"Error": {"Code": "NoSuchEntity", "Message": "credential not found"}},
                              "ServiceSpecificCredential")
        return found

    def create_service_specific_credential(self, **params: Any) -> dict[str, Any]:
        self._checked("CreateServiceSpecificCredential", params)
        user, service = params["UserName"], params["ServiceName"]
        if sum(1 for c in self.held.values() if (c["UserName"], c["ServiceName"]) == (user, service)) >= 2:
            raise ClientError({"Error": {"Code": "LimitExceeded", "Message": "two per service"}},
                              "CreateServiceSpecificCredential")
        now = datetime.now(UTC).replace(microsecond=0)
        credential_id = "ACCA" + secrets.token_hex(8).upper()
        metadata = {"CreateDate": now, "ServiceName": service, "ServiceSpecificCredentialId": credential_id,
                    "UserName": user, "Status": "Active",
                    "ServiceCredentialAlias": f"{user}-at-{self._iam.meta.region_name}"}
        if "CredentialAgeDays" in params:
            metadata["ExpirationDate"] = now + timedelta(days=params["CredentialAgeDays"])
        self.held[credential_id] = metadata
        secret = "ABSK" + secrets.token_urlsafe(48)
        self.secrets_shown.append(secret)
        return {"ServiceSpecificCredential": {**metadata, "ServiceCredentialSecret": secret}}

    def made_elsewhere(self, user: str) -> str:
        """A Bedrock API key made outside bedrockctl (the console, the AWS CLI): its credential ID."""
        made = self.create_service_specific_credential(UserName=user, ServiceName="bedrock.amazonaws.com")
        return str(made["ServiceSpecificCredential"]["ServiceSpecificCredentialId"])

    def list_service_specific_credentials(self, **params: Any) -> dict[str, Any]:
        self._checked("ListServiceSpecificCredentials", params)
        found = [dict(c) for c in self.held.values() if c["UserName"] == params["UserName"]
                 and params.get("ServiceName") in (None, c["ServiceName"])]
        return {"ServiceSpecificCredentials": found, "IsTruncated": False}

    def update_service_specific_credential(self, **params: Any) -> dict[str, Any]:
        self._checked("UpdateServiceSpecificCredential", params)
        self._find(params)["Status"] = params["Status"]
        return {}

    def delete_service_specific_credential(self, **params: Any) -> dict[str, Any]:
        self._checked("DeleteServiceSpecificCredential", params)
        self._find(params)
        del self.held[params["ServiceSpecificCredentialId"]]
        return {}
