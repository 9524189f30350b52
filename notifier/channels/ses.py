"""Email through Amazon SES (SendEmail, both parts: plain text and HTML)."""

from __future__ import annotations

from typing import Any

from notifier.render import Message

IAM_PERMISSIONS = ({"Sid": "SendEmail", "Action": ["ses:SendEmail"], "Resource": ["<SES_IDENTITY_ARN>"]},)


class SesSender:
    def __init__(self, client: Any, sender: str) -> None:
        self._ses, self._sender = client, sender

    def send(self, message: Message, recipient: str, key: str) -> str:
        reply = self._ses.send_email(
            Source=self._sender,
            Destination={"ToAddresses": [recipient]},
            Message={
                "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": message.text, "Charset": "UTF-8"},
                         "Html": {"Data": message.html, "Charset": "UTF-8"}},
            },
        )
        return str(reply["MessageId"])
