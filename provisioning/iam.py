"""IAM adapter of the provisioning commands: the reads and writes of teams' groups and policies and of
people's users, each a single IAM call or a paginated read.

A read of something absent returns None (or nothing) instead of raising `NoSuchEntity`: the commands
compare what is with what should be, and act only on the difference. Deleting what is already gone is a
success, so that a command interrupted half-way can be run again. Throttling is left to botocore's
adaptive retries (an admin's command, not a service's loop).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import unquote

from botocore.exceptions import ClientError

# What this module calls, declared beside it; for an admin's or a provisioning role, never the services'.
# Scoped to the default PROVISIONING_PATH: a deployment with another path grants its own.
_USERS = "arn:aws:iam::*:user/bedrock-access/*"
_GROUPS = "arn:aws:iam::*:group/bedrock-access/*"
_POLICIES = "arn:aws:iam::*:policy/bedrock-access/*"
IAM_PERMISSIONS: tuple[dict[str, Any], ...] = (
    {"Sid": "TeamGroups", "Action": [
        "iam:GetGroup", "iam:CreateGroup", "iam:DeleteGroup", "iam:AddUserToGroup", "iam:RemoveUserFromGroup",
        "iam:ListAttachedGroupPolicies"], "Resource": [_GROUPS]},
    {"Sid": "AttachOnlyTeamPolicies", "Action": ["iam:AttachGroupPolicy", "iam:DetachGroupPolicy"],
     "Resource": [_GROUPS], "Condition": {"ArnLike": {"iam:PolicyARN": [_POLICIES]}}},
    {"Sid": "TeamPolicies", "Action": [
        "iam:CreatePolicy", "iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions",
        "iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:DeletePolicy"], "Resource": [_POLICIES]},
    {"Sid": "People", "Action": [
        "iam:GetUser", "iam:CreateUser", "iam:DeleteUser", "iam:TagUser", "iam:UntagUser", "iam:ListUserTags",
        "iam:ListGroupsForUser", "iam:ListUserPolicies", "iam:DeleteUserPolicy", "iam:ListAttachedUserPolicies",
        "iam:DetachUserPolicy", "iam:ListAccessKeys", "iam:DeleteAccessKey", "iam:GetLoginProfile",
        "iam:DeleteLoginProfile"], "Resource": [_USERS]},
    {"Sid": "BedrockApiKeys", "Action": [
        "iam:CreateServiceSpecificCredential", "iam:ListServiceSpecificCredentials",
        "iam:UpdateServiceSpecificCredential", "iam:DeleteServiceSpecificCredential"], "Resource": [_USERS]},
    {"Sid": "ListPeopleAndGroups", "Action": ["iam:ListUsers", "iam:ListGroups"], "Resource": ["*"]},
    {"Sid": "WhoAmI", "Action": ["sts:GetCallerIdentity"], "Resource": ["*"]},
)
MAX_POLICY_VERSIONS = 5  # IAM's limit per managed policy


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _absent(error: ClientError) -> bool:
    return _code(error) == "NoSuchEntity"


@contextmanager
def _gone_is_fine() -> Iterator[None]:
    """Removing what IAM no longer has is done, not an error: every command can run twice, or after a change
    made elsewhere."""
    try:
        yield
    except ClientError as error:
        if not _absent(error):
            raise


BEDROCK_SERVICE = "bedrock.amazonaws.com"  # the service name of a Bedrock API key
MAX_KEYS_PER_SERVICE = 2  # IAM's limit of service-specific credentials per user and service


class ServiceCredentials(Protocol):
    """IAM's service-specific credentials (Bedrock API keys among them): a port of their own, since moto
    does not implement them (tests pass a stand-in for those four calls)."""

    def ids(self, user: str) -> list[str]: ...

    def listing(self, user: str, service: str) -> list[dict[str, Any]]: ...

    def create(self, user: str, service: str, age_days: int | None) -> dict[str, Any]: ...

    def set_status(self, user: str, credential_id: str, status: str) -> None: ...

    def delete(self, user: str, credential_id: str) -> None: ...


class IamServiceCredentials:
    def __init__(self, client: Any) -> None:
        self._client = client

    def _all(self, **params: Any) -> Iterator[dict[str, Any]]:
        # No botocore paginator for this call; IAM pages with Marker (a user holds a handful at most).
        while True:
            page = self._client.list_service_specific_credentials(**params)
            yield from page.get("ServiceSpecificCredentials", ())
            if not page.get("IsTruncated"):
                return
            params = {**params, "Marker": page["Marker"]}

    def ids(self, user: str) -> list[str]:
        return [str(c["ServiceSpecificCredentialId"]) for c in self._all(UserName=user)]

    def listing(self, user: str, service: str) -> list[dict[str, Any]]:
        """Every credential of the user for the service (Active, Inactive or Expired), oldest first."""
        return sorted(self._all(UserName=user, ServiceName=service), key=lambda c: c["CreateDate"])

    def create(self, user: str, service: str, age_days: int | None) -> dict[str, Any]:
        """The new credential, its secret included (IAM returns it this once)."""
        params: dict[str, Any] = {"UserName": user, "ServiceName": service}
        if age_days is not None:
            params["CredentialAgeDays"] = age_days
        return dict(self._client.create_service_specific_credential(**params)["ServiceSpecificCredential"])

    def set_status(self, user: str, credential_id: str, status: str) -> None:
        self._client.update_service_specific_credential(UserName=user, ServiceSpecificCredentialId=credential_id,
                                                        Status=status)

    def delete(self, user: str, credential_id: str) -> None:
        with _gone_is_fine():
            self._client.delete_service_specific_credential(UserName=user, ServiceSpecificCredentialId=credential_id)


class Iam:
    def __init__(self, client: Any, account_id: str, credentials: ServiceCredentials | None = None) -> None:
        self.client = client
        self.account_id = account_id
        self.credentials = credentials or IamServiceCredentials(client)

    def _pages(self, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        for page in self.client.get_paginator(operation).paginate(**params):
            yield from page.get(key, ())

    # Groups -----------------------------------------------------------------------------------------
    def group(self, name: str) -> dict[str, Any] | None:
        """The group and its members' user names, or None."""
        try:
            pages = list(self.client.get_paginator("get_group").paginate(GroupName=name))
        except ClientError as error:
            if _absent(error):
                return None
            raise
        members = sorted(str(u["UserName"]) for page in pages for u in page.get("Users", ()))
        return {**pages[0]["Group"], "Members": members}

    def groups(self, path: str) -> list[dict[str, Any]]:
        return list(self._pages("list_groups", "Groups", PathPrefix=path))

    def create_group(self, name: str, path: str) -> None:
        self.client.create_group(GroupName=name, Path=path)

    def delete_group(self, name: str) -> None:
        with _gone_is_fine():
            self.client.delete_group(GroupName=name)

    def attached_to_group(self, name: str) -> list[str]:
        return [str(p["PolicyArn"]) for p in self._pages("list_attached_group_policies", "AttachedPolicies",
                                                         GroupName=name)]

    def attach_to_group(self, name: str, policy_arn: str) -> None:
        self.client.attach_group_policy(GroupName=name, PolicyArn=policy_arn)

    def detach_from_group(self, name: str, policy_arn: str) -> None:
        with _gone_is_fine():
            self.client.detach_group_policy(GroupName=name, PolicyArn=policy_arn)

    def add_to_group(self, user: str, group: str) -> None:
        self.client.add_user_to_group(UserName=user, GroupName=group)

    def remove_from_group(self, user: str, group: str) -> None:
        with _gone_is_fine():
            self.client.remove_user_from_group(UserName=user, GroupName=group)

    # Managed policies -------------------------------------------------------------------------------
    def policy_arn(self, name: str, path: str) -> str:
        return f"arn:aws:iam::{self.account_id}:policy{path}{name}"

    def policy_document(self, arn: str) -> dict[str, Any] | None:
        """The default version's document, or None when there is no such policy."""
        try:
            version = self.client.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            text = self.client.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        except ClientError as error:
            if _absent(error):
                return None
            raise
        # boto3 decodes the URL-encoded JSON; some endpoints hand it back still encoded.
        return dict(json.loads(unquote(text))) if isinstance(text, str) else dict(text)

    def create_policy(self, name: str, path: str, doc: dict[str, Any], description: str) -> None:
        self.client.create_policy(PolicyName=name, Path=path, PolicyDocument=json.dumps(doc),
                                  Description=description)

    def versions(self, arn: str) -> list[dict[str, Any]]:
        """Oldest first."""
        found = list(self._pages("list_policy_versions", "Versions", PolicyArn=arn))
        return sorted(found, key=lambda v: int(str(v["VersionId"]).lstrip("v") or 0))

    def create_version(self, arn: str, doc: dict[str, Any]) -> None:
        self.client.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(doc), SetAsDefault=True)

    def delete_version(self, arn: str, version_id: str) -> None:
        with _gone_is_fine():
            self.client.delete_policy_version(PolicyArn=arn, VersionId=version_id)

    def delete_policy(self, arn: str) -> None:
        with _gone_is_fine():
            self.client.delete_policy(PolicyArn=arn)

    # Users ------------------------------------------------------------------------------------------
    def user(self, name: str) -> dict[str, Any] | None:
        """The user with its tags as a dict, or None."""
        try:
            found: dict[str, Any] = self.client.get_user(UserName=name)["User"]
        except ClientError as error:
            if _absent(error):
                return None
            raise
        tags = {str(t["Key"]): str(t["Value"]) for t in self._pages("list_user_tags", "Tags", UserName=name)}
        return {**found, "Tags": tags}

    def users(self, path: str) -> list[dict[str, Any]]:
        return list(self._pages("list_users", "Users", PathPrefix=path))

    def create_user(self, name: str, path: str, tags: dict[str, str]) -> None:
        self.client.create_user(UserName=name, Path=path, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def tag_user(self, name: str, tags: dict[str, str]) -> None:
        self.client.tag_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def untag_user(self, name: str, keys: list[str]) -> None:
        self.client.untag_user(UserName=name, TagKeys=keys)

    def groups_of(self, name: str) -> list[str]:
        return sorted(str(g["GroupName"]) for g in self._pages("list_groups_for_user", "Groups", UserName=name))

    def inline_policies(self, name: str) -> list[str]:
        return [str(p) for p in self._pages("list_user_policies", "PolicyNames", UserName=name)]

    def delete_inline_policy(self, name: str, policy: str) -> None:
        with _gone_is_fine():
            self.client.delete_user_policy(UserName=name, PolicyName=policy)

    def attached_to_user(self, name: str) -> list[str]:
        return [str(p["PolicyArn"]) for p in self._pages("list_attached_user_policies", "AttachedPolicies",
                                                         UserName=name)]

    def detach_from_user(self, name: str, policy_arn: str) -> None:
        with _gone_is_fine():
            self.client.detach_user_policy(UserName=name, PolicyArn=policy_arn)

    def access_keys(self, name: str) -> list[str]:
        return [str(k["AccessKeyId"]) for k in self._pages("list_access_keys", "AccessKeyMetadata", UserName=name)]

    def delete_access_key(self, name: str, key_id: str) -> None:
        with _gone_is_fine():
            self.client.delete_access_key(UserName=name, AccessKeyId=key_id)

    def has_login_profile(self, name: str) -> bool:
        try:
            self.client.get_login_profile(UserName=name)
        except ClientError as error:
            if _absent(error):
                return False
            raise
        return True

    def delete_login_profile(self, name: str) -> None:
        with _gone_is_fine():
            self.client.delete_login_profile(UserName=name)

    def delete_user(self, name: str) -> None:
        with _gone_is_fine():
            self.client.delete_user(UserName=name)
