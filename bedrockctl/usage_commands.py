"""`bedrockctl usage`, `decisions`, `dead-letters`: what was counted, decided and refused, for people to read."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bedrock_usage import db, json_decimal
from bedrock_usage.commands import CommandGroup
from bedrock_usage.periods import first_of_next_month
from bedrock_usage.pricing.rates import Tokens
from bedrock_usage.printing import dollars, table, usd_cell
from bedrock_usage.quota import Quota, format_usd, nanos_of, usd
from bedrock_usage.redis_state import redis_client
from bedrock_usage.settings import SharedSettings
from bedrock_usage.tools import tool_usage
from bedrock_usage.usage import PersonUsage, TeamStatus, TeamUsage, UsageReader


def usage(args: argparse.Namespace, settings: SharedSettings) -> int:
    if args.by_tool:
        return _by_tool(args, settings)
    if args.month:
        raise ValueError("--month goes with --by-tool (the day's usage is per --date)")
    day = _day(args.date) if args.date else datetime.now(settings.quota_timezone).date()
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


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--date {text!r} is not YYYY-MM-DD") from None


def _by_tool(args: argparse.Namespace, settings: SharedSettings) -> int:
    """Each person's calls by tool for a day (--date) or a month (--month): see bedrock_usage/tools.py."""
    if args.teams:
        raise ValueError("--by-tool is per person (--team T for one team's people)")
    if args.month and args.date:
        raise ValueError("--by-tool takes --date or --month, not both")
    today = datetime.now(settings.quota_timezone).date()
    if args.month:
        try:
            first = date.fromisoformat(args.month + "-01")
        except ValueError:
            raise ValueError(f"--month {args.month!r} is not YYYY-MM") from None
        end, span = first_of_next_month(first), args.month
    else:
        first = _day(args.date) if args.date else today
        end, span = first + timedelta(days=1), first.isoformat()
    conn = db.connect(settings.mysql)
    try:
        rows = tool_usage(conn, first, end, settings.default_team, user=args.user, team=args.team)
    finally:
        conn.close()
    if args.json:
        print(json_decimal.dumps([{**asdict(u), "basis": str(u.basis)} for u in rows], indent=2))
        return 0
    print(f"usage by tool, {span} ({settings.quota_timezone.key}); basis: how the tool was known (api-key: the"
          " tool its API key was made for; app-id: the SDK's app/ ID; user-tag: the user's Tool tag; user-agent: the"
          " agent's product)")
    print(table(("principal", "team", "tool", "basis", "requests", "failed", "with API key", "cost"),
                [(u.principal, u.team, u.tool, u.basis, f"{u.requests:,}", f"{u.failed:,}", f"{u.api_key_requests:,}",
                  format_usd(nanos_of(u.cost_usd))) for u in rows]))
    return 0


# Internal fields of PersonUsage/TeamUsage (nano-dollars, token parts): the JSON shows them as below.
_MONEY_FIELDS = ("cost", "monthly_cost", "daily_cost_limit", "monthly_cost_limit", "tokens", "monthly_tokens")


def _usage_json(u: PersonUsage | TeamUsage) -> dict[str, Any]:
    """The fields `usage --json` always had, and the day's cost and tokens: dollars as exact decimals."""
    fields = {k: v for k, v in u.as_dict().items() if k not in _MONEY_FIELDS}
    return {**fields, "cost_usd": usd(u.cost), "monthly_cost_usd": usd(u.monthly_cost),
            "daily_cost_limit_usd": dollars(u.daily_cost_limit),
            "monthly_cost_limit_usd": dollars(u.monthly_cost_limit),
            "input_tokens": u.tokens.input, "output_tokens": u.tokens.output,
            "cache_read_tokens": u.tokens.cache_read, "cache_write_tokens": u.tokens.cache_write}


def _row(u: PersonUsage | TeamUsage) -> tuple[str, int, str, str, str, str]:
    def of(used: str, limit: str | None) -> str:
        return f"{used} / {limit}" if limit is not None else used

    def count(used: int, limit: int | None) -> str:
        return of(f"{used:,}", None if limit is None else f"{limit:,}")

    return (count(u.requests, u.daily_limit), u.failed, count(u.monthly_requests, u.monthly_limit),
            of(format_usd(u.cost), usd_cell(u.daily_cost_limit)),
            of(format_usd(u.monthly_cost), usd_cell(u.monthly_cost_limit)), u.state)


def _tokens(t: Tokens) -> str:
    return f"{t.input:,} / {t.output:,} / {t.cache_read:,} / {t.cache_write:,}"


def decisions(args: argparse.Namespace, settings: SharedSettings) -> int:
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


def dead_letters(args: argparse.Namespace, settings: SharedSettings) -> int:
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


def register(commands: CommandGroup) -> None:
    usage_ = commands.add("usage", usage, "usage per person (and team) for a day", settings=SharedSettings)
    usage_.add_argument("--user", help="quota key, e.g. arn:aws:iam::123456789012:user/alice or sso:bob@example.com")
    usage_.add_argument("--team")
    usage_.add_argument("--date", help="YYYY-MM-DD in QUOTA_TIMEZONE (default: today)")
    usage_.add_argument("--teams", action="store_true", help="teams alone, with the people counted in each")
    usage_.add_argument("--by-tool", action="store_true",
                        help="each person's calls by tool: the API key's, the SDK's app ID, the Tool tag or"
                        " the user agent")
    usage_.add_argument("--month", help="YYYY-MM, with --by-tool: the month's calls instead of a day's")
    usage_.add_argument("--json", action="store_true")

    decided = commands.add("decisions", decisions, "decisions taken (from MySQL)", settings=SharedSettings)
    decided.add_argument("--since", help="YYYY-MM-DD")
    decided.add_argument("--json", action="store_true")

    dead = commands.add("dead-letters", dead_letters, "records that would not decode, with their reasons",
                        settings=SharedSettings)
    dead.add_argument("--limit", type=int, default=20)
