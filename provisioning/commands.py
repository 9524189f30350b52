"""The provisioning commands of `bedrockctl`: `team create|list|show|policy|delete` and
`user create|import|info|list|move|delete` (and `user create-key|keys|revoke-key`, in key_commands.py), and
`provisioning audit`.

Every changing command checks its input before reading IAM, says what it changed (or that nothing
needed to), takes `--dry-run` (checks and prints the changes, writes nothing) and `--by` (the admin
named in the audit row, default the OS user).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from typing import TextIO

from bedrock_usage.commands import CommandGroup
from bedrock_usage.printing import table, usd_cell
from provisioning import bulk, changes, journal, key_commands, teams, users
from provisioning.changes import Plan
from provisioning.parts import Parts, handler, opened
from provisioning.settings import ProvisioningSettings


def _changing(make: Callable[[Parts, argparse.Namespace], Plan]) -> Callable[[argparse.Namespace,
                                                                             ProvisioningSettings], int]:
    def handle(args: argparse.Namespace, settings: ProvisioningSettings) -> int:
        with opened(settings) as parts:
            return changes.run(make(parts, args), parts.conn, actor=args.by, dry_run=args.dry_run, out=sys.stdout)
    return handle


def user_delete(parts: Parts, args: argparse.Namespace, out: TextIO) -> int:
    """Work on given parts (parts.handler): it deletes the user's Bedrock API keys, which tests give a stand-in."""
    plan = users.delete(parts, args.username, actor=args.by)
    return changes.run(plan, parts.conn, actor=args.by, dry_run=args.dry_run, out=out)


def user_import(args: argparse.Namespace, settings: ProvisioningSettings) -> int:
    try:
        if args.file == "-":
            people = bulk.read(sys.stdin)
        else:
            with open(args.file, encoding="utf-8-sig", newline="") as text:  # -sig: a spreadsheet's byte-order mark
                people = bulk.read(text)
    except UnicodeDecodeError as error:
        raise ValueError(f"{args.file}: not UTF-8 text at byte {error.start} (a spreadsheet's \"CSV UTF-8\" saves"
                         " it so; plain \"CSV\" may not): nothing imported") from None
    with opened(settings) as parts:
        return bulk.run(parts, people, actor=args.by, dry_run=args.dry_run, out=sys.stdout)


def team_list(args: argparse.Namespace, settings: ProvisioningSettings) -> int:
    with opened(settings) as parts:
        rows = teams.listing(parts)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(table(("team", "group", "members", "models", "registered"), [
        (r["team"], r["group"], r["members"], ", ".join(r["models"]) if r["models"] is not None else "NO POLICY",
         "yes" if r["registered"] else "no") for r in rows]))
    return 0


def team_show(args: argparse.Namespace, settings: ProvisioningSettings) -> int:
    with opened(settings) as parts:
        found = teams.show(parts, args.name)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"team {found['team']}")
    print(f"  group:    {found['group'] or 'MISSING'}")
    print(f"  policy:   {found['policy'] or 'MISSING'}{'' if found['attached'] else ' (NOT attached)'}"
          f" ({found['policy_versions']} version(s))")
    print(f"  models:   {', '.join(found['models']) or '-'}")
    print(f"  quotas ({found['limits_from']}): {found['daily_requests'] or '-'} requests/day,"
          f" {found['monthly_requests'] or '-'} requests/month, {usd_cell(found['daily_cost_nanos']) or '-'}/day,"
          f" {usd_cell(found['monthly_cost_nanos']) or '-'}/month")
    print(f"  members ({len(found['members'])}): {', '.join(found['members']) or '-'}")
    print(f"  counted in this team: {len(found['counted_people'])} people")
    return 0


def user_info(args: argparse.Namespace, settings: ProvisioningSettings) -> int:
    with opened(settings) as parts:
        found = users.info(parts, args.username)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    for name, value in found.items():
        print(f"{name}: {value}")
    return 0


