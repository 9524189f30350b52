"""The sub-commands of bedrockctl. Each takes the parsed arguments and the settings, returns an exit code."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bedrock_usage import db, directory_state, json_decimal, limits, migrate, partitions, quota_changes, quota_file
from bedrock_usage.cli.output import rejected
from bedrock_usage.keys import Keys
from bedrock_usage.pricing.rates import Tokens
from bedrock_usage.quota import Limits, Quota, format_usd, usd
from bedrock_usage.redis_state import RedisState, redis_client
from bedrock_usage.settings import Settings
from bedrock_usage.usage import PersonUsage, TeamStatus, TeamUsage, UsageReader


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


def limits_show(args: argparse.Namespace, settings: Settings) -> int:
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
    print(f"defaults: person {user.daily or '-'}/day {user.monthly or '-'}/month, {_usd(user.daily_cost) or '-'}/day"
          f" {_usd(user.monthly_cost) or '-'}/month; team {team.daily or '-'}/day {team.monthly or '-'}/month,"
          f" {_usd(team.daily_cost) or '-'}/day {_usd(team.monthly_cost) or '-'}/month;"
          f" warnings at {', '.join(f'{p} %' for p in settings.warning_thresholds)};"
          f" default team {settings.default_team}")
    print("\nteams\n" + table(("team", "daily", "monthly", "daily cost", "monthly cost"), [
        (n, lim.daily, lim.monthly, _usd(lim.daily_cost), _usd(lim.monthly_cost)) for n, lim in teams]))
    print("\npeople with overrides\n" + table(
        ("principal", "team", "source", "daily", "monthly", "daily cost", "monthly cost"),
        [(k, t, s, lim.daily, lim.monthly, _usd(lim.daily_cost), _usd(lim.monthly_cost)) for k, t, s, lim in people]))
    if rule:
        print(f"\nidentity center: store {rule.store_id} ({rule.region or settings.aws_region}); teams from groups:\n"
              + table(("group", "team"), rule.team_from_groups))
    return 0


def _cost_fields(lim: Limits, suffix: str) -> dict[str, Decimal | None]:
    """`daily_cost<suffix>` and `monthly_cost<suffix>` in dollars (exact; None: no quota or the default)."""
    return {f"daily_cost{suffix}": _dollars(lim.daily_cost), f"monthly_cost{suffix}": _dollars(lim.monthly_cost)}


def _dollars(nanos: int | None) -> Decimal | None:
    return None if nanos is None else usd(nanos)


def _usd(nanos: int | None) -> str | None:
    """For a table: "$41.20", or None ("-")."""
    return None if nanos is None else format_usd(nanos)


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
        print(json_decimal.dumps([_usage_json(u) for u in (teams if args.teams else people)], indent=2))
        return 0
    print(f"usage on {day.isoformat()} ({settings.quota_timezone.key}); requests and cost as used / limit")
    heads = ("requests today", "failed", "requests month", "cost today", "cost month", "state")
    if people:
        print(table(("principal", "team", *heads), [
            (p.principal, p.team if p.team_status == TeamStatus.TEAM else f"({p.team_status}: {p.team})", *_row(p))
            for p in people]))
    if teams:
        print("\n" + table(("team", *heads, "people today"), [(t.team, *_row(t), len(t.members)) for t in teams]))
    shown: list[PersonUsage | TeamUsage] = [*people, *teams]
    if any(u.tokens != Tokens() or u.monthly_tokens != Tokens() for u in shown):
        print("\ntokens: input / output / cache read / cache write\n" + table(
            ("principal or team", "today", "month"),
            [(u.principal if isinstance(u, PersonUsage) else f"team {u.team}", _tokens(u.tokens),
              _tokens(u.monthly_tokens)) for u in shown]))
    without = [p for p in people if p.team_status != TeamStatus.TEAM]
    if without:
        # Not a team: counted for themselves only, never blocked together. Give them one (quota file,
        # Team tag, Identity Center group); "unresolved" means their lookup is still failing.
        print(f"\n{len(without)} without a team ({settings.default_team} is not a team): "
              + ", ".join(f"{p.principal} ({p.team_status})" for p in without))
    return 0


# Internal fields of PersonUsage/TeamUsage (nano-dollars, token parts): the JSON shows them as below.
_MONEY_FIELDS = ("cost", "monthly_cost", "daily_cost_limit", "monthly_cost_limit", "tokens", "monthly_tokens")


def _usage_json(u: PersonUsage | TeamUsage) -> dict[str, Any]:
    """The fields `usage --json` always had, and the day's cost and tokens: dollars as exact decimals."""
    fields = {k: v for k, v in u.as_dict().items() if k not in _MONEY_FIELDS}
    return {**fields, "cost_usd": usd(u.cost), "monthly_cost_usd": usd(u.monthly_cost),
            "daily_cost_limit_usd": _dollars(u.daily_cost_limit),
            "monthly_cost_limit_usd": _dollars(u.monthly_cost_limit),
            "input_tokens": u.tokens.input, "output_tokens": u.tokens.output,
            "cache_read_tokens": u.tokens.cache_read, "cache_write_tokens": u.tokens.cache_write}


def _row(u: PersonUsage | TeamUsage) -> tuple[str, int, str, str, str, str]:
    def of(used: str, limit: str | None) -> str:
        return f"{used} / {limit}" if limit is not None else used

    def count(used: int, limit: int | None) -> str:
        return of(f"{used:,}", None if limit is None else f"{limit:,}")

    return (count(u.requests, u.daily_limit), u.failed, count(u.monthly_requests, u.monthly_limit),
            of(format_usd(u.cost), _usd(u.daily_cost_limit)),
            of(format_usd(u.monthly_cost), _usd(u.monthly_cost_limit)), u.state)


def _tokens(t: Tokens) -> str:
    return f"{t.input:,} / {t.output:,} / {t.cache_read:,} / {t.cache_write:,}"


# -- counters, ingest, decisions, dead letters, consumer ----------------------------------------

def counters_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from consumer.rebuild import rebuild  # noqa: PLC0415

    report = rebuild(settings)
    print(f"rebuilt from MySQL: {report.rows} calls and invocation logs replayed into Redis, {report.new} were missing"
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
        # A cost quota's usage and limit are nano-dollars (so in --json): shown here in dollars.
        def amount(quota: str, value: int) -> object:
            return format_usd(int(value)) if Quota(quota).cost else value

        print(table(names[:9], [(r[0].replace(tzinfo=UTC).isoformat(timespec="seconds"), *r[1:7],
                                 amount(r[4], r[7]), amount(r[4], r[8])) for r in rows]))
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
