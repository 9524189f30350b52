"""`bedrockctl user create-key | keys | revoke-key`: Bedrock API keys for a person (provisioning/api_keys.py).

Each command's work takes the parts it runs with, so that tests can give it a stand-in for IAM's
service-specific credentials (moto has none); the handlers (parts.handler) only open them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TextIO

from bedrock_usage.commands import CommandGroup
from bedrock_usage.printing import table
from provisioning import api_keys, changes, journal
from provisioning.parts import Parts, handler
from provisioning.settings import ProvisioningSettings


def create_key(parts: Parts, args: argparse.Namespace, out: TextIO) -> int:
    plan = api_keys.create(parts, args.username, args.tool, api_keys.expiry_days(args.expires_in), actor=args.by,
                           secret_out=out)
    return changes.run(plan, parts.conn, actor=args.by, dry_run=args.dry_run, out=out)


def revoke_key(parts: Parts, args: argparse.Namespace, out: TextIO) -> int:
    plan = api_keys.revoke(parts, args.username, args.credential_id, deactivate=args.deactivate, actor=args.by)
    return changes.run(plan, parts.conn, actor=args.by, dry_run=args.dry_run, out=out)


def keys(parts: Parts, args: argparse.Namespace, out: TextIO) -> int:
    found = api_keys.listing(parts, args.username)
    rows = found.keys
    if args.json:
        print(json.dumps(rows, indent=2), file=out)
        return 0
    if not found.user_in_iam:
        print(f"{journal.no_user(parts.conn, args.username)}: the keys recorded for it", file=out)
    print(table(("credential id", "status", "tool", "created (UTC)", "expires (UTC)", "by", "revoked"),
                [(r["credential_id"], r["status"], r["tool"] or "(not recorded)", r["created"], r["expires"] or "never",
                  r["created_by"], r["revoked"]) for r in rows]), file=out)
    return 0


def register(user: CommandGroup, writes: Callable[[argparse.ArgumentParser], None]) -> None:
    s = ProvisioningSettings
    p = user.add("create-key", handler(create_key),
                 "a Bedrock API key for a person's tool (the secret is shown once)", settings=s)
    p.add_argument("username")
    p.add_argument("--tool", required=True, help="what the key is for, e.g. claude-code (recorded)")
    p.add_argument("--expires-in", default="90d", metavar="DAYS",
                   help="e.g. 30d (default 90d; at most 36600d), or never")
    writes(p)
    p = user.add("keys", handler(keys), "a person's Bedrock API keys: status, expiry, the tool each is for",
                 settings=s)
    p.add_argument("username")
    p.add_argument("--json", action="store_true")
    p = user.add("revoke-key", handler(revoke_key), "delete a person's Bedrock API key (or --deactivate it)",
                 settings=s)
    p.add_argument("username")
    p.add_argument("credential_id")
    p.add_argument("--deactivate", action="store_true", help="set it Inactive instead of deleting it")
    writes(p)
