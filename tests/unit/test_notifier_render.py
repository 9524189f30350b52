"""Every message kind in both languages, HTML and text, with real values in the output; and who gets what."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bedrock_usage.notifications import NotificationKind, NotificationScope
from bedrock_usage.quota import Quota, Scope
from devtools.settings import AllSettings
from notifier.recipients import Channel, Route, routes
from notifier.render import KINDS, Note, Renderer, catalogue, format_time

MADRID = ZoneInfo("Europe/Madrid")
RETURNS = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)  # 00:00 on the 26th in Madrid
PERSON = dict(principal="arn:aws:iam::123456789012:user/ana", display_name="Ana García", email="ana@example.com",
              team="data-science", quota="daily_requests", period="2026-11-25")


def note(kind: str, **changes: Any) -> Note:
    values: dict[str, Any] = {**PERSON, "scope": "user", "percent": 85, "usage": 34, "limit": 40,
                              "actor": "system", "reason": None}
    if kind == "blocked":
        values.update(percent=100, usage=40, access_returns_at=RETURNS)
    if kind == "team_blocked":
        values.update(scope="team", principal="data-science", display_name=None, email=None, quota_scope="team",
                      percent=100, usage=400, limit=400, access_returns_at=RETURNS,
                      reason="team data-science exceeded its daily quota: 400 of 400; Bedrock paused for the 7"
                             " people counted in it")
    if kind == "admin_blocked":
        values.update(actor="finops-admin", reason="runaway notebook", access_returns_at=RETURNS, quota=None)
    if kind == "admin_unblocked":
        values.update(actor="finops-admin", reason="deadline today", protected_until=RETURNS, quota=None)
    if kind == "alert":
        values.update(scope="admins", reason="could not deny ana alone (unknown_role_id)", actor="system")
    if kind == "summary":
        values = {"scope": "admins", "principal": "admins", "payload": {
            "date": "2026-11-24",
            "teams": [{"team": "data-science", "requests": 321, "daily_limit": None, "monthly_requests": 4321,
                       "monthly_limit": 30000}],
            "top": [{"principal": PERSON["principal"], "name": "Ana García", "team": "data-science", "requests": 57}],
            "blocked": [{"principal": PERSON["principal"], "name": "Ana García", "reason": "daily quota exceeded",
                         "until": RETURNS.isoformat()}],
            "without_team": [{"principal": "sso:lee@example.com", "name": "Lee", "status": "unresolved",
                              "requests": 12}],
            "dead": 2, "refusals": 1, "spend_usd": "1234.567891234", "metered": 4321,
            "unmetered": [{"region": "eu-west-3", "calls": 17}, {"region": "us-east-1", "calls": 2}]}}
    if kind == "unpriced_model":
        values = {"scope": "admins", "principal": "admins", "actor": "system", "payload": {
            "model": "anthropic.claude-future-v1:0", "fallback_model": "anthropic.claude-opus-4-1-20250805-v1:0",
            "calls": 3, "first_seen": "2026-11-24 10:00:00"}}
    values.update(changes)
    # As the outbox reads them (notifier/outbox.py): the closed sets as enums.
    values["scope"] = NotificationScope(values["scope"])
    for name, enum in (("quota", Quota), ("quota_scope", Scope)):
        if values.get(name):
            values[name] = enum(values[name])
    return Note("key", NotificationKind(kind), created_at=RETURNS, id=1, **values)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer("en", MADRID, MADRID)


def test_the_catalogues_have_the_same_keys() -> None:
    def keys(tree: Any, prefix: str = "") -> set[str]:
        if not isinstance(tree, dict):
            return {prefix}
        return set().union(*(keys(v, f"{prefix}.{k}") for k, v in tree.items()))

    assert keys(catalogue("en")) == keys(catalogue("es"))


EXPECTED = {  # kind → (en, es) phrases that must appear in the text, with the values filled in
    "warning": (["85% of your daily quota", "34 of your 40 daily", "Thursday 26 November 2026, 00:00 CET"],
                ["85% de tu cuota diaria", "34 de tus 40 peticiones", "jueves 26 de noviembre de 2026, 00:00 CET"]),
    "blocked": (["used your daily quota: 40 of 40", "Thursday 26 November 2026, 00:00 CET"],
                ["agotado tu cuota diaria: 40 de 40", "el jueves 26 de noviembre de 2026, 00:00 CET"]),
    "team_blocked": (["Team data-science has made 400 of its 400 daily", "paused for the 7 people",
                      "Thursday 26 November 2026, 00:00 CET"],
                     ["El equipo data-science lleva 400 de sus 400", "el jueves 26 de noviembre de 2026"]),
    "unblocked": (["your daily quota has reset"], ["tu cuota diaria se ha reiniciado"]),
    "admin_blocked": (["finops-admin paused your Bedrock access", "runaway notebook", "26 November 2026"],
                      ["finops-admin ha pausado tu acceso", "runaway notebook", "26 de noviembre de 2026"]),
    "admin_unblocked": (["finops-admin restored your Bedrock access", "will not pause Bedrock again until Thursday"],
                        ["finops-admin ha restablecido tu acceso", "no volverá a pausar Bedrock hasta el jueves"]),
    "alert": (["could not deny ana alone (unknown_role_id)", "bedrockctl status arn:aws:iam::123456789012:user/ana"],
              ["could not deny ana alone (unknown_role_id)", "No se ha aplicado nada más amplio"]),
    "summary": (["Bedrock usage on 2026-11-24", "data-science", "4321 / 30000", "Ana García", "57",
                 "People without a team (1)", "unresolved",
                 "could not be delivered: 2", "refused (could not be scoped to one person): 1",
                 "Spend that day: $1,234.57 over 4321 metered calls", "eu-west-3: 17, us-east-1: 2"],
                ["Uso de Bedrock el 2026-11-24", "4321 / 30000", "Ana García", "no se pudieron entregar: 2",
                 "Personas sin equipo (1)", "Gasto del día: $1,234.57", "Llamadas sin coste",
                 "eu-west-3: 17, us-east-1: 2"]),
    "unpriced_model": (["Model anthropic.claude-future-v1:0 has no price; its calls are charged as"
                        " anthropic.claude-opus-4-1-20250805-v1:0 (the fallback)", "`bedrockctl prices import`"],
                       ["El modelo anthropic.claude-future-v1:0 no tiene precio; sus llamadas se cobran como"
                        " anthropic.claude-opus-4-1-20250805-v1:0", "`bedrockctl prices import`"]),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_kind_renders_in_both_languages_with_its_values(renderer: Renderer, kind: str, lang: str) -> None:
    message = renderer.render(note(kind), lang)
    phrases = EXPECTED[kind][0 if lang == "en" else 1]
    for phrase in phrases:
        assert phrase in message.text, (phrase, message.text)
        assert phrase.replace("`", "") in re.sub(r"<[^>]+>", "", message.html).replace("&#39;", "'"), phrase
    assert message.subject and "\n" not in message.subject
    assert "<" not in message.text.replace("<b>", "")  # plain text has no markup
    assert message.html.startswith("<!DOCTYPE html>") and f'lang="{lang}"' in message.html
    assert 'name="viewport"' in message.html and "max-width:600px" in message.html  # readable on a phone


@pytest.mark.parametrize(("kind", "colour"), [
    ("warning", "#B25E00"), ("blocked", "#B3261E"), ("admin_blocked", "#B3261E"), ("unblocked", "#1E7B34"),
    ("admin_unblocked", "#1E7B34"), ("alert", "#B3261E")])
def test_colours_amber_for_warnings_red_for_blocks_green_for_restored_access(
        renderer: Renderer, kind: str, colour: str) -> None:
    assert f"border-top:6px solid {colour}" in renderer.render(note(kind)).html


def test_html_is_autoescaped_and_text_is_not(renderer: Renderer) -> None:
    message = renderer.render(note("blocked", display_name="<script>alert(1)</script> & Co"))
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html and "&amp; Co" in message.html
    assert "<script>alert(1)</script> & Co" in message.text


def test_the_persons_language_and_time_zone_win_over_the_defaults(renderer: Renderer) -> None:
    message = renderer.render(note("blocked", language="es", time_zone="America/Mexico_City"))
    assert message.language == "es" and "miércoles 25 de noviembre de 2026, 17:00 CST" in message.text
    assert renderer.render(note("blocked", language="fr")).language == "en"  # unknown: the default


def test_shadow_messages_say_so(renderer: Renderer) -> None:
    message = renderer.render(note("blocked", shadow=True))
    assert message.subject.startswith("[shadow] ") and "Shadow mode" in message.text and "Shadow mode" in message.html


def test_team_warnings_speak_of_the_team(renderer: Renderer) -> None:
    message = renderer.render(note("warning", scope="team", principal="data-science", display_name=None), "en")
    assert "Team data-science has made 34 of its 40 daily" in message.text


def test_dates_in_both_languages() -> None:
    assert format_time(RETURNS, "en", MADRID) == "Thursday 26 November 2026, 00:00 CET"
    assert format_time(RETURNS, "es", MADRID) == "jueves 26 de noviembre de 2026, 00:00 CET"


def _settings(**env: str) -> AllSettings:
    return AllSettings.from_env({"ADMIN_EMAILS": "ops@example.com, cfo@example.com",
                              "ALERT_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
                              "SLACK_WEBHOOK_URL": "http://127.0.0.1/slack", **env})


def test_routes_person_team_admins_global_admins_and_chat() -> None:
    settings = _settings()
    admins = ["lead@example.com"]
    assert routes(note("warning"), settings, admins) == [Route(Channel.EMAIL, "ana@example.com", "person")]
    assert routes(note("warning", scope="team", email=None), settings, admins) == [
        Route(Channel.EMAIL, "lead@example.com", "team_admin")]
    assert {r.recipient for r in routes(note("blocked"), settings, admins)} == {
        "ana@example.com", "lead@example.com", "slack"}
    assert [r.recipient for r in routes(note("unblocked"), settings, admins)] == ["ana@example.com"]
    assert {(r.channel, r.recipient) for r in routes(note("alert"), settings, admins)} == {
        (Channel.EMAIL, "ops@example.com"), (Channel.EMAIL, "cfo@example.com"),
        (Channel.SNS, "arn:aws:sns:us-east-1:123456789012:alerts"), (Channel.SLACK, "slack")}
    assert {r.recipient for r in routes(note("summary"), settings, admins)} == {
        "ops@example.com", "cfo@example.com", "slack"}
    assert {r.recipient for r in routes(note("unpriced_model"), settings, admins)} == {
        "ops@example.com", "cfo@example.com", "slack"}
    assert routes(note("warning", email=None), settings, []) == []
    assert {r.channel for r in routes(note("alert"), _settings(EMAIL_BACKEND="none"), [])} == {
        Channel.SNS, Channel.SLACK}


def test_a_team_over_its_quota_is_one_message_for_its_admins_and_the_channels() -> None:
    settings = _settings(TEAMS_WEBHOOK_URL="http://127.0.0.1/teams")
    admins = ["lead@example.com"]
    # Each member blocked for the team's quota hears of it alone…
    assert routes(note("blocked", quota_scope="team"), settings, admins) == [
        Route(Channel.EMAIL, "ana@example.com", "person")]
    # …and the team's block reaches its admins and each channel once.
    assert {(r.channel, r.recipient) for r in routes(note("team_blocked"), settings, admins)} == {
        (Channel.EMAIL, "lead@example.com"), (Channel.SLACK, "slack"), (Channel.TEAMS, "teams")}


def test_a_block_for_the_teams_quota_says_so(renderer: Renderer) -> None:
    message = renderer.render(note("blocked", quota_scope="team", usage=2000, limit=2000), "en")
    assert "your team data-science has used its daily quota: 2000 of 2000" in message.text


def test_an_admins_copy_says_whose_message_it_is(renderer: Renderer) -> None:
    copy = renderer.render(note("blocked"), "en", copy=True)
    assert copy.subject == "[Ana García] Bedrock paused: daily quota used up"
    assert "A copy for you as an administrator: Ana García (arn:aws:iam::123456789012:user/ana)" in copy.text
    assert "A copy for you as an administrator" in copy.html
    assert "A copy for you" not in renderer.render(note("blocked"), "en").text


def test_a_summary_queued_before_costs_renders_without_the_cost_lines(renderer: Renderer) -> None:
    old = note("summary")
    payload = {k: v for k, v in old.payload.items() if k not in ("spend_usd", "metered", "unmetered")}
    message = renderer.render(note("summary", payload=payload), "en")
    assert "Spend that day" not in message.text and "Calls without a cost" not in message.html


def test_a_day_with_every_call_metered_says_none(renderer: Renderer) -> None:
    message = renderer.render(note("summary", payload={**note("summary").payload, "unmetered": []}), "es")
    assert "Llamadas sin coste: ninguna" in message.text
