"""The notifier's work: plan each new notification's deliveries, send what is due, queue the summary."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from bedrock_usage.ids import digest
from bedrock_usage.notifications import NotificationKind, NotificationScope
from bedrock_usage.usage import UsageReader
from notifier import summary
from notifier.channels import Sender
from notifier.metrics import NotifierMetrics
from notifier.outbox import Leased, Outbox
from notifier.recipients import Channel, routes
from notifier.render import Message, Renderer
from notifier.settings import NotifierSettings

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, settings: NotifierSettings, outbox: Outbox, senders: Mapping[Channel, Sender],
                 renderer: Renderer, metrics: NotifierMetrics, *, owner: str, clock: Callable[[], datetime]) -> None:
        self.settings, self.outbox, self._senders, self.renderer = settings, outbox, senders, renderer
        self.metrics, self._owner, self._clock = metrics, owner, clock

    @property
    def channels(self) -> list[Channel]:
        return list(self._senders)

    def plan(self) -> int:
        planned = 0
        for note, team_admins in self.outbox.unplanned():
            found = routes(note, self.settings, team_admins)
            if not found:
                self.metrics.unrouted.labels(note.kind).inc()
                log.warning("nobody to notify", extra={"kind": note.kind, "principal": note.principal})
            planned += self.outbox.plan(note, found, self._clock())
        return planned

    def message_for(self, delivery: Leased) -> Message:
        note = delivery.note
        personal = delivery.channel == Channel.EMAIL and (note.email or "").lower() == delivery.recipient.lower()
        # Admins get a copy of a person's message, in their own language, saying whose it is.
        copy = not personal and note.scope is NotificationScope.USER and note.kind is not NotificationKind.ALERT
        return self.renderer.render(note, None if personal else self.settings.notify_language, copy=copy)

    def deliver(self, limit: int = 20) -> int:
        """Send up to `limit` due deliveries, leasing each just before sending it: a lease never waits
        behind slow sends of others (which could let it expire and the message go out twice)."""
        done = 0
        for _ in range(limit):
            leased = self.outbox.lease(self._owner, self._clock(), 1)
            if not leased:
                break
            (delivery,) = leased
            kind, channel = delivery.note.kind, delivery.channel
            try:
                sender = self._senders.get(Channel(channel))
                if sender is None:
                    raise RuntimeError(f"channel {channel} is not configured")
                message_id = sender.send(self.message_for(delivery), delivery.recipient, delivery.key)
            except Exception as error:
                dead = self.outbox.failed(delivery, f"{type(error).__name__}: {error}", self._clock())
                self.metrics.failed.labels(kind, channel).inc()
                if dead:
                    self.metrics.dead.labels(kind, channel).inc()
                log.warning("delivery failed", extra={"delivery": delivery.delivery_id, "kind": kind,
                                                      "channel": channel, "dead": dead, "error": repr(error)})
                continue
            self.outbox.sent(delivery, message_id, self._clock())
            self.metrics.sent.labels(kind, channel).inc()
            done += 1
            log.info("delivered", extra={"delivery": delivery.delivery_id, "kind": kind, "channel": channel,
                                         "principal": delivery.note.principal})
        return done

    def queue_summary(self, reader: Callable[[], UsageReader]) -> bool:
        day = summary.summary_day(self._clock(), self.settings)
        if day is None:
            return False
        key = digest("summary", day.isoformat())
        if self.outbox.has(key):
            return False
        payload = summary.build(self.outbox.conn, reader(), day, self.settings)
        return self.outbox.enqueue_summary(day.isoformat(), payload, self._clock(), key)

    def observe(self) -> None:
        depth, oldest = self.outbox.depth(self._clock())
        self.metrics.outbox_depth.set(depth)
        self.metrics.oldest_pending.set(oldest)
