"""Slack and Microsoft Teams incoming webhooks: one JSON POST each (a non-2xx answer raises)."""

from __future__ import annotations

import json
import urllib.request

from notifier.recipients import Channel
from notifier.render import TONES, Message

TIMEOUT_SECONDS = 10
_COLOURS = {"amber": "B25E00", "red": "B3261E", "green": "1E7B34", "neutral": "1F4E8C"}


def slack_payload(message: Message) -> dict[str, object]:
    return {"text": f"*{message.subject}*\n{message.text}"}


def teams_payload(message: Message) -> dict[str, object]:
    # The connector card format Teams incoming webhooks accept.
    return {"@type": "MessageCard", "@context": "https://schema.org/extensions", "summary": message.subject,
            "themeColor": _COLOURS[TONES[message.kind]], "title": message.subject,
            "text": message.text.replace("\n", "  \n")}


class WebhookSender:
    def __init__(self, url: str, flavour: Channel) -> None:
        """`flavour`: the chat channel this webhook posts to (its payload format); email and SNS are not webhooks."""
        if flavour not in (Channel.SLACK, Channel.TEAMS):
            raise ValueError(f"unknown webhook flavour {flavour.value!r}")
        self._url, self._flavour = url, flavour

    def send(self, message: Message, recipient: str, key: str) -> str:
        payload = slack_payload(message) if self._flavour is Channel.SLACK else teams_payload(message)
        request = urllib.request.Request(self._url, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as reply:
            reply.read()
            return f"{self._flavour.value}:{reply.status}"
