"""Who a person is, asked of AWS: their team, display name and email.

Two sources, tried by the kind of caller (the quota file, which wins over both, is read from MySQL by
the people directory (consumer/people.py) before anything is asked here):
- Identity Center users (`sso:<user name>`): the Identity Store user whose `UserName` is the session
  name; their groups' display names give the team through the quota file's `identity_center` rule.
- IAM users and roles of the consumer's own account: the `Team`, `Person` and `Email` tags of the user,
  or of the role a session belongs to. A principal of another account is not looked up in ours: a
  user of the same name here is somebody else.

An answer is final (a team, or none: no tag, no matching group, no such user) or a `LookupFailed`:
throttling, an unreachable endpoint, or AccessDenied, which the people directory retries with backoff and,
when it lasts, reports as an alert rather than taking it for "no team".

No MySQL here: the people directory records what is found.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bedrock_usage.directory_state import IdentityCenterRule
from bedrock_usage.identity import IdentityType, Principal
from bedrock_usage.teams import TeamSource

# What the lookups call, declared beside them (infra/ grants exactly this: tests/unit/test_infra.py).
IAM_PERMISSIONS: tuple[dict[str, Any], ...] = (
    # GetRole: a role's path, which its invocation logs lack (consumer/role_paths.py).
    {"Sid": "ReadPeoplesTags", "Action": ["iam:ListUserTags", "iam:ListRoleTags", "iam:GetRole"],
     "Resource": ["arn:aws:iam::*:user/*", "arn:aws:iam::*:role/*"]},
    {"Sid": "ReadIdentityCenterPeople",
     "Action": ["identitystore:GetUserId", "identitystore:DescribeUser",
                "identitystore:ListGroupMembershipsForMember", "identitystore:DescribeGroup"],
     "Resource": ["arn:aws:identitystore::*:identitystore/*", "arn:aws:identitystore:::user/*",
                  "arn:aws:identitystore:::group/*", "arn:aws:identitystore:::membership/*"]},
)

# The columns' sizes (principals.team, display_name, email).
TEAM_CHARS, NAME_CHARS, EMAIL_CHARS = 128, 255, 320
# Not there: a final answer (nobody to learn about), not a failure.
_ABSENT = {"NoSuchEntity", "ResourceNotFoundException"}
# No permission: retried, and alerted when it lasts (a policy to fix, not a person without a team).
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


class LookupSource(StrEnum):
    """Which lookup answered (logged as a resolved team's `source`); NONE: none could tell (nothing to ask,
    no such user or role)."""

    IDENTITY_CENTER = "identity_center"
    IAM_TAG = "iam_tag"
    NONE = "none"


@dataclass(frozen=True)
class Found:
    """What a lookup learnt. `team` None: the person has none (from this source)."""

    source: LookupSource
    team: str | None = None
    display_name: str | None = None
    email: str | None = None
    tags: dict[str, str] = field(default_factory=dict)  # recorded on the person (Language, TimeZone…)

    @property
    def team_source(self) -> TeamSource:
        """What the person's row records as their team's source: this lookup's when it found a team."""
        if not self.team:
            return TeamSource.DEFAULT
        # A lookup that found a team was one of the two that can (NONE asks nothing, finds nothing).
        return TeamSource(self.source.value)


