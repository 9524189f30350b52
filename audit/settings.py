"""What the audit commands read: the consumer's settings (a replay runs the consumer's processor core), and
nothing of their own yet."""

from __future__ import annotations

from dataclasses import dataclass

from consumer.settings import ConsumerSettings


@dataclass(frozen=True)
class AuditSettings(ConsumerSettings):
    pass
