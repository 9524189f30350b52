"""Cost limits in the quota file (read exactly, checked like the request limits), exact dollars in JSON,
the block that stands when several quotas are used up, and cost messages in both languages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bedrock_usage.identity import IdentityType
from bedrock_usage.json_decimal import dumps
from bedrock_usage.notifications import NotificationKind, NotificationScope
from bedrock_usage.periods import period_end
from bedrock_usage.quota import Decision, Kind, Limits, Quota, Scope, State
from bedrock_usage.quota_file import QuotaFileError, parse_quota_file
from bedrock_usage.usage import PersonUsage, TeamStatus
from enforcement.model import BLOCKING_ORDER, blocking_rank, handling_order
from notifier.render import Note, Renderer

ALICE = "arn:aws:iam::111122223333:user/alice"
MADRID = ZoneInfo("Europe/Madrid")


def parse(text: str) -> Any:
    return parse_quota_file(text, default_team="unassigned")


def problems(text: str) -> list[str]:
    with pytest.raises(QuotaFileError) as caught:
        parse(text)
    return list(caught.value.problems)


def test_cost_limits_are_read_exactly_as_written_into_nano_dollars() -> None:
    quota = parse(f"""
teams:
  research: {{daily_cost_limit_usd: 0.1, monthly_cost_limit_usd: 12.5}}
users:
  "{ALICE}": {{team: research, daily_limit: 40, daily_cost_limit_usd: 1_000.2501, monthly_cost_limit_usd: 30000}}
