"""Admin alerts to an SNS topic (which may fan out to email, SMS, a pager)."""

from __future__ import annotations

from typing import Any

from notifier.render import Message

IAM_PERMISSIONS = ({"Sid": "PublishAlerts", "Action": ["sns:Publish"], "Resource": ["<ALERT_SNS_TOPIC_ARN>"]},)
SUBJECT_MAX = 100  # SNS rejects longer subjects


class SnsSender:
    def __init__(self, client: Any) -> None:
        self._sns = client

    def send(self, message: Message, recipient: str, key: str) -> str:
        subject = message.subject if len(message.subject) <= SUBJECT_MAX else message.subject[:SUBJECT_MAX - 1] + "…"
        reply = self._sns.publish(TopicArn=recipient, Subject=subject, Message=message.text)
        return str(reply["MessageId"])
