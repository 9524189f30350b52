"""What a decoded event may carry into the columns that store it, for both decoders (consumer/decode.py,
consumer/invocation_log.py). A value the database would refuse must never reach it: a call is counted in
Redis before its row is committed, so a refused row would leave Redis and MySQL apart, and a person the
`principals` table refuses would fail every batch that names them (the consumer retrying it for ever).

- Identifiers (eventID, requestId) are printable ASCII: the keys of their rows, and joined with control
  characters in the counting script's arguments. Anything else is a malformed record.
- Other text of ASCII columns (region, account, model…) is cut and made ASCII: AWS only ever writes ASCII
  there, and a wrong value in a field the count does not need is no reason to lose the call.
- A person is printable ASCII (IAM and Identity Center names are) and fits their columns, or the record
  is rejected: a person cannot be charged without a row.
"""

from __future__ import annotations

from typing import Any

from bedrock_usage.identity import IdentityError, Principal

# principals (sql/001, sql/007): quota_key, arn, account_id, display_name, role_arn, role_id, session_name.
_PRINCIPAL_LIMITS = {"key": 512, "arn": 1024, "account_id": 12, "display_name": 255, "role_arn": 1024,
                     "role_id": 64, "session_name": 128}
_ASCII_FIELDS = ("key", "arn", "account_id", "role_arn", "role_id", "session_name")


def is_identifier(text: str) -> bool:
    return text.isascii() and text.isprintable()


def ascii_text(value: Any, limit: int) -> str:
    """A string field cut to its column and made ASCII (each other character becomes '?'); '' for anything
    that is not a string."""
    if not isinstance(value, str):
        return ""
    cut = value[:limit]
    return cut if cut.isascii() else cut.encode("ascii", "replace").decode()


def storable(principal: Principal) -> Principal:
    """The principal, if its row can be written; IdentityError otherwise."""
    for name, limit in _PRINCIPAL_LIMITS.items():
        value = getattr(principal, name)
        if value is None:
            continue
        if len(value) > limit:
            raise IdentityError(f"identity {name} longer than {limit} characters")
        if name in _ASCII_FIELDS and value and not is_identifier(value):
            raise IdentityError(f"identity {name} is not printable ASCII")
    return principal
