"""IAM adapter: the product's deny policies in one AWS account.

Every write names one of the product's own policy ARNs (`policies.PolicyNames`), so the enforcer's role
can be limited to them (`IAM_PERMISSIONS`, checked against the role in `infra/`). Applying and lifting
are idempotent: attaching an attached policy or listing a listed session changes nothing, and lifting
what is already gone (`NoSuchEntity`) is a success. Throttling is retried here, on named codes only,
with jittered, capped backoff; anything else propagates.

Pool policies are read-modify-write: `lock` (a Redis lock shared by the enforcer and bedrockctl)
serialises writers, so two processes never drop each other's entries.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from bedrock_usage.retry import backoff_delay
from enforcement import policies
from enforcement.group_commit import GroupCommit
from enforcement.policies import PolicyNames, UnreadablePolicy
from enforcement.targets import Refusal, RefusalReason, Target, TargetKind

log = logging.getLogger(__name__)

THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
    "ServiceFailure", "ServiceUnavailable", "ConcurrentModification",
})
MAX_ATTEMPTS = 8
BACKOFF_CAP_SECONDS = 5.0

_POLICY_ARN = "arn:aws:iam::*:policy/bedrock-usage-control/*"
# What this module calls, declared beside it; infra/ grants exactly this (a test compares them).
IAM_PERMISSIONS: tuple[dict[str, Any], ...] = (
    {"Sid": "OwnPolicies", "Action": [
        "iam:CreatePolicy", "iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions",
        "iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:ListEntitiesForPolicy"],
     "Resource": [_POLICY_ARN]},
    {"Sid": "AttachOnlyOwnPolicies", "Action": [
        "iam:AttachUserPolicy", "iam:DetachUserPolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy"],
     "Resource": ["arn:aws:iam::*:user/*", "arn:aws:iam::*:role/*"],
     "Condition": {"ArnLike": {"iam:PolicyARN": [_POLICY_ARN]}}},
    {"Sid": "ReadRoleAttachments", "Action": ["iam:ListAttachedRolePolicies"], "Resource": ["arn:aws:iam::*:role/*"]},
    {"Sid": "WhoAmI", "Action": ["sts:GetCallerIdentity"], "Resource": ["*"]},
)


@dataclass(frozen=True, slots=True)
class Change:
    changed: bool
    description: str  # the IAM call(s) made, for the audit row


class IamRefused(Exception):
    """IAM state prevents a scoped deny (full pool, unreadable policy, too many policies on the user)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.detail)
        self.refusal = refusal


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _version_number(version_id: str) -> int:
    return int(version_id.lstrip("v") or 0)


def transient(error: ClientError) -> bool:
    """Throttling or an AWS-side failure: worth retrying later. Anything else (AccessDenied from an SCP,
    UnmodifiableEntity, InvalidInput…) will fail the same way every time."""
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return _code(error) in THROTTLING_CODES or status >= 500


def _refusal_of(error: ClientError, what: str) -> IamRefused:
    message = str(error.response.get("Error", {}).get("Message", ""))
    return IamRefused(Refusal(RefusalReason.IAM_ERROR, f"{what}: {_code(error)} {message}".strip()))


