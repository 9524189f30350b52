"""Bedrock API keys (issue 15, part 3): an IAM service-specific credential for bedrock.amazonaws.com on a
person's user, the tool it is for recorded in `bedrock_api_keys`, revoked by deleting or deactivating it.

A key acts as its IAM user: calls made with it are counted as the user's (CloudTrail names the user, not
the key), under the team policy's `bedrock:CallWithBearerToken`. The secret is printed once, by the change
that creates the key, to the admin's terminal: never logged, never in the audit row, never stored.
Like users.py, each changing function returns the plan of changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from bedrock_usage.tools import app_id_for
from provisioning import journal, key_records, names
from provisioning.changes import Plan
from provisioning.iam import BEDROCK_SERVICE, MAX_KEYS_PER_SERVICE
from provisioning.parts import Parts

MAX_AGE_DAYS = 36600  # IAM's CredentialAgeDays maximum
_EXPIRY = re.compile(r"^([0-9]{1,5})d$")
_CREDENTIAL_ID = re.compile(r"^\w{20,128}$", re.ASCII)


def expiry_days(text: str) -> int | None:
    """`90d` → 90; `never` → None (a key that does not expire: IAM allows it, AWS advises against it)."""
    text = text.strip().lower()
    if text == "never":
        return None
    match = _EXPIRY.match(text)
    if not match or not 1 <= int(match.group(1)) <= MAX_AGE_DAYS:
        raise ValueError(f"--expires-in is a number of days from 1d to {MAX_AGE_DAYS}d, or never; got {text!r}")
    return int(match.group(1))


def _provisioned_user(parts: Parts, user: str) -> dict[str, Any]:
    existing = parts.iam.user(user)
    if existing is None:
        raise ValueError(f"no IAM user {user!r} (bedrockctl user create {user} …)")
    if existing["Path"] != parts.names.path:
        raise ValueError(f"refused: {user} (path {existing['Path']}) was not provisioned here"
                         f" (PROVISIONING_PATH {parts.names.path})")
    return existing


def create(parts: Parts, user: str, tool: str, age_days: int | None, *, actor: str, secret_out: TextIO) -> Plan:
    """A new key every time it runs (a secret can be shown only when made): never idempotent, and said so."""
    names.check_user(user)
    tool = names.check_tag("--tool", tool, 128)
    existing = _provisioned_user(parts, user)
    credentials = parts.iam.credentials
    held = credentials.listing(user, BEDROCK_SERVICE)
    if len(held) >= MAX_KEYS_PER_SERVICE:
        raise ValueError(f"{user} already holds {len(held)} Bedrock API keys, IAM's limit"
                         f" ({', '.join(str(c['ServiceSpecificCredentialId']) for c in held)}):"
                         f" bedrockctl user revoke-key {user} ID first")
    plan = Plan("user create-key", user)
    active = {str(c["ServiceSpecificCredentialId"]) for c in held if c["Status"] == "Active"}
    same_tool = [c for c in key_records.active_for_tool(parts.conn, user, tool) if c in active]
    if same_tool:
        plan.notes.append(f"{user} already has an active key for {tool} ({', '.join(same_tool)}): this makes"
                          f" another (to rotate, revoke the old one once the tool uses the new)")
    made: dict[str, Any] = {}

    def make() -> str:
        made.update(credentials.create(user, BEDROCK_SERVICE, age_days))
        expires = made.get("ExpirationDate")
        # Printed here and now, before anything else can fail: a key whose secret was lost is useless.
        print(f"  Bedrock API key for {user} ({tool}), shown this once; store it now:\n"
              f"    {made['ServiceCredentialSecret']}\n"
              f"  The tool reads it as AWS_BEARER_TOKEN_BEDROCK; with AWS_SDK_UA_APP_ID={app_id_for(tool)} beside it,"
              " its calls"
              f" are told apart by tool even while {user} holds a key for another (bedrockctl usage --by-tool)",
              file=secret_out, flush=True)
        return f"credential {made['ServiceSpecificCredentialId']}" + (f", expires {expires}" if expires else "")

    def keep() -> None:
        key_records.record(parts.conn, key_records.NewKey(
            str(made["ServiceSpecificCredentialId"]), user, str(existing["Arn"]), tool, made["CreateDate"],
            made.get("ExpirationDate"), actor))

    lasting = f"expires in {age_days} days" if age_days is not None else "never expires"
    plan.add(f"IAM: create a Bedrock API key for {user} ({lasting})", make)
    plan.add(f"MySQL: record the key as for {tool}", keep)
    return plan


def _held(parts: Parts, user: str) -> dict[str, dict[str, Any]]:
    """IAM's Bedrock API keys of the user by credential ID (none when the user is gone)."""
    if parts.iam.user(user) is None:
        return {}
    return {str(c["ServiceSpecificCredentialId"]): c for c in parts.iam.credentials.listing(user, BEDROCK_SERVICE)}


