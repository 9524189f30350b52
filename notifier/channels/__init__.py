"""Delivery channels: one small module each. A channel sends one rendered message to one recipient and
returns the provider's message ID; any failure raises (the outbox retries it)."""

from __future__ import annotations

from typing import Protocol

from notifier.render import Message


class Sender(Protocol):
    def send(self, message: Message, recipient: str, key: str) -> str:
        """`key` is the delivery's stable identity (the same on a retry): a Message-ID where the channel
        has one, so a receiver can drop a duplicate."""
        ...
