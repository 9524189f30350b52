"""What a deny names, for one person (pure).

A person is denied through exactly one *target*:

- `user:NAME`     an IAM user: the product's deny policy attached to that user;
- `role:NAME`     a role whose quota key is the role itself (its sessions are not people): the deny
                  policy attached to the role (never an Identity Center `AWSReservedSSO_*` role);
- `session:VALUE` an assumed-role session: VALUE is the `aws:userid` the pool's Deny lists —
                  `AROA…:session` for a `SESSION_ROLES` session, `*:UserName` for an Identity Center
                  user, who is that user on every permission set (and no one else is).

When the person cannot be named that precisely, the answer is a `Refusal`: the enforcer records and
alerts it, and never falls back to something broader.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase

from bedrock_usage.identity import SSO_KEY_PREFIX, IdentityType, is_sso_role

# AWS role unique IDs: AROA followed by upper-case letters and digits.
_ROLE_ID = re.compile(r"^AROA[A-Z0-9]{8,}$")
# Session names AWS accepts ([\w+=,.@-]); anything else — * or ? above all, which StringLike would
# read as wildcards — cannot be named safely.
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")


class TargetKind(StrEnum):
    USER = "user"
    ROLE = "role"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    value: str  # user name, role name, or aws:userid pattern
    role_name: str | None = None  # for sessions of ordinary roles: where the pool must be attached

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> Target:
        kind, _, value = text.partition(":")
        return cls(TargetKind(kind), value)

    @property
    def key(self) -> str:
        """Identity of the deny (without the role a session pool hangs on)."""
        return str(self)


class RefusalReason(StrEnum):
    """Why a deny was refused (or could not be lifted): the `refusals` metric's label, and in alerts."""

    OTHER_ACCOUNT = "other_account"  # the person is in another account than the enforcer's
    UNKNOWN_USER = "unknown_user"  # an IAM user without an ARN on record
    UNKNOWN_ROLE = "unknown_role"  # no role ARN, or a role owned by Identity Center
    SSO_ROLE = "sso_role"  # an Identity Center role: never edited
    SHARED_ROLE = "shared_role"  # a role in SESSION_ROLES: its sessions are the people
    UNKNOWN_SESSION = "unknown_session"  # no usable session name
    UNKNOWN_ROLE_ID = "unknown_role_id"  # a session deny would not be scoped to the one person
    NOT_DENIABLE = "not_deniable"  # an identity type no policy can deny
    UNKNOWN_PRINCIPAL = "unknown_principal"  # an admin block of someone never seen
    RATE_LIMIT = "rate_limit"  # the circuit breaker: too many quota denies in the last hour
    IAM_ERROR = "iam_error"
    POLICY_LIMIT = "policy_limit"  # the user or role holds the most managed policies already
    NO_SUCH_ENTITY = "no_such_entity"
    POLICY_UNREADABLE = "policy_unreadable"
    POOL_FULL = "pool_full"  # every session deny policy is full


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: RefusalReason
    detail: str


@dataclass(frozen=True, slots=True)
class PrincipalRecord:
    """What the enforcer knows of a person (a row of `principals`, or what a quota key alone says)."""

    key: str
    identity_type: IdentityType
    arn: str | None = None
    account_id: str | None = None
    display_name: str | None = None
    email: str | None = None
    team: str | None = None
    role_arn: str | None = None
    role_id: str | None = None
    session_name: str | None = None


def is_protected(key: str, patterns: Sequence[str]) -> bool:
    """A protected principal (PROTECTED_PRINCIPALS, glob patterns of quota keys) is never denied."""
    return any(fnmatchcase(key, pattern) for pattern in patterns)


def _last(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _identity_center(role_arn: str) -> bool:
    # By path or by name alone: a role that merely looks like Identity Center's is left alone too.
    return is_sso_role(role_arn) or _last(role_arn).startswith("AWSReservedSSO_")


def target_of(person: PrincipalRecord, account_id: str, session_roles: Sequence[str] = ()) -> Target | Refusal:
    account = person.account_id or (person.arn.split(":")[4] if person.arn and person.arn.count(":") >= 5 else None)
    # An Identity Center user with no account recorded yet (declared in the quota file) is denied here;
    # one seen calling from another account could only be denied in that account.
    if account != account_id and not (person.identity_type is IdentityType.SSO_USER and account is None):
        return Refusal(RefusalReason.OTHER_ACCOUNT,
                       f"{person.key} is in account {account}, the enforcer acts in {account_id}")
    match person.identity_type:
        case IdentityType.IAM_USER:
            if not person.arn or ":user/" not in person.arn:
                return Refusal(RefusalReason.UNKNOWN_USER, f"no IAM user ARN for {person.key}")
            return Target(TargetKind.USER, _last(person.arn))
        case IdentityType.ROLE:
            if not person.arn or ":role/" not in person.arn:
                return Refusal(RefusalReason.UNKNOWN_ROLE, f"no role ARN for {person.key}")
            if _identity_center(person.arn):
                return Refusal(RefusalReason.SSO_ROLE, f"{person.key} is an Identity Center role: never edited")
            if any(fnmatchcase(_last(person.arn), pattern) for pattern in session_roles):
                # Counted as a whole before SESSION_ROLES named it: its sessions are people now, and
                # denying the role would deny every one of them.
                return Refusal(RefusalReason.SHARED_ROLE,
                               f"{person.key} matches SESSION_ROLES: its sessions are people")
            return Target(TargetKind.ROLE, _last(person.arn))
        case IdentityType.SSO_USER:
            session = person.session_name
            if not session or not _SESSION_NAME.match(session):
                return Refusal(RefusalReason.UNKNOWN_SESSION, f"no usable session name for {person.key}: {session!r}")
            if session.lower() != person.key.removeprefix(SSO_KEY_PREFIX):
                return Refusal(RefusalReason.UNKNOWN_SESSION, f"session name {session!r} is not {person.key}")
            return Target(TargetKind.SESSION, f"*:{session}")
        case IdentityType.ROLE_SESSION:
            session, role_id = person.session_name, person.role_id
            if not role_id or not _ROLE_ID.match(role_id):
                return Refusal(RefusalReason.UNKNOWN_ROLE_ID,
                               f"role ID of {person.key} unknown: a deny would not be scoped")
            if not session or not _SESSION_NAME.match(session):
                return Refusal(RefusalReason.UNKNOWN_SESSION, f"no usable session name for {person.key}: {session!r}")
            if not person.role_arn or _identity_center(person.role_arn):
                return Refusal(RefusalReason.UNKNOWN_ROLE, f"role of {person.key} unknown or owned by Identity Center")
            return Target(TargetKind.SESSION, f"{role_id}:{session}", role_name=_last(person.role_arn))
        case _:
            return Refusal(RefusalReason.NOT_DENIABLE,
                           f"{person.identity_type} identities cannot be denied by a policy")