def user_list(args: argparse.Namespace, settings: ProvisioningSettings) -> int:
    with opened(settings) as parts:
        rows = users.listing(parts, args.team)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(table(("user", "person", "team", "email", "tool"),
                [(r["user"], r["person"], r["team"], r["email"], r["tool"]) for r in rows]))
    return 0


def provisioning_audit(args: argparse.Namespace, settings: ProvisioningSettings) -> int:
    with opened(settings) as parts:
        rows = journal.rows(parts.conn, target=args.target, limit=args.limit)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(table(("at (UTC)", "actor", "action", "target", "detail"),
                [(r["at"], r["actor"], r["action"], r["target"], r["detail"]) for r in rows]))
    return 0


def _writes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="check and print what would change, write nothing")
    parser.add_argument("--by", default=getpass.getuser(), help="who acts (in the audit; default: your user name)")


def register(commands: CommandGroup) -> None:
    s = ProvisioningSettings
    team = commands.group("team", "teams: an IAM group with a Bedrock policy for chosen models")
    p = team.add("create", _changing(lambda parts, a: teams.create(parts, a.name, a.models)),
                 "create a team's IAM group and Bedrock policy, and register it", settings=s)
    p.add_argument("name")
    p.add_argument("--models", nargs="+", metavar="PATTERN",
                   help="model ID patterns, e.g. anthropic.claude-* (default: PROVISIONING_DEFAULT_MODELS)")
    _writes(p)
    p = team.add("list", team_list, "the teams provisioned in IAM", settings=s)
    p.add_argument("--json", action="store_true")
    p = team.add("show", team_show, "a team's members, policy and quotas", settings=s)
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p = team.add("policy", _changing(lambda parts, a: teams.set_policy(parts, a.name, a.models)),
                 "allow a team other models (a new policy version; old versions pruned)", settings=s)
    p.add_argument("name")
    p.add_argument("--models", nargs="+", metavar="PATTERN", required=True)
    _writes(p)
    p = team.add("delete", _changing(lambda parts, a: teams.delete(parts, a.name)),
                 "delete a team's group and policy (refused while it has members)", settings=s)
    p.add_argument("name")
    _writes(p)

    user = commands.group("user", "people: IAM users tagged with their name and team")
    p = user.add("create", _changing(lambda parts, a: users.create(parts, users.NewPerson(
        a.username, a.person, a.team, a.email, a.tool, a.language))),
        "create a person's IAM user (no password, no keys) in their team", settings=s)
    p.add_argument("username")
    p.add_argument("--person", required=True, help='full name, e.g. "Ana García"')
    p.add_argument("--team", required=True)
    p.add_argument("--email")
    p.add_argument("--tool", help="what they use Bedrock from (the Tool tag)")
    p.add_argument("--language", help="of their messages (en, es)")
    _writes(p)
    p = user.add("import", user_import, "create (or bring up to date) the people of a CSV file: username, person,"
                 " team[, email, tool, language]; every line checked before anything is written", settings=s)
    p.add_argument("file", help="a CSV file with a header line, or - for standard input")
    _writes(p)
    p = user.add("info", user_info, "a person's IAM user, tags, groups and team as counted", settings=s)
    p.add_argument("username")
    p.add_argument("--json", action="store_true")
    p = user.add("list", user_list, "the people provisioned (or one team's)", settings=s)
    p.add_argument("--team")
    p.add_argument("--json", action="store_true")
    p = user.add("move", _changing(lambda parts, a: users.move(parts, a.username, a.team)),
                 "move a person to another team (their past calls stay with the old one)", settings=s)
    p.add_argument("username")
    p.add_argument("--team", required=True)
    _writes(p)
    p = user.add("delete", handler(user_delete),
                 "delete a person's IAM user and all it holds (usage history kept)", settings=s)
    p.add_argument("username")
    _writes(p)
    key_commands.register(user, _writes)

    audit = commands.group("provisioning", "the provisioning audit trail")
    p = audit.add("audit", provisioning_audit, "who created, changed or deleted teams and people", settings=s)
    p.add_argument("--target", help="a team or user name")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
