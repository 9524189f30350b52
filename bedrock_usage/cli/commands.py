"""The sub-commands of bedrockctl. Each takes the parsed arguments and the settings, returns an exit code."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bedrock_usage import db, directory_state, limits, migrate, partitions, quota_changes, quota_file
from bedrock_usage.keys import Keys
from bedrock_usage.redis_state import RedisState, redis_client
from bedrock_usage.settings import Settings
from bedrock_usage.usage import TeamStatus, UsageReader


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -- db -----------------------------------------------------------------------------------------

def db_migrate(args: argparse.Namespace, settings: Settings) -> int:
    applied = migrate.migrate(settings.mysql)
    print(f"migrations applied: {', '.join(applied) if applied else 'none (schema up to date)'}")
    return 0


def db_retention(args: argparse.Namespace, settings: Settings) -> int:
    conn = db.connect(settings.mysql)
    try:
        dropped = partitions.drop_before(conn, args.keep_months)
        partitions.ensure_partitions(conn)
    finally:
        conn.close()
    print(f"partitions dropped: {', '.join(dropped) if dropped else 'none'}")
    return 0


# -- limits -------------------------------------------------------------------------------------

def limits_apply(args: argparse.Namespace, settings: Settings) -> int:
    try:
        quota = quota_file.load_quota_file(Path(args.file), default_team=settings.default_team,
                                           allow_new_teams=args.allow_new_teams, allow_empty=args.allow_empty)
    except quota_file.QuotaFileError as error:
        # Every problem at once, so that one edit fixes the file.
        count = len(error.problems)
        print(f"bedrockctl: {args.file} rejected ({count} problem{'s' if count > 1 else ''}), nothing written:",
              file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
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


def limits_show(args: argparse.Namespace, settings: Settings) -> int:
    conn = db.connect(settings.mysql)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT name, daily_request_limit, monthly_request_limit FROM teams ORDER BY name")
            teams = cur.fetchall()
            cur.execute("SELECT quota_key, team, team_source, daily_request_limit, monthly_request_limit"
                        " FROM principals WHERE team_source = 'quota_file' OR daily_request_limit IS NOT NULL"
                        " OR monthly_request_limit IS NOT NULL ORDER BY quota_key")
            people = cur.fetchall()
            _, rule = directory_state.read_state(cur)
    finally:
        conn.close()
    center = ({"store_id": rule.store_id, "region": rule.region,
               "team_from_groups": [{"group": g, "team": t} for g, t in rule.team_from_groups]} if rule else None)
    defaults: dict[str, Any] = {
        "user": {"daily": settings.default_daily_limit, "monthly": settings.default_monthly_limit},
        "team": {"daily": settings.default_team_daily_limit, "monthly": settings.default_team_monthly_limit},
        "warning_thresholds": list(settings.warning_thresholds),
        "default_team": settings.default_team,
    }
    if args.json:
        print(json.dumps({
            "defaults": defaults,
            "teams": [{"team": n, "daily_limit": d, "monthly_limit": m} for n, d, m in teams],
            "users": [{"principal": k, "team": t, "team_source": s, "daily_limit": d, "monthly_limit": m}
                      for k, t, s, d, m in people],
            "identity_center": center,
        }, indent=2))
        return 0
    print(f"defaults: person {defaults['user']['daily']}/day {defaults['user']['monthly']}/month;"
          f" team {defaults['team']['daily'] or '-'}/day {defaults['team']['monthly'] or '-'}/month;"
          f" warnings at {', '.join(f'{p} %' for p in settings.warning_thresholds)};"
          f" default team {settings.default_team}")
    print("\nteams\n" + table(("team", "daily", "monthly"), teams))
    print("\npeople with overrides\n" + table(("principal", "team", "source", "daily", "monthly"), people))
    if rule:
        print(f"\nidentity center: store {rule.store_id} ({rule.region or settings.aws_region}); teams from groups:\n"
              + table(("group", "team"), rule.team_from_groups))
    return 0


# -- usage --------------------------------------------------------------------------------------

def usage(args: argparse.Namespace, settings: Settings) -> int:
    day = date.fromisoformat(args.date) if args.date else datetime.now(settings.quota_timezone).date()
    conn = db.connect(settings.mysql)
    try:
        reader = UsageReader.for_settings(conn, redis_client(settings), settings, datetime.now(UTC))
        people = [] if args.teams else reader.people(day, user=args.user, team=args.team)
        # Every team (--teams), else the teams of the people shown. DEFAULT_TEAM is not among them.
        teams = reader.teams(day, [args.team] if args.team else None if args.teams else [p.team for p in people])
    finally:
        conn.close()
    if args.json:
        print(json.dumps([t.as_dict() for t in teams] if args.teams else [p.as_dict() for p in people], indent=2))
        return 0
    print(f"usage on {day.isoformat()} ({settings.quota_timezone.key})")
    if people:
        print(table(
            ("principal", "team", "today", "failed", "daily limit", "month", "monthly limit", "state"),
            [(p.principal, p.team if p.team_status == TeamStatus.TEAM else f"({p.team_status}: {p.team})",
              p.requests, p.failed, p.daily_limit, p.monthly_requests, p.monthly_limit, p.state) for p in people],
        ))
    if teams:
        print("\n" + table(
            ("team", "today", "failed", "daily limit", "month", "monthly limit", "state", "people today"),
            [(t.team, t.requests, t.failed, t.daily_limit, t.monthly_requests, t.monthly_limit, t.state,
              len(t.members)) for t in teams],
        ))
    without = [p for p in people if p.team_status != TeamStatus.TEAM]
    if without:
        # Not a team: counted for themselves only, never blocked together. Give them one (quota file,
        # Team tag, Identity Center group); "unresolved" means their lookup is still failing.
        print(f"\n{len(without)} without a team ({settings.default_team} is not a team): "
              + ", ".join(f"{p.principal} ({p.team_status})" for p in without))
    return 0


# -- counters, ingest, decisions, dead letters, consumer ----------------------------------------

def counters_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from consumer.rebuild import rebuild  # noqa: PLC0415

    report = rebuild(settings)
    print(f"rebuilt from MySQL: {report.rows} calls replayed into Redis, {report.new} were missing"
          f" (periods from {report.since.isoformat()})")
    return 0


def ingest(args: argparse.Namespace, settings: Settings) -> int:
    from consumer.ingest import ingest_paths  # noqa: PLC0415

    summary = ingest_paths(settings, [Path(p) for p in args.paths])
    print(summary.line())
    return 0


def decisions(args: argparse.Namespace, settings: Settings) -> int:
    since = date.fromisoformat(args.since) if args.since else date(1970, 1, 1)
    conn = db.connect(settings.mysql)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT decided_at, kind, scope, subject, quota, period, percent, usage_count, limit_count,"
                " principal, event_id FROM decisions WHERE decided_at >= %s ORDER BY decided_at, id",
                (datetime.combine(since, datetime.min.time()),))
            rows = cur.fetchall()
    finally:
        conn.close()
    names = ("decided_at", "kind", "scope", "subject", "quota", "period", "percent", "usage", "limit",
             "principal", "event_id")
    if args.json:
        print(json.dumps([dict(zip(names, r, strict=True)) for r in rows], indent=2, default=str))
    else:
        print(table(names[:9], [(r[0].replace(tzinfo=UTC).isoformat(timespec="seconds"), *r[1:9])
                                 for r in rows]))
    return 0


def dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    conn = db.connect(settings.mysql)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT received_at, reason, detail, source, shard_id, sequence_number, sub_index"
                        " FROM dead_letters ORDER BY id DESC LIMIT %s", (args.limit,))
            rows = cur.fetchall()
    finally:
        conn.close()
    print(table(("received_at", "reason", "detail", "source", "shard", "sequence", "index"),
                 [(r[0], r[1], r[2][:80], *r[3:]) for r in rows]))
    return 0


def consumer_run(args: argparse.Namespace, settings: Settings) -> int:
    from consumer.daemon import run  # noqa: PLC0415

    return run(settings)
