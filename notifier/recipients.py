"""Who hears of what, on which channel (pure).

- the person: their own warnings, blocks, restores and admin actions, by email (quota file `email`, or
  IAM tag `Email`);
- their team's admins (quota file `teams.<team>.admins`): the team's warnings and blocks, and each
  block, admin block and admin unblock of a member — a copy, its subject prefixed with the person's
  name — except the members' blocks for the team's own quota: the team's block says it once;
- the global admins (`ADMIN_EMAILS`): alerts, models without a price, the daily summary;
- the SNS topic (`ALERT_SNS_TOPIC_ARN`): alerts;
- Slack and Teams webhooks: alerts, models without a price, blocks, admin actions and the summary (an
  admins' channel: no warnings, no routine restores; a team over its quota is one message, not one per
  member).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from bedrock_usage.notifications import NotificationKind, NotificationScope
from bedrock_usage.quota import Scope
from notifier.render import Note
from notifier.settings import EmailBackend, NotifierSettings


class Channel(StrEnum):
    EMAIL = "email"
    SNS = "sns"
    SLACK = "slack"
    TEAMS = "teams"


class Audience(StrEnum):
    """Whom a delivery is for, which decides how the message is worded for them."""

    PERSON = "person"
    TEAM_ADMIN = "team_admin"
    ADMIN = "admin"


@dataclass(frozen=True, order=True)
class Route:
    channel: Channel
    recipient: str  # an address, the topic ARN, or the webhook's name (its URL stays in the settings)
    audience: Audience


PERSONAL = frozenset({NotificationKind.WARNING, NotificationKind.BLOCKED, NotificationKind.UNBLOCKED,
                      NotificationKind.ADMIN_BLOCKED, NotificationKind.ADMIN_UNBLOCKED})
TEAM_ADMINS = frozenset({NotificationKind.WARNING, NotificationKind.BLOCKED, NotificationKind.TEAM_BLOCKED,
                         NotificationKind.ADMIN_BLOCKED, NotificationKind.ADMIN_UNBLOCKED})
ADMINS = frozenset({NotificationKind.ALERT, NotificationKind.SUMMARY, NotificationKind.UNPRICED_MODEL})
CHAT = frozenset({NotificationKind.ALERT, NotificationKind.BLOCKED, NotificationKind.TEAM_BLOCKED,
                  NotificationKind.ADMIN_BLOCKED, NotificationKind.ADMIN_UNBLOCKED, NotificationKind.SUMMARY,
                  NotificationKind.UNPRICED_MODEL})


def routes(note: Note, settings: NotifierSettings, team_admins: Sequence[str]) -> list[Route]:
    found: dict[tuple[Channel, str], Route] = {}

    def add(channel: Channel, recipient: str, audience: Audience) -> None:
        found.setdefault((channel, recipient.strip().lower() if channel is Channel.EMAIL else recipient),
                         Route(channel, recipient.strip(), audience))

    # A member blocked for their team's quota: the team's own message (team_blocked) tells the admins and
    # the channels, once for the whole team.
    for_the_team = note.kind is NotificationKind.BLOCKED and note.quota_scope is Scope.TEAM
    if settings.email_backend is not EmailBackend.NONE:
        if note.kind in PERSONAL and note.scope is NotificationScope.USER and note.email:
            add(Channel.EMAIL, note.email, Audience.PERSON)
        # A member's own warnings are theirs; the team's admins hear of the team's, and of blocks.
        if (note.kind in TEAM_ADMINS and (note.kind is not NotificationKind.WARNING
                                          or note.scope is NotificationScope.TEAM) and not for_the_team):
            for address in team_admins:
                add(Channel.EMAIL, address, Audience.TEAM_ADMIN)
        if note.kind in ADMINS:
            for address in settings.admin_emails:
                add(Channel.EMAIL, address, Audience.ADMIN)
    if note.kind is NotificationKind.ALERT and settings.alert_sns_topic_arn:
        add(Channel.SNS, settings.alert_sns_topic_arn, Audience.ADMIN)
    if note.kind in CHAT and not for_the_team:
        if settings.slack_webhook_url:
            add(Channel.SLACK, "slack", Audience.ADMIN)
        if settings.teams_webhook_url:
            add(Channel.TEAMS, "teams", Audience.ADMIN)
    return sorted(found.values())