class IamPolicies:
    def __init__(
        self, client: Any, account_id: str, names: PolicyNames, *,
        lock: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
        on_retry: Callable[[str], None] = lambda code: None, sleep: Callable[[float], None] = time.sleep,
        partition: str = "aws",
    ) -> None:
        self._iam, self._names, self._lock = client, names, lock
        self._on_retry, self._sleep = on_retry, sleep
        self._user_arn = PolicyNames.arn(account_id, names.user, partition)
        self._pool_arns = tuple(PolicyNames.arn(account_id, n, partition) for n in names.sessions)
        self._roles_with_pool: set[str] = set()
        self._ensured = False
        # The last version this process wrote to each pool policy: IAM is eventually consistent, and a
        # read right after a write may still show the previous default version; building on that would
        # undo the write. A default version older than ours is read as ours.
        self._written: dict[str, tuple[int, frozenset[str]]] = {}
        self._session_adds: GroupCommit[str, str] = GroupCommit(self._add_sessions)

    @property
    def user_policy_arn(self) -> str:
        return self._user_arn

    @property
    def pool_policy_arns(self) -> tuple[str, ...]:
        return self._pool_arns

    # -- calls ------------------------------------------------------------------------------------

    def _call(self, operation: str, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            try:
                return getattr(self._iam, operation)(**kwargs)
            except ClientError as error:
                code = _code(error)
                attempt += 1
                if code not in THROTTLING_CODES or attempt >= MAX_ATTEMPTS:
                    raise
                self._on_retry(code)
                delay = backoff_delay(attempt, base=0.1, cap=BACKOFF_CAP_SECONDS)
                log.warning("IAM throttled, retrying", extra={"operation": operation, "code": code,
                                                               "attempt": attempt, "delay_s": round(delay, 2)})
                self._sleep(delay)

    def _pages(self, operation: str, result_key: str, **kwargs: Any) -> Iterator[Any]:
        marker: str | None = None
        while True:
            page = self._call(operation, **kwargs, **({"Marker": marker} if marker else {}))
            yield from page.get(result_key, [])
            if not page.get("IsTruncated"):
                return
            marker = page["Marker"]

    # -- set-up -----------------------------------------------------------------------------------

    def ensure_policies(self) -> list[str]:
        """Create the product's policies where missing (they must exist before a permission set can
        reference them). Returns the names created."""
        created = []
        documents = {self._user_arn: policies.user_deny_document()}
        documents.update({arn: policies.session_document(()) for arn in self._pool_arns})
        for (arn, document), name in zip(documents.items(), self._names.all, strict=True):
            try:
                self._call("get_policy", PolicyArn=arn)
                continue
            except ClientError as error:
                if _code(error) != "NoSuchEntity":
                    raise
            try:
                self._call("create_policy", PolicyName=name, Path=policies.POLICY_PATH,
                           PolicyDocument=policies.compact(document),
                           Description="Bedrock Usage Control: denies Bedrock to people over quota. Managed by"
                                       " the enforcer; do not edit.")
                created.append(name)
            except ClientError as error:
                if _code(error) != "EntityAlreadyExists":  # another process created it meanwhile
                    raise
        self._ensured = True
        return created

    def _ensure_once(self) -> None:
        if not self._ensured:
            self.ensure_policies()

    # -- apply / lift -----------------------------------------------------------------------------

    def apply(self, target: Target) -> Change:
        """Deny the target. A lasting IAM error becomes a refusal (recorded, alerted), so one person's
        problem never stalls everyone else's decisions; throttling and AWS failures propagate (retried)."""
        try:
            self._ensure_once()
            match target.kind:
                case TargetKind.USER:
                    return self._attach(TargetKind.USER, target.value)
                case TargetKind.ROLE:
                    return self._attach(TargetKind.ROLE, target.value)
                case TargetKind.SESSION:
                    return self._add_session(target)
        except ClientError as error:
            if transient(error):
                raise
            raise _refusal_of(error, f"deny {target}") from None

    def lift(self, target: Target) -> Change:
        try:
            match target.kind:
                case TargetKind.USER:
                    return self._detach(TargetKind.USER, target.value)
                case TargetKind.ROLE:
                    return self._detach(TargetKind.ROLE, target.value)
                case TargetKind.SESSION:
                    return self._remove_session(target.value)
        except ClientError as error:
            if transient(error):
                raise
            raise _refusal_of(error, f"lift {target}") from None

    def _attach(self, kind: TargetKind, name: str) -> Change:
        """`kind`: a user or a role (sessions are denied through the session policies)."""
        operation = "attach_user_policy" if kind is TargetKind.USER else "attach_role_policy"
        try:
            self._call(operation, **{"UserName" if kind is TargetKind.USER else "RoleName": name},
                       PolicyArn=self._user_arn)
        except ClientError as error:
            if _code(error) == "LimitExceeded":
                raise IamRefused(Refusal(RefusalReason.POLICY_LIMIT,
                                         f"{kind} {name} already has the most managed policies IAM allows")) from None
            if _code(error) == "NoSuchEntity":
                raise IamRefused(Refusal(RefusalReason.NO_SUCH_ENTITY,
                                         f"{kind} {name} does not exist in IAM")) from None
            raise
        return Change(True, f"{''.join(p.title() for p in operation.split('_'))} {self._names.user} → {kind} {name}")

    def _detach(self, kind: TargetKind, name: str) -> Change:
        operation = "detach_user_policy" if kind is TargetKind.USER else "detach_role_policy"
        try:
            self._call(operation, **{"UserName" if kind is TargetKind.USER else "RoleName": name},
                       PolicyArn=self._user_arn)
        except ClientError as error:
            if _code(error) == "NoSuchEntity":  # not attached, or the user is gone: nothing to lift
                return Change(False, f"{kind} {name}: deny policy not attached")
            raise
        return Change(True, f"{''.join(p.title() for p in operation.split('_'))} {self._names.user} ← {kind} {name}")

    # -- the session pool -------------------------------------------------------------------------

    def _read_pool(self, arn: str) -> frozenset[str]:
        try:
            version = self._call("get_policy", PolicyArn=arn)["Policy"]["DefaultVersionId"]
            ours = self._written.get(arn)
            if ours is not None and ours[0] > _version_number(version):
                return ours[1]
            document = self._call("get_policy_version", PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        except ClientError as error:
            if transient(error):
                raise
            raise IamRefused(Refusal(RefusalReason.POLICY_UNREADABLE, f"{arn}: {_code(error)}")) from None
        if isinstance(document, str):
            document = unquote(document)  # raw API answers are URL-encoded
        try:
            return policies.session_entries(document)
        except UnreadablePolicy as error:
            raise IamRefused(Refusal(RefusalReason.POLICY_UNREADABLE, f"{arn}: {error}")) from None

    def _write_pool(self, arn: str, entries: frozenset[str]) -> None:
        versions = self._call("list_policy_versions", PolicyArn=arn)["Versions"]
        removable = policies.oldest_removable_version(versions)
        if removable:
            self._call("delete_policy_version", PolicyArn=arn, VersionId=removable)
        created = self._call("create_policy_version", PolicyArn=arn, SetAsDefault=True,
                             PolicyDocument=policies.compact(policies.session_document(entries)))
        self._written[arn] = (_version_number(created["PolicyVersion"]["VersionId"]), entries)

    def _add_session(self, target: Target) -> Change:
        # Grouped with the sessions other threads (a team's lanes) are adding meanwhile: one write for all.
        changes = [change] if (change := self._session_adds.submit(target.value)) else []
        if target.role_name:
            changes += self._attach_pool(target.role_name)
        return Change(bool(changes), "; ".join(changes) or f"{target.value} already denied")

    def _add_sessions(self, values: list[str]) -> dict[str, str | Exception]:
        """Add sessions to the pools in one read-modify-write: for each, the change made ("" if it was
        there already) or its refusal (no room left)."""
        answers: dict[str, str | Exception] = {}
        with self._lock():
            pools = [self._read_pool(arn) for arn in self._pool_arns]
            changed: set[int] = set()
            for value in values:
                try:
                    index = policies.place(value, pools)
                except policies.PoolFull as error:
                    answers[value] = IamRefused(Refusal(RefusalReason.POOL_FULL, str(error)))
                    continue
                if value in pools[index]:
                    answers[value] = ""
                    continue
                pools[index] = pools[index] | {value}
                changed.add(index)
                answers[value] = f"CreatePolicyVersion {self._names.sessions[index]} + aws:userid {value}"
            for index in sorted(changed):
                self._write_pool(self._pool_arns[index], pools[index])
        return answers

    def _remove_session(self, value: str) -> Change:
        changes = []
        with self._lock():
            for arn, name in zip(self._pool_arns, self._names.sessions, strict=True):
                entries = self._read_pool(arn)
                if value in entries:
                    self._write_pool(arn, entries - {value})
                    changes.append(f"CreatePolicyVersion {name} - aws:userid {value}")
        return Change(bool(changes), "; ".join(changes) or f"{value}: not in the session policies")

    def ensure_pool_attached(self, role_name: str) -> list[str]:
        """The reconciler's check that a shared role still carries the session policies (someone may
        have detached one by hand): re-attaches what is missing, returns what it did."""
        self._roles_with_pool.discard(role_name)
        try:
            return self._attach_pool(role_name)
        except ClientError as error:
            if transient(error):
                raise
            raise _refusal_of(error, f"attach the session policies to role {role_name}") from None

    def _attach_pool(self, role_name: str) -> list[str]:
        """Pool policies are attached to an ordinary shared role once, on its first denied session."""
        if role_name in self._roles_with_pool:
            return []
        attached = {p["PolicyArn"] for p in self._pages("list_attached_role_policies", "AttachedPolicies",
                                                         RoleName=role_name)}
        made = []
        for arn, name in zip(self._pool_arns, self._names.sessions, strict=True):
            if arn not in attached:
                try:
                    self._call("attach_role_policy", RoleName=role_name, PolicyArn=arn)
                except ClientError as error:
                    if _code(error) == "LimitExceeded":
                        raise IamRefused(Refusal(RefusalReason.POLICY_LIMIT,
                                                 f"role {role_name} has no room for {name}")) from None
                    raise
                made.append(f"AttachRolePolicy {name} → role {role_name}")
        self._roles_with_pool.add(role_name)
        return made

    # -- what IAM holds ---------------------------------------------------------------------------

    def actual(self) -> set[str]:
        """Every target the product's policies deny now (`user:…`, `role:…`, `session:…`)."""
        self._ensure_once()
        found = set()
        marker: str | None = None
        while True:
            page = self._call("list_entities_for_policy", PolicyArn=self._user_arn,
                              **({"Marker": marker} if marker else {}))
            found |= {f"user:{u['UserName']}" for u in page.get("PolicyUsers", [])}
            for role in page.get("PolicyRoles", []):
                if role["RoleName"].startswith("AWSReservedSSO_"):
                    # A permission set references the unconditional deny: everyone on it is denied. Not
                    # ours to detach (Identity Center owns the role): say so loudly, leave it alone.
                    log.error("the unconditional deny policy is attached to an Identity Center role: everyone"
                              " using that permission set is denied; reference only the session policies",
                              extra={"role": role["RoleName"], "policy": self._names.user})
                    continue
                found.add(f"role:{role['RoleName']}")
            if not page.get("IsTruncated"):
                break
            marker = page["Marker"]
        for arn in self._pool_arns:
            found |= {f"session:{value}" for value in self._read_pool(arn)}
        return found
