"""The notification record: the contract between the enforcer, which queues one in the MySQL outbox
(`notifications`) in the same transaction as the action it reports, and the notifier, which delivers it.
Everything a message needs is in it, so the notifier never has to reconstruct the moment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bedrock_usage.quota import Quota, Scope

LANGUAGES = ("en", "es")  # the languages messages are written in (notifier/i18n/): a person's or the default


class NotificationKind(StrEnum):
    WARNING = "warning"
    BLOCKED = "blocked"
    TEAM_BLOCKED = "team_blocked"  # one per team decision, for the team's admins and the chat channels
    UNBLOCKED = "unblocked"  # at the period's reset (or the end of an admin's duration)
    ADMIN_BLOCKED = "admin_blocked"
    ADMIN_UNBLOCKED = "admin_unblocked"
    ALERT = "alert"  # for the admins: a refusal or a failure
    SUMMARY = "summary"  # the admins' daily summary (queued by the notifier itself)
    UNPRICED_MODEL = "unpriced_model"  # for the admins, once per model charged at the fallback price


class NotificationScope(StrEnum):
    """Whom a notification is about: a person, a team, or the admins (an alert, the summary)."""

    USER = "user"
    TEAM = "team"
    ADMINS = "admins"


@dataclass(frozen=True)
class Notification:
    """One row of `notifications` (usage and limit are the `usage_count` and `limit_count` columns)."""

    dedupe_key: str
    kind: NotificationKind
    scope: NotificationScope
    principal: str
    created_at: datetime
    display_name: str | None = None
    email: str | None = None
    team: str | None = None
    quota: Quota | None = None
    quota_scope: Scope | None = None  # whose quota it was: the person's or their team's
    period: str | None = None
    percent: int | None = None
    usage: int | None = None
    limit: int | None = None
    access_returns_at: datetime | None = None
    protected_until: datetime | None = None
    actor: str | None = None
    reason: str | None = None
    action_key: str | None = None
    shadow: bool = False
    payload: Mapping[str, Any] | None = None  # what else the message shows (an unpriced model and its fallback)
