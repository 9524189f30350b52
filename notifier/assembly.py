"""Build the notifier's parts from settings (the `notifier run` loop, bedrockctl's notify commands, tests)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import REGISTRY, CollectorRegistry

from bedrock_usage import aws
from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.redis_state import RedisClient, redis_client
from bedrock_usage.usage import UsageReader
from notifier.channels import Sender
from notifier.channels.ses import SesSender
from notifier.channels.smtp import SmtpSender
from notifier.channels.sns import SnsSender
from notifier.channels.webhook import WebhookSender
from notifier.metrics import NotifierMetrics
from notifier.outbox import Outbox
from notifier.recipients import Channel
from notifier.render import Renderer
from notifier.service import Notifier
from notifier.settings import EmailBackend, NotifierSettings


def senders(settings: NotifierSettings) -> dict[Channel, Sender]:
    made: dict[Channel, Sender] = {}
    if settings.email_backend is EmailBackend.SES:
        made[Channel.EMAIL] = SesSender(aws.client(settings, "ses"), settings.email_from)
    elif settings.email_backend is EmailBackend.SMTP:
        made[Channel.EMAIL] = SmtpSender(
            settings.smtp_host, settings.smtp_port, sender=settings.email_from, username=settings.smtp_username,
            password=settings.smtp_password, starttls=settings.smtp_starttls, ca_file=settings.smtp_ca_file)
    if settings.alert_sns_topic_arn:
        made[Channel.SNS] = SnsSender(aws.client(settings, "sns"))
    if settings.slack_webhook_url:
        made[Channel.SLACK] = WebhookSender(settings.slack_webhook_url, Channel.SLACK)
    if settings.teams_webhook_url:
        made[Channel.TEAMS] = WebhookSender(settings.teams_webhook_url, Channel.TEAMS)
    return made


def renderer(settings: NotifierSettings) -> Renderer:
    return Renderer(settings.notify_language, settings.notify_timezone, settings.quota_timezone)


@dataclass
class NotifierParts:
    """The notifier and what it runs on, built once from settings; close() releases the connections."""

    notifier: Notifier
    outbox: Outbox
    session: MySQLSession
    redis: RedisClient
    metrics: NotifierMetrics
    usage_reader: Callable[[], UsageReader]

    def close(self) -> None:
        self.session.close()
        self.redis.close()


def assemble_notifier(settings: NotifierSettings, *, registry: CollectorRegistry = REGISTRY,
                      clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                      channels: dict[Channel, Sender] | None = None) -> NotifierParts:
    session = MySQLSession(settings.mysql)
    client = redis_client(settings)
    metrics = NotifierMetrics(registry)
    outbox = Outbox(session, max_attempts=settings.notify_max_attempts, lease_seconds=settings.notify_lease_seconds)
    notifier = Notifier(settings, outbox, senders(settings) if channels is None else channels, renderer(settings),
                        metrics, owner=f"{socket.gethostname()}-{os.getpid()}", clock=clock)

    def usage_reader() -> UsageReader:
        return UsageReader.for_settings(session.conn, client, settings, clock())

    return NotifierParts(notifier, outbox, session, client, metrics, usage_reader)
