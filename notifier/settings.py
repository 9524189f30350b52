"""The notifier's own settings: languages and time zones of messages, the channels, retries, the summary."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from bedrock_usage.config import SettingsError, Source, Spec, boolean, choice, integer, listed, zone
from bedrock_usage.notifications import LANGUAGES
from bedrock_usage.settings import SharedSettings


def _optional_hour(raw: str) -> int | None:
    if raw.strip() == "":
        return None
    hour = integer("DAILY_SUMMARY_HOUR", raw)
    if hour > 23:
        raise SettingsError(f"DAILY_SUMMARY_HOUR must be 0-23 (or empty), got {hour}")
    return hour


class EmailBackend(StrEnum):
    SES = "ses"
    SMTP = "smtp"
    NONE = "none"  # no email; the other channels still work


@dataclass(frozen=True)
class NotifierSettings(SharedSettings):
    OWN_SPECS: ClassVar[tuple[Spec, ...]] = (
        Spec("NOTIFY_LANGUAGE", "en", "Language of messages for people without their own (quota file `language`,"
             " IAM tag `Language`): en or es."),
        Spec("NOTIFY_TIMEZONE", "", "Time zone of times in messages for people without their own (quota file"
             " `timezone`, IAM tag `TimeZone`); empty: QUOTA_TIMEZONE."),
        Spec("EMAIL_BACKEND", "ses", "How email is sent: ses, smtp, or none (no email; other channels still work)."),
        Spec("EMAIL_FROM", "bedrock-usage@example.com", "Sender address (an SES-verified identity with ses)."),
        Spec("SMTP_HOST", "", "SMTP server (EMAIL_BACKEND=smtp), e.g. smtp.gmail.com."),
        Spec("SMTP_PORT", "587", "SMTP port."),
        Spec("SMTP_USERNAME", "", "SMTP login (empty: no login)."),
        Spec("SMTP_PASSWORD", "", "SMTP password (from Secrets Manager in AWS)."),
        Spec("SMTP_STARTTLS", "true", "Upgrade the SMTP connection with STARTTLS before logging in."),
        Spec("SMTP_CA_FILE", "", "CA bundle to verify the SMTP server's certificate (empty: the system's)."),
        Spec("ADMIN_EMAILS", "", "Comma-separated admins who get alerts, blocks and the daily summary."),
        Spec("ALERT_SNS_TOPIC_ARN", "", "SNS topic for admin alerts (refusals, failures); empty: none."),
        Spec("SLACK_WEBHOOK_URL", "", "Slack incoming webhook for alerts, blocks and the summary; empty: none."),
        Spec("TEAMS_WEBHOOK_URL", "", "Microsoft Teams incoming webhook for the same; empty: none."),
        Spec("NOTIFY_MAX_ATTEMPTS", "8", "Tries before a delivery is dead (retried with capped exponential"
             " backoff)."),
        Spec("NOTIFY_LEASE_SECONDS", "60", "How long a notifier task reserves a delivery it is sending; one that"
             " dies mid-send leaves its message to be sent again after this."),
        Spec("DAILY_SUMMARY_HOUR", "8", "Local hour (NOTIFY_TIMEZONE) of the admins' daily summary; empty: none."),
        Spec("NOTIFIER_METRICS_PORT", "9103", "Port of the notifier's Prometheus /metrics and /health endpoint."),
    )

    notify_language: str
    notify_timezone: ZoneInfo
    email_backend: EmailBackend
    email_from: str
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: str
    smtp_starttls: bool
    smtp_ca_file: str | None
    admin_emails: tuple[str, ...]
    alert_sns_topic_arn: str | None
    slack_webhook_url: str | None
    teams_webhook_url: str | None
    notify_max_attempts: int
    notify_lease_seconds: int
    daily_summary_hour: int | None
    notifier_metrics_port: int

    @classmethod
    def read(cls, source: Source) -> dict[str, Any]:
        get = source.get
        language = get("NOTIFY_LANGUAGE").strip().lower()
        if language not in LANGUAGES:
            raise SettingsError(f"NOTIFY_LANGUAGE must be one of {', '.join(LANGUAGES)}, got {language!r}")
        backend = EmailBackend(choice("EMAIL_BACKEND", get("EMAIL_BACKEND"), tuple(EmailBackend)))
        if backend is EmailBackend.SMTP and not get("SMTP_HOST").strip():
            raise SettingsError("SMTP_HOST is needed with EMAIL_BACKEND=smtp")
        return {
            **super().read(source),
            "notify_language": language,
            "notify_timezone": zone(get("NOTIFY_TIMEZONE") or get("QUOTA_TIMEZONE"), "NOTIFY_TIMEZONE"),
            "email_backend": backend,
            "email_from": get("EMAIL_FROM").strip(),
            "smtp_host": get("SMTP_HOST").strip(),
            "smtp_port": integer("SMTP_PORT", get("SMTP_PORT"), 1),
            "smtp_username": get("SMTP_USERNAME"),
            "smtp_password": get("SMTP_PASSWORD"),
            "smtp_starttls": boolean("SMTP_STARTTLS", get("SMTP_STARTTLS")),
            "smtp_ca_file": get("SMTP_CA_FILE") or None,
            "admin_emails": listed(get("ADMIN_EMAILS")),
            "alert_sns_topic_arn": get("ALERT_SNS_TOPIC_ARN").strip() or None,
            "slack_webhook_url": get("SLACK_WEBHOOK_URL").strip() or None,
            "teams_webhook_url": get("TEAMS_WEBHOOK_URL").strip() or None,
            "notify_max_attempts": integer("NOTIFY_MAX_ATTEMPTS", get("NOTIFY_MAX_ATTEMPTS"), 1),
            "notify_lease_seconds": integer("NOTIFY_LEASE_SECONDS", get("NOTIFY_LEASE_SECONDS"), 1),
            "daily_summary_hour": _optional_hour(get("DAILY_SUMMARY_HOUR")),
            "notifier_metrics_port": integer("NOTIFIER_METRICS_PORT", get("NOTIFIER_METRICS_PORT"), 0),
        }
