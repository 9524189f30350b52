"""Who is a person: CloudTrail `userIdentity` → the quota key the whole product uses.

Pure functions on dicts; no AWS client. The rules (also in the README):

- IAM user: the user ARN (`arn:aws:iam::111122223333:user/alice`).
- Identity Center (SSO) session: a role named `AWSReservedSSO_*` under the path
  `/aws-reserved/sso.amazonaws.com/`. The session name is the SSO user name, so the person is
  `sso:<user name>` (lower-cased: Identity Center user names are case-insensitive), whatever permission
  set or account the call came through.
- Any other assumed role: the role ARN itself (session names are often random: Lambda, CI, SDKs),
  unless the role name matches `SESSION_ROLES`; then each session is a person, keyed by its
  assumed-role ARN (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
- Root: the account root ARN. Federated users: their ARN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any


class IdentityError(ValueError):
    """The userIdentity block cannot be mapped to a person."""


class IdentityType(StrEnum):
    IAM_USER = "iam_user"
    SSO_USER = "sso_user"
    ROLE = "role"
    ROLE_SESSION = "role_session"
    ROOT = "root"
    FEDERATED_USER = "federated_user"


SSO_KEY_PREFIX = "sso:"
_SSO_PATH = "/aws-reserved/sso.amazonaws.com/"
_SSO_ROLE_PREFIX = "AWSReservedSSO_"


@dataclass(frozen=True, slots=True)
class Principal:
    """The person (or shared role) a call is charged to, with what the enforcer needs to deny it alone."""

    key: str
    identity_type: IdentityType
    arn: str
    account_id: str
    display_name: str
    # For assumed-role sessions: the role (issuer), its unique ID (AROA…) and the session name, which
    # together scope a Deny to this one session (`aws:userid` = `AROA…:session`).
    role_arn: str | None = None
    role_id: str | None = None
    session_name: str | None = None


def _role_name(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1]


def without_path(role_arn: str) -> str:
    """`arn:aws:iam::ACCOUNT:role/some/path/NAME` → `arn:aws:iam::ACCOUNT:role/NAME` (role names are unique in
    an account whatever their path; an assumed-role ARN, all an invocation log has, carries no path)."""
    head, sep, _ = role_arn.partition(":role/")
    return f"{head}{sep}{_role_name(role_arn)}" if sep else role_arn


def is_sso_role(role_arn: str) -> bool:
    """True for Identity Center roles (`…:role/aws-reserved/sso.amazonaws.com/[region/]AWSReservedSSO_…`)."""
    return _SSO_PATH in role_arn and _role_name(role_arn).startswith(_SSO_ROLE_PREFIX)


def principal_from_identity(identity: Mapping[str, Any], session_roles: Sequence[str] = ()) -> Principal:
    """Map a CloudTrail `userIdentity` to the principal charged for the call."""
    for name in ("type", "arn", "accountId", "principalId", "userName"):
        if identity.get(name) is not None and not isinstance(identity[name], str):
            raise IdentityError(f"userIdentity.{name} must be a string")
    kind = identity.get("type")
    arn = identity.get("arn") or ""
    account = identity.get("accountId") or ""

    if kind == "IAMUser":
        if ":user/" not in arn:
            raise IdentityError(f"IAMUser without a user ARN: {arn!r}")
        name = identity.get("userName") or arn.rsplit("/", 1)[-1]
        return Principal(arn, IdentityType.IAM_USER, arn, account, str(name))

    if kind == "AssumedRole":
        return _assumed_role(identity, arn, account, session_roles)

    if kind == "Root":
        if not arn:
            raise IdentityError("Root identity without an ARN")
        return Principal(arn, IdentityType.ROOT, arn, account, "root")

    if kind == "FederatedUser":
        if not arn:
            raise IdentityError("FederatedUser identity without an ARN")
        return Principal(arn, IdentityType.FEDERATED_USER, arn, account, arn.rsplit("/", 1)[-1])

    raise IdentityError(f"unsupported userIdentity.type {kind!r}")


def _assumed_role(
    identity: Mapping[str, Any], arn: str, account: str, session_roles: Sequence[str]
) -> Principal:
    context = identity.get("sessionContext") or {}
    issuer = context.get("sessionIssuer") or {} if isinstance(context, dict) else None
    if not isinstance(issuer, dict):
        raise IdentityError("userIdentity.sessionContext and its sessionIssuer must be objects")
    if not isinstance(issuer.get("arn") or "", str) or not isinstance(issuer.get("principalId") or "", str):
        raise IdentityError("sessionContext.sessionIssuer.arn and principalId must be strings")
    principal_id = identity.get("principalId") or ""
    role_id, _, session = str(principal_id).partition(":")
    # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION — the session is the last path element.
    if ":assumed-role/" not in arn:
        raise IdentityError(f"AssumedRole without an assumed-role ARN: {arn!r}")
    session = session or arn.rsplit("/", 1)[-1]
    role_arn = issuer.get("arn") or ""
    if not role_arn:
        # Older or trimmed records lack sessionContext; the role ARN can be rebuilt, but without its
        # path — which is exactly what tells an SSO role apart. Use the role name's prefix then.
        role_name = arn.split(":assumed-role/", 1)[1].rsplit("/", 1)[0]
        role_arn = f"arn:aws:iam::{account}:role/{role_name}"
    issuer_id: str | None = issuer.get("principalId") or role_id or None
    role_name = _role_name(role_arn)
    if not session:
        raise IdentityError(f"assumed-role identity without a session name: {arn!r}")

    rebuilt = not issuer.get("arn")
    if is_sso_role(role_arn) or (rebuilt and role_name.startswith(_SSO_ROLE_PREFIX)):
        return Principal(
            SSO_KEY_PREFIX + session.lower(),
            IdentityType.SSO_USER,
            arn,
            account,
            session,
            role_arn=role_arn,
            role_id=issuer_id,
            session_name=session,
        )
    if any(fnmatchcase(role_name, pattern) for pattern in session_roles):
        return Principal(
            arn,
            IdentityType.ROLE_SESSION,
            arn,
            account,
            session,
            role_arn=role_arn,
            role_id=issuer_id,
            session_name=session,
        )
    return Principal(
        role_arn,
        IdentityType.ROLE,
        role_arn,
        account,
        role_name,
        role_arn=role_arn,
        role_id=issuer_id,
    )