""")
    assert quota.teams["research"] == Limits(None, None, 100_000_000, 12_500_000_000)
    assert quota.people[ALICE].limits == Limits(40, None, 1_000_250_100_000, 30_000_000_000_000)


def test_a_float_would_not_be_exact_the_loader_is() -> None:
    # A float is already rounded (0.3 is 0.29999999999999998889…): read as written, the limit is exactly 0.3.
    quota = parse(f'users:\n  "{ALICE}": {{daily_cost_limit_usd: 0.3, monthly_cost_limit_usd: 8999999.9999}}\n')
    assert quota.people[ALICE].limits.daily_cost == 300_000_000
    # As a float it is 8999999.99990000016987…: exact here, through Decimal of the text.
    assert quota.people[ALICE].limits.monthly_cost == 8_999_999_999_900_000


@pytest.mark.parametrize(("value", "problem"), [
    ("0", "must be an amount of dollars above 0, got 0"),
    ("-5", "must be an amount of dollars above 0, got -5"),
    ("-0.5", "must be an amount of dollars above 0, got -0.5"),
    ("'12.50'", "must be an amount of dollars like 25 or 12.50, got '12.50'"),
    ("$12", "must be an amount of dollars like 25 or 12.50, got '$12'"),
    ("true", "must be an amount of dollars like 25 or 12.50, got True"),
    ("[1]", "must be an amount of dollars like 25 or 12.50, got [1]"),
    (".inf", "must be an amount of dollars like 25 or 12.50, got '.inf'"),
    ("12.00001", "12.00001 has more than 4 decimal places"),
    ("9000000.5", "9000000.5 is above the largest limit, 9000000 dollars"),
])
def test_a_bad_cost_limit_names_its_entry_and_field(value: str, problem: str) -> None:
    assert problems(f'users:\n  "{ALICE}": {{daily_cost_limit_usd: {value}}}\n') == [
        f'users."{ALICE}".daily_cost_limit_usd: {problem}']
    assert problems(f"teams:\n  research: {{monthly_cost_limit_usd: {value}}}\n") == [
        f"teams.research.monthly_cost_limit_usd: {problem}"]


def test_a_daily_cost_limit_above_the_monthly_one_and_every_problem_at_once() -> None:
    assert problems(f"teams:\n  research: {{daily_cost_limit_usd: 50.5, monthly_cost_limit_usd: 50.25}}\n"
                    f'users:\n  "{ALICE}": {{daily_limit: 1.5, daily_cost_limit_usd: 0}}\n') == [
        "teams.research.daily_cost_limit_usd: 50.5 is above the monthly_cost_limit_usd 50.25",
        f'users."{ALICE}".daily_limit: must be a positive integer, got 1.5',  # as written, not Decimal('1.5')
        f'users."{ALICE}".daily_cost_limit_usd: must be an amount of dollars above 0, got 0',
    ]
    # Equal is fine; one alone is compared with nothing (the defaults may change after the file is written).
    assert parse("teams:\n  research: {daily_cost_limit_usd: 50, monthly_cost_limit_usd: 50.0}\n").teams
    assert parse("teams:\n  research: {daily_cost_limit_usd: 5000}\n").teams["research"].daily_cost == 5000 * 10**9


def test_decimal_json_numbers_keep_their_digits() -> None:
    text = dumps({"cost_usd": Decimal("41.200000000"), "limit": Decimal("500.0000"), "tiny": Decimal("1E-9"),
                  "none": None, "who": "a \"quoted\" name", "n": 3}, indent=2)
    assert '"cost_usd": 41.2,' in text and '"limit": 500,' in text and '"tiny": 0.000000001' in text
    assert json.loads(text, parse_float=Decimal) == {
        "cost_usd": Decimal("41.2"), "limit": 500, "tiny": Decimal("0.000000001"), "none": None,
        "who": 'a "quoted" name', "n": 3}


def test_usage_json_writes_the_enums_as_the_strings_they_always_were() -> None:
    """`usage --json` of a person: identity type, team status and state are enums, written as their values."""
    person = PersonUsage("ana", None, IdentityType.IAM_USER, "t", TeamStatus.UNRESOLVED, "2026-11-25", 1, 0, None,
                         1, None, State.WARNING)
    plain = {**person.as_dict(), "identity_type": "iam_user", "team_status": "unresolved", "state": "warning"}
    assert dumps(person.as_dict(), indent=2) == dumps(plain, indent=2)
    assert dumps(person.as_dict()) == dumps(plain)  # without indent, the C encoder
    assert '"state": "warning"' in dumps(person.as_dict())


def test_the_block_that_stands_is_monthly_before_daily_and_cost_before_requests() -> None:
    assert [q for q in sorted(Quota, key=blocking_rank, reverse=True)] == [
        Quota.MONTHLY_COST, Quota.MONTHLY_REQUESTS, Quota.DAILY_COST, Quota.DAILY_REQUESTS]
    assert set(BLOCKING_ORDER) == set(Quota)

    def decision(kind: Kind, quota: Quota) -> Decision:
        return Decision(kind, Scope.USER, ALICE, quota, "2026-11", 100, 1, 1, "e", "t", ALICE, "research")

    batch = [decision(Kind.WARNING, Quota.MONTHLY_COST), decision(Kind.EXCEEDED, Quota.DAILY_COST),
             decision(Kind.EXCEEDED, Quota.MONTHLY_COST), decision(Kind.EXCEEDED, Quota.DAILY_REQUESTS)]
    assert [(d.kind, d.quota) for d in sorted(batch, key=handling_order)] == [
        (Kind.EXCEEDED, Quota.MONTHLY_COST), (Kind.EXCEEDED, Quota.DAILY_COST),
        (Kind.EXCEEDED, Quota.DAILY_REQUESTS), (Kind.WARNING, Quota.MONTHLY_COST)]


def test_a_daily_cost_period_ends_at_the_next_midnight_not_the_month_end() -> None:
    assert period_end("daily_cost", "2026-11-25", MADRID) == datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    assert period_end("monthly_cost", "2026-11", MADRID) == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


RETURNS = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)


def cost_note(kind: str, quota: str = "daily_cost", **changes: Any) -> Note:
    values: dict[str, Any] = dict(
        scope="user", principal=ALICE, display_name="Ana García", email="ana@example.com", team="research",
        quota=quota, period="2026-11" if Quota(quota).monthly else "2026-11-25", percent=85,
        usage=41_200_000_000, limit=50_000_000_000, actor="system")
    if kind in ("blocked", "team_blocked"):
        values.update(percent=100, usage=50_004_000_000, access_returns_at=RETURNS)
    if kind == "team_blocked":
        values.update(scope="team", principal="research", display_name=None, quota_scope="team",
                      reason="team research exceeded its daily cost quota: $50.00 of $50.00; Bedrock paused for"
                             " the 3 people counted in it")
    values.update(changes)
    # As the outbox reads them (notifier/outbox.py): the closed sets as enums.
    values["scope"] = NotificationScope(values["scope"])
    for name, enum in (("quota", Quota), ("quota_scope", Scope)):
        if values.get(name):
            values[name] = enum(values[name])
    return Note("key", NotificationKind(kind), created_at=RETURNS, id=1, **values)


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", {
        "warning": ("Bedrock: 85% of your daily cost quota used",
                    "Hello Ana García, you have used $41.20 of $50.00 of your daily cost quota for Bedrock."),
        "blocked": ("Bedrock paused: daily cost quota used up",
                    "Hello Ana García, you have used up your daily cost quota: $50.00 of $50.00."),
        "team_blocked": ("Bedrock paused for team research: daily cost quota used up",
                         "Team research has used $50.00 of $50.00 of its daily cost quota for Bedrock"),
        "unblocked": ("Bedrock is available again", "your daily cost quota has reset"),
    }),
    ("es", {
        "warning": ("Bedrock: has usado el 85% de tu cuota de coste diario",
                    "Hola Ana García, llevas $41.20 de $50.00 de tu cuota de coste diario de Bedrock."),
        "blocked": ("Bedrock en pausa: cuota de coste diario agotada",
                    "Hola Ana García, has agotado tu cuota de coste diario: $50.00 de $50.00."),
        "team_blocked": ("Bedrock en pausa para el equipo research: cuota de coste diario agotada",
                         "El equipo research lleva $50.00 de $50.00 de su cuota de coste diario de Bedrock"),
        "unblocked": ("Bedrock vuelve a estar disponible", "tu cuota de coste diario se ha reiniciado"),
    }),
])
def test_cost_messages_show_dollars_in_both_languages(lang: str, expected: dict[str, tuple[str, str]]) -> None:
    renderer = Renderer("en", MADRID, MADRID)
    for kind, (subject, sentence) in expected.items():
        message = renderer.render(cost_note(kind), lang)
        assert message.subject == subject
        assert sentence in message.text and sentence in message.html
        assert "50000000000" not in message.text + message.html  # never the nano-dollars
    facts = renderer.render(cost_note("blocked"), lang).text
    assert ("Quota" if lang == "en" else "Cuota") in facts
    assert ("daily cost" if lang == "en" else "coste diario") in facts and "$50.00" in facts


def test_a_monthly_cost_message_names_the_monthly_quota_and_the_first_of_the_month() -> None:
    renderer = Renderer("en", MADRID, MADRID)
    text = renderer.render(cost_note("warning", "monthly_cost", usage=410_000_000_000, limit=500_000_000_000)).text
    assert "you have used $410.00 of $500.00 of your monthly cost quota" in text
    assert "Tuesday 1 December 2026, 00:00 CET" in text  # the quota resets on the 1st
    es = renderer.render(cost_note("blocked", "monthly_cost", usage=500_000_000_000, limit=500_000_000_000), "es")
    assert es.subject == "Bedrock en pausa: cuota de coste mensual agotada" and "$500.00 de $500.00" in es.text


def test_request_messages_are_unchanged() -> None:
    renderer = Renderer("en", MADRID, MADRID)
    note = cost_note("blocked", "daily_requests", usage=40, limit=40)
    message = renderer.render(note)
    assert "you have used your daily quota: 40 of 40 requests." in message.text and "$" not in message.text
    assert "cuota diaria: 40 de 40 peticiones" in renderer.render(note, "es").text