def _revocation(parts: Parts, plan: Plan, user: str, credential_id: str, *, held: dict[str, Any] | None,
                row: dict[str, Any] | None, deactivate: bool, actor: str) -> None:
    """Add revoking one key to the plan: the IAM call unless IAM already has it so, then the record unless it
    already says so. `held`: IAM's credential (None: IAM no longer has it); `row`: what was recorded of it.
    revoke-key and user delete both revoke through here, so a key is recorded the same whichever did it."""
    credentials = parts.iam.credentials
    if held is None:
        how = "deleted"
        if row and row["revoked_how"] != "deleted":
            plan.notes.append(f"IAM no longer has {credential_id} (deleted elsewhere)")
    elif deactivate:
        how = "deactivated"
        if held["Status"] == "Active":
            plan.add(f"IAM: deactivate Bedrock API key {credential_id}",
                     lambda: credentials.set_status(user, credential_id, "Inactive"))
    else:
        how = "deleted"
        plan.add(f"IAM: delete Bedrock API key {credential_id}", lambda: credentials.delete(user, credential_id))
    if row is None:
        plan.notes.append(f"{credential_id} was not made by bedrockctl user create-key (no tool recorded)")
    elif row["revoked_how"] != how and row["revoked_how"] != "deleted":  # deleted is final
        # After the IAM call, never before: should that fail, no row says revoked of a key that still works.
        plan.add(f"MySQL: record {credential_id} ({row['tool']}) as {how}",
                 lambda: key_records.revoke(parts.conn, credential_id, how=how, by=actor))


def revoke(parts: Parts, user: str, credential_id: str, *, deactivate: bool, actor: str) -> Plan:
    """Delete the key (or set it Inactive), and mark it revoked; what is already so is left alone."""
    names.check_user(user)
    if not _CREDENTIAL_ID.match(credential_id):
        raise ValueError(f"a credential ID is 20-128 letters and digits (bedrockctl user keys {user}),"
                         f" got {credential_id!r}")
    held = _held(parts, user).get(credential_id)
    row = key_records.of_user(parts.conn, user).get(credential_id)
    if held is None and row is None:
        raise ValueError(f"no Bedrock API key {credential_id} for {user} (bedrockctl user keys {user})")
    plan = Plan("user revoke-key", user)
    _revocation(parts, plan, user, credential_id, held=held, row=row, deactivate=deactivate, actor=actor)
    return plan


def delete_all(parts: Parts, plan: Plan, user: str, *, actor: str) -> set[str]:
    """Add deleting every Bedrock API key of the user to `plan` (user delete), each recorded as revoke-key
    records a deletion. Recorded keys IAM no longer has are recorded as deleted too: once the user is gone
    none of its keys can work, and none should look live (nor to a new user of the same name).
    Returns the credential IDs IAM holds for Bedrock, so the caller deletes only the user's other ones."""
    in_iam = _held(parts, user)
    rows = key_records.of_user(parts.conn, user)
    for credential_id in [*in_iam, *(c for c in rows if c not in in_iam)]:
        _revocation(parts, plan, user, credential_id, held=in_iam.get(credential_id), row=rows.get(credential_id),
                    deactivate=False, actor=actor)
    return set(in_iam)


@dataclass(frozen=True)
class Listing:
    user_in_iam: bool  # False: the user is gone (user delete), the keys are what was recorded of it
    keys: list[dict[str, Any]]


def listing(parts: Parts, user: str) -> Listing:
    """IAM's Bedrock API keys of the user beside what was recorded of them; recorded keys IAM no longer has
    are listed as `deleted`. Oldest first. A user IAM lacks with no key recorded is an error (a typo, most
    likely): an empty list would say it has none, as if it existed."""
    names.check_user(user)
    exists = parts.iam.user(user) is not None
    in_iam = parts.iam.credentials.listing(user, BEDROCK_SERVICE) if exists else []
    rows = key_records.of_user(parts.conn, user)
    if not exists and not rows:
        raise ValueError(f"{journal.no_user(parts.conn, user)}, and no Bedrock API key is recorded for it")
    found = []
    for held in in_iam:
        credential_id = str(held["ServiceSpecificCredentialId"])
        row = rows.pop(credential_id, None) or {}
        found.append({"credential_id": credential_id, "status": str(held["Status"]),
                      "created": _text(held["CreateDate"]), "expires": _text(held.get("ExpirationDate")),
                      "tool": row.get("tool"), "created_by": row.get("created_by"),
                      "revoked": _revoked(row)})
    for credential_id, row in rows.items():
        found.append({"credential_id": credential_id, "status": "deleted", "created": _text(row["created_at"]),
                      "expires": _text(row["expires_at"]), "tool": row["tool"], "created_by": row["created_by"],
                      "revoked": _revoked(row) or "deleted elsewhere"})
    return Listing(exists, sorted(found, key=lambda k: str(k["created"])))


def _text(instant: datetime | None) -> str | None:
    if instant is None:
        return None
    if instant.tzinfo is not None:
        instant = instant.astimezone(UTC).replace(tzinfo=None)
    return instant.isoformat(sep=" ", timespec="seconds")


def _revoked(row: dict[str, Any]) -> str | None:
    if not row or row.get("revoked_at") is None:
        return None
    return f"{row['revoked_how']} {_text(row['revoked_at'])} by {row['revoked_by']}"
