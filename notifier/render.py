"""Rendering (pure): a notification → subject, plain text and HTML, in the person's language and time zone.

Templates (`templates/`, jinja2) hold the layout, one HTML and one text template per kind over shared
bases; the words live in one catalogue per language (`i18n/en.yaml`, `i18n/es.yaml`), so a translator
edits one file. HTML is autoescaped; a missing variable or catalogue key is an error, never a blank.
Sending is the channels' business (`channels/`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bedrock_usage.notifications import LANGUAGES, Notification, NotificationKind, NotificationScope
from bedrock_usage.periods import period_end
from bedrock_usage.quota import format_usd, nanos_of

HERE = Path(__file__).parent
KINDS = tuple(kind.value for kind in NotificationKind)  # as `notify preview` is given them
TONES = {NotificationKind.WARNING: "amber", NotificationKind.BLOCKED: "red", NotificationKind.TEAM_BLOCKED: "red",
         NotificationKind.ADMIN_BLOCKED: "red", NotificationKind.ALERT: "red", NotificationKind.UNBLOCKED: "green",
         NotificationKind.ADMIN_UNBLOCKED: "green", NotificationKind.SUMMARY: "neutral",
         NotificationKind.UNPRICED_MODEL: "amber"}


@dataclass(frozen=True)
class Note(Notification):
    """A notification as the notifier reads it: the outbox row (its id; the summary's payload) and the
    person's preferences as they are now."""

    id: int = 0
    payload: Mapping[str, Any] = field(default_factory=dict)
    language: str | None = None
    time_zone: str | None = None


@dataclass(frozen=True)
class Message:
    kind: NotificationKind
    language: str
    subject: str
    text: str
    html: str


@cache
def catalogue(language: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((HERE / "i18n" / f"{language}.yaml").read_text(encoding="utf-8"))
    return loaded


def _lookup(language: str, key: str) -> Any:
    value: Any = catalogue(language)
    for part in key.split("."):
        value = value[part]
    return value


def format_time(instant: datetime, language: str, tz: ZoneInfo) -> str:
    local = instant.astimezone(tz)
    names = catalogue(language)["dates"]
    return str(names["format"]).format(
        weekday=names["weekdays"][local.weekday()], day=local.day, month=names["months"][local.month - 1],
        year=local.year, time=local.strftime("%H:%M %Z"))


class Renderer:
    def __init__(self, default_language: str, default_tz: ZoneInfo, quota_tz: ZoneInfo) -> None:
        self._default_language, self._default_tz, self._quota_tz = default_language, default_tz, quota_tz
        loader = FileSystemLoader(HERE / "templates")
        self._html = Environment(loader=loader, autoescape=True, undefined=StrictUndefined)
        self._text = Environment(loader=loader, autoescape=False, undefined=StrictUndefined,
                                 keep_trailing_newline=True)

    def language_of(self, note: Note) -> str:
        return note.language if note.language in LANGUAGES else self._default_language

    def zone_of(self, note: Note) -> ZoneInfo:
        try:
            return ZoneInfo(note.time_zone) if note.time_zone else self._default_tz
        except (ValueError, KeyError):
            return self._default_tz

    def render(self, note: Note, language: str | None = None, *, copy: bool = False) -> Message:
        """`copy`: the message as an admin receives a copy of a person's (a line says whose it is)."""
        lang = language or self.language_of(note)
        tz = self.zone_of(note)
        fields = self._fields(note, lang, tz)

        def t(key: str, **extra: Any) -> str:
            return str(_lookup(lang, key)).format(**{**fields, **extra})

        context = {"t": t, "lang": lang, "tone": TONES[note.kind], "shadow": note.shadow, "tz": tz.key, "copy": copy,
                   "title": t(f"{note.kind}.title"), "facts": self._facts(note, t, fields), **fields,
                   "summary": _summary(note.payload, lang, tz) if note.kind is NotificationKind.SUMMARY else None}
        subject = ("[shadow] " if note.shadow else "") + (f"[{fields['name']}] " if copy else "") + t(
            f"{note.kind}.subject")
        return Message(note.kind, lang, subject,
                       self._text.get_template(f"{note.kind}.txt").render(context),
                       self._html.get_template(f"{note.kind}.html").render(context))

    def _fields(self, note: Note, lang: str, tz: ZoneInfo) -> dict[str, Any]:
        def when(instant: datetime | None) -> str:
            return format_time(instant, lang, tz) if instant else ""

        resets = ""
        if note.quota and note.period:
            resets = when(period_end(note.quota, note.period, self._quota_tz))
        # A cost quota's usage and limit are nano-dollars: shown as dollars ("$41.20 of $50.00").
        cost = note.quota is not None and note.quota.cost

        def amount(value: int | None) -> int | str:
            return format_usd(value or 0) if cost else value or 0

        return {
            "name": note.display_name or note.principal, "principal": note.principal, "team": note.team or "",
            "scope": note.quota_scope or note.scope,  # whose quota: the person's or the team's
            "quota": _lookup(lang, f"quota.{note.quota}") if note.quota else "", "cost": cost,
            "quota_name": _lookup(lang, f"quota_names.{note.quota}") if note.quota else "",
            "period": note.period or "", "percent": note.percent or 0, "usage": amount(note.usage),
            "limit": amount(note.limit), "returns": when(note.access_returns_at), "resets": resets,
            "protected_until": when(note.protected_until), "actor": note.actor or "", "reason": note.reason or "",
            "date": str(note.payload.get("date", "")),
            # unpriced_model: the model without a price and the one whose price it is charged at.
            "model": str(note.payload.get("model", "")), "fallback": str(note.payload.get("fallback_model") or "?"),
        }

    @staticmethod
    def _facts(note: Note, t: Any, fields: Mapping[str, Any]) -> list[tuple[str, str]]:
        facts: list[tuple[str, str]] = []

        def add(label: str, value: Any) -> None:
            if value not in (None, ""):
                facts.append((t(f"facts.{label}"), str(value)))

        if note.kind in (NotificationKind.SUMMARY, NotificationKind.UNPRICED_MODEL):
            return facts
        add("person", note.display_name or note.principal if note.scope is not NotificationScope.TEAM else None)
        add("team", note.team)
        if note.quota and note.kind in (NotificationKind.WARNING, NotificationKind.BLOCKED,
                                        NotificationKind.TEAM_BLOCKED, NotificationKind.UNBLOCKED):
            add("quota", fields["quota_name"])
        if note.kind in (NotificationKind.WARNING, NotificationKind.BLOCKED, NotificationKind.TEAM_BLOCKED):
            add("usage", fields["usage"] if note.usage is not None else None)
            add("limit", fields["limit"] if note.limit is not None else None)
        if note.kind in (NotificationKind.BLOCKED, NotificationKind.TEAM_BLOCKED, NotificationKind.ADMIN_BLOCKED):
            add("returns", fields["returns"] or t("facts.returns_admin"))
        if note.kind in (NotificationKind.ADMIN_BLOCKED, NotificationKind.ADMIN_UNBLOCKED, NotificationKind.ALERT):
            add("by", note.actor)
        if note.kind in (NotificationKind.ADMIN_BLOCKED, NotificationKind.ADMIN_UNBLOCKED):
            add("reason", note.reason)
        if note.kind is NotificationKind.ADMIN_UNBLOCKED:
            add("protected_until", fields["protected_until"])
        return facts


@dataclass(frozen=True)
class _Row:
    cells: Sequence[Any]


def _summary(payload: Mapping[str, Any], lang: str, tz: ZoneInfo) -> dict[str, Any]:
    """The summary's tables as rows of cells (the same for HTML and text)."""
    def limit(used: int, cap: int | None) -> str:
        return f"{used} / {cap}" if cap else str(used)

    def until(value: str | None) -> str:
        return format_time(datetime.fromisoformat(value), lang, tz) if value else _lookup(lang, "facts.returns_admin")

    return {
        "teams": [_Row((t["team"], limit(t["requests"], t.get("daily_limit")),
                        limit(t["monthly_requests"], t.get("monthly_limit")))) for t in payload.get("teams", [])],
        "top": [_Row((u.get("name") or u["principal"], u.get("team") or "", u["requests"]))
                for u in payload.get("top", [])],
        "blocked": [_Row((b.get("name") or b["principal"], b.get("reason") or "", until(b.get("until"))))
                    for b in payload.get("blocked", [])],
        "without_team": [_Row((u.get("name") or u["principal"], u.get("status") or "", u["requests"]))
                         for u in payload.get("without_team", [])],
        "dead": payload.get("dead", 0), "refusals": payload.get("refusals", 0),
        # Cost (issue 10); absent from summaries queued before it.
        "spend": format_usd(nanos_of(payload["spend_usd"])) if "spend_usd" in payload else None,
        "metered": payload.get("metered", 0),
        "unmetered": ", ".join(f"{u['region']}: {u['calls']}" for u in payload.get("unmetered", [])),
    }
