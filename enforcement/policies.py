"""The deny policies the product owns: their names, their documents, and the session pool (pure).

Two kinds of customer-managed policy, all under the path `/bedrock-usage-control/`:

- `<DENY_POLICY_NAME>`: a fixed document denying Bedrock to whoever it is attached to. Attached to an
  IAM user (or to a role whose whole self is the quota subject) to deny them, detached to restore them.
  Its document never changes, so the enforcer's role can be limited to attaching exactly this ARN.
- `<DENY_POLICY_NAME>Sessions1..N`: the session pool. Each holds one Deny statement whose condition
  lists sessions by `aws:userid` (`AROA…:session`, or `*:user` for Identity Center users, whose user
  name is their session name on every permission set). It is attached to the shared roles once (by the
  enforcer for ordinary roles, by the permission set for Identity Center — which must reference these
  and never the unconditional policy above) and changed by new policy
  versions. When one fills up (6,144 characters, whitespace not counted), entries go to the next.

A document that is not in the shape written here (edited by hand, say) is *unreadable*: the enforcer
refuses to rewrite it rather than lose what someone put there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

POLICY_PATH = "/bedrock-usage-control/"
# Converse and ConverseStream are authorised as InvokeModel / InvokeModelWithResponseStream;
# CallWithBearerToken covers Bedrock API keys, which otherwise bypass an identity's deny.
DENIED_ACTIONS: tuple[str, ...] = (
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
    "bedrock:CallWithBearerToken",
)
MANAGED_POLICY_MAX_CHARS = 6144  # IAM's limit for a managed policy document, whitespace excluded
MAX_POLICY_VERSIONS = 5  # IAM keeps at most five versions of a managed policy
USER_SID = "BedrockUsageControlDeny"
SESSION_SID = "BedrockUsageControlDenySessions"
# A pool policy with nobody in it still needs a condition value: one no real aws:userid can take
# (role IDs are upper-case AROA…, so "BedrockUsageControl" is never one).
NOBODY = "BedrockUsageControl:nobody"


class UnreadablePolicy(ValueError):
    """A policy document is not in the shape the enforcer writes: it will not overwrite it."""


class PoolFull(Exception):
    """Every session policy is full: more SESSION_DENY_POLICIES are needed."""


@dataclass(frozen=True)
class PolicyNames:
    """The names (and, given the account, ARNs) of the product's policies."""

    base: str
    session_count: int

    @property
    def user(self) -> str:
        return self.base

    @property
    def sessions(self) -> tuple[str, ...]:
        return tuple(f"{self.base}Sessions{i}" for i in range(1, self.session_count + 1))

    @property
    def all(self) -> tuple[str, ...]:
        return (self.user, *self.sessions)

    @staticmethod
    def arn(account_id: str, name: str, partition: str = "aws") -> str:
        return f"arn:{partition}:iam::{account_id}:policy{POLICY_PATH}{name}"


def compact(document: dict[str, Any]) -> str:
    """The document as sent to IAM: no whitespace, so its length is what IAM counts."""
    return json.dumps(document, separators=(",", ":"))


def user_deny_document() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": USER_SID, "Effect": "Deny", "Action": list(DENIED_ACTIONS), "Resource": "*"}],
    }


def session_document(user_ids: Iterable[str]) -> dict[str, Any]:
    values = sorted(set(user_ids)) or [NOBODY]
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": SESSION_SID,
            "Effect": "Deny",
            "Action": list(DENIED_ACTIONS),
            "Resource": "*",
            "Condition": {"StringLike": {"aws:userid": values}},
        }],
    }


def session_entries(document: dict[str, Any] | str) -> frozenset[str]:
    """The aws:userid values a pool document denies; UnreadablePolicy if it is not ours."""
    doc = json.loads(document) if isinstance(document, str) else document
    try:
        (statement,) = doc["Statement"]
        if statement.get("Sid") != SESSION_SID or statement.get("Effect") != "Deny":
            raise UnreadablePolicy(f"statement is not {SESSION_SID!r} Deny")
        if sorted(statement["Action"]) != sorted(DENIED_ACTIONS) or statement.get("Resource") != "*":
            raise UnreadablePolicy("actions or resource differ from the product's")
        values = statement["Condition"]["StringLike"]["aws:userid"]
        if set(statement["Condition"]) != {"StringLike"} or set(statement["Condition"]["StringLike"]) != {
                "aws:userid"}:
            raise UnreadablePolicy("condition has more than aws:userid")
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, UnreadablePolicy):
            raise
        raise UnreadablePolicy(f"not a session pool document: {error!r}") from None
    if isinstance(values, str):
        values = [values]
    return frozenset(str(v) for v in values) - {NOBODY}


def fits(user_ids: Iterable[str]) -> bool:
    return len(compact(session_document(user_ids))) <= MANAGED_POLICY_MAX_CHARS


def place(entry: str, pools: Sequence[frozenset[str]]) -> int:
    """Index of the pool policy the entry goes to: where it already is, else the first with room."""
    for index, entries in enumerate(pools):
        if entry in entries:
            return index
    for index, entries in enumerate(pools):
        if fits(entries | {entry}):
            return index
    raise PoolFull(f"all {len(pools)} session deny policies are full; raise SESSION_DENY_POLICIES")


def oldest_removable_version(versions: Sequence[dict[str, Any]]) -> str | None:
    """The version to delete before creating a new one, when IAM's five are taken (never the default)."""
    if len(versions) < MAX_POLICY_VERSIONS:
        return None
    candidates = [v for v in versions if not v.get("IsDefaultVersion")]
    oldest = min(candidates, key=lambda v: (v["CreateDate"], int(str(v["VersionId"]).lstrip("v") or 0)))
    return str(oldest["VersionId"])