class LookupFailed(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.denied = code in DENIED


def _clean(value: str | None, limit: int) -> str | None:
    """A value from AWS as the people directory can keep it: IAM tags and Identity Store attributes may be longer
    than the columns (256 characters against a team's 128) and hold control characters, which the
    counting keys and hand-off fields use as separators."""
    if value is None:
        return None
    text = "".join(ch for ch in value if ch.isprintable()).strip()[:limit].strip()
    return text or None


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code") or "ClientError")


class Lookups:
    def __init__(
        self,
        *,
        iam: Any | None,
        identity_store: Callable[[str | None], Any],
        account_id: str,
        team_tag: str = "Team",
    ) -> None:
        """`iam` None: IAM tags are not read (TEAM_TAG_LOOKUP=false). `identity_store(region)` gives a
        client for the Identity Store's region."""
        self._iam = iam
        self._identity_store = identity_store
        self._account_id = account_id
        self._team_tag = team_tag

    def needs_asking(self, principal: Principal, rule: IdentityCenterRule | None) -> bool:
        """Whether anything can be learnt about this principal (else: no team, at once)."""
        if principal.identity_type is IdentityType.SSO_USER:
            return rule is not None and bool(principal.session_name)
        if principal.identity_type in (IdentityType.IAM_USER, IdentityType.ROLE, IdentityType.ROLE_SESSION):
            return self._iam is not None and principal.account_id == self._account_id
        return False

    def find(self, principal: Principal, rule: IdentityCenterRule | None) -> Found:
        if not self.needs_asking(principal, rule):
            return Found(LookupSource.NONE)
        try:
            if principal.identity_type is IdentityType.SSO_USER:
                assert rule is not None and principal.session_name
                return self._identity_center(principal.session_name, rule)
            return self._iam_tags(principal)
        except ClientError as error:
            code = _code(error)
            if code in _ABSENT:
                return Found(LookupSource.NONE)
            raise LookupFailed(code, str(error)) from None
        except BotoCoreError as error:  # endpoint unreachable, timeouts
            raise LookupFailed(type(error).__name__, str(error)) from None

    def _iam_tags(self, principal: Principal) -> Found:
        assert self._iam is not None
        if principal.identity_type is IdentityType.IAM_USER:
            reply = self._iam.list_user_tags(UserName=principal.arn.rsplit("/", 1)[-1])
        elif principal.role_arn:
            reply = self._iam.list_role_tags(RoleName=principal.role_arn.rsplit("/", 1)[-1])
        else:
            return Found(LookupSource.NONE)
        tags = {str(t["Key"]): str(t["Value"]) for t in reply.get("Tags", [])}
        return Found(LookupSource.IAM_TAG, _clean(tags.get(self._team_tag), TEAM_CHARS),
                     _clean(tags.get("Person"), NAME_CHARS), _clean(tags.get("Email"), EMAIL_CHARS), tags)

    def _identity_center(self, user_name: str, rule: IdentityCenterRule) -> Found:
        store = self._identity_store(rule.region)
        user_id = store.get_user_id(
            IdentityStoreId=rule.store_id,
            AlternateIdentifier={"UniqueAttribute": {"AttributePath": "userName", "AttributeValue": user_name}},
        )["UserId"]
        user = store.describe_user(IdentityStoreId=rule.store_id, UserId=user_id)
        groups: list[str] = []
        pages = store.get_paginator("list_group_memberships_for_member").paginate(
            IdentityStoreId=rule.store_id, MemberId={"UserId": user_id})
        for page in pages:
            for membership in page.get("GroupMemberships", []):
                group = store.describe_group(IdentityStoreId=rule.store_id, GroupId=membership["GroupId"])
                groups.append(str(group.get("DisplayName") or ""))
        emails = user.get("Emails") or []
        email = next((e.get("Value") for e in emails if e.get("Primary")), None) or (
            emails[0].get("Value") if emails else None)
        tags = {name: str(user[attr]) for name, attr in (("Language", "PreferredLanguage"),
                                                         ("TimeZone", "Timezone")) if user.get(attr)}
        if "Language" in tags:  # Identity Center holds e.g. "es-ES"; messages are per language ("es")
            tags["Language"] = tags["Language"].split("-")[0].split("_")[0].lower()
        return Found(LookupSource.IDENTITY_CENTER, _clean(rule.team_for(groups), TEAM_CHARS),
                     _clean(user.get("DisplayName"), NAME_CHARS), _clean(email, EMAIL_CHARS), tags)
