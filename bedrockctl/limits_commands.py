"""`bedrockctl limits apply|show`: the quota file made true in MySQL and Redis, and what is in force."""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path
from typing import Any

from bedrock_usage import db, directory_state, json_decimal, limits, quota_changes, quota_file
from bedrock_usage.commands import CommandGroup
from bedrock_usage.keys import Keys
from bedrock_usage.printing import dollars, rejected, table, usd_cell
from bedrock_usage.quota import Limits
from bedrock_usage.redis_state import RedisState, redis_client
from bedrock_usage.settings import SharedSettings


def limits_apply(args: argparse.Namespace, settings: SharedSettings) -> int:
    try:
        quota = quota_file.load_quota_file(Path(args.file), default_team=settings.default_team,
                                           allow_new_teams=args.allow_new_teams, allow_empty=args.allow_empty)
    except quota_file.QuotaFileError as error:
        return rejected(args.file, error.problems)
    conn = db.connect(settings.mysql)
    try:
        if args.dry_run:  # no Redis client either: a dry run reads MySQL only
            changes = limits.plan(conn, quota)
            print("\n".join(quota_changes.describe(changes)))
            print(f"dry run: {len(changes)} change{'s' if len(changes) != 1 else ''} in {args.file}, nothing written")
            return 0
        report = limits.apply(conn, RedisState(redis_client(settings), Keys(settings.redis_key_prefix)), quota)
    finally:
        conn.close()
    print("\n".join(quota_changes.describe(report.changes)))
    print(f"applied {args.file}: {report.teams} teams, {report.people} people;"
          f" overrides cleared for {report.cleared_people} people and {report.cleared_teams} teams"
          f" (directory version {report.version})")
    return 0


def limits_show(args: argparse.Namespace, settings: SharedSettings) -> int:
    conn = db.connect(settings.mysql)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT name, {limits.LIMIT_COLUMNS} FROM teams ORDER BY name")
            teams = [(str(n), limits.limits_of(*row)) for n, *row in cur.fetchall()]
            cur.execute(f"SELECT quota_key, team, team_source, {limits.LIMIT_COLUMNS} FROM principals"
                        f" WHERE team_source = 'quota_file' OR {limits.HAS_LIMITS} ORDER BY quota_key")
            people = [(str(k), t, s, limits.limits_of(*row)) for k, t, s, *row in cur.fetchall()]
            _, rule = directory_state.read_state(cur)
    finally:
        conn.close()
    center = ({"store_id": rule.store_id, "region": rule.region,
               "team_from_groups": [{"group": g, "team": t} for g, t in rule.team_from_groups]} if rule else None)
    user, team = settings.user_defaults, settings.team_defaults
    defaults: dict[str, Any] = {
        "user": {"daily": user.daily, "monthly": user.monthly, **_cost_fields(user, "_usd")},
        "team": {"daily": team.daily, "monthly": team.monthly, **_cost_fields(team, "_usd")},
        "warning_thresholds": list(settings.warning_thresholds),
        "default_team": settings.default_team,
    }
    if args.json:
        print(json_decimal.dumps({
            "defaults": defaults,
            "teams": [{"team": n, "daily_limit": lim.daily, "monthly_limit": lim.monthly,
                       **_cost_fields(lim, "_limit_usd")} for n, lim in teams],
            "users": [{"principal": k, "team": t, "team_source": s, "daily_limit": lim.daily,
                       "monthly_limit": lim.monthly, **_cost_fields(lim, "_limit_usd")} for k, t, s, lim in people],
            "identity_center": center,
        }, indent=2))
        return 0
    print(f"defaults: person {user.daily or '-'}/day {user.monthly or '-'}/month,"
          f" {usd_cell(user.daily_cost) or '-'}/day {usd_cell(user.monthly_cost) or '-'}/month;"
          f" team {team.daily or '-'}/day {team.monthly or '-'}/month,"
          f" {usd_cell(team.daily_cost) or '-'}/day {usd_cell(team.monthly_cost) or '-'}/month;"
          f" warnings at {', '.join(f'{p} %' for p in settings.warning_thresholds)};"
          f" default team {settings.default_team}")
    print("\nteams\n" + table(("team", "daily", "monthly", "daily cost", "monthly cost"), [
        (n, lim.daily, lim.monthly, usd_cell(lim.daily_cost), usd_cell(lim.monthly_cost)) for n, lim in teams]))
    print("\npeople with overrides\n" + table(
        ("principal", "team", "source", "daily", "monthly", "daily cost", "monthly cost"),
        [(k, t, s, lim.daily, lim.monthly, usd_cell(lim.daily_cost), usd_cell(lim.monthly_cost))
         for k, t, s, lim in people]))
    if rule:
        print(f"\nidentity center: store {rule.store_id} ({rule.region or settings.aws_region}); teams from groups:\n"
              + table(("group", "team"), rule.team_from_groups))
    return 0


def _cost_fields(lim: Limits, suffix: str) -> dict[str, Decimal | None]:
    """`daily_cost<suffix>` and `monthly_cost<suffix>` in dollars (exact; None: no quota or the default)."""
    return {f"daily_cost{suffix}": dollars(lim.daily_cost), f"monthly_cost{suffix}": dollars(lim.monthly_cost)}


def register(commands: CommandGroup) -> None:
    group = commands.group("limits", "quota file")
    apply = group.add("apply", limits_apply, "make limits and teams match a quota file", settings=SharedSettings)
    apply.add_argument("file")
    apply.add_argument("--dry-run", action="store_true", help="check the file, print what would change, write nothing")
    apply.add_argument("--allow-new-teams", action="store_true",
                       help="let people (and Identity Center groups) be put in teams not declared under teams:")
    apply.add_argument("--allow-empty", action="store_true",
                       help="accept a file declaring nothing (it clears every override)")
    show = group.add("show", limits_show, "show teams, overrides and defaults", settings=SharedSettings)
    show.add_argument("--json", action="store_true")
