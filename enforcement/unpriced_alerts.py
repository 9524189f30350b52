"""Models without a price: one admin alert per model, ever (issue 10, point 3).

The consumer charges a model the price table does not know at the fallback price (PRICE_FALLBACK) and
records it in `unpriced_models`. The enforcer's periodic pass turns each row not yet notified into one
`unpriced_model` notification in the outbox, in the same transaction that sets `notified_at`: the
notifier delivers it like any admin alert (email to ADMIN_EMAILS, Slack, Teams), in both languages.

Exactly once, with any number of enforcers: the claim is an UPDATE … WHERE notified_at IS NULL, a locking
read, so a second enforcer waits for the first one's commit and then changes nothing; the notification's
dedupe key (the model) would refuse a second one anyway.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pymysql.connections import Connection

from bedrock_usage.db import to_db
from bedrock_usage.ids import digest
from bedrock_usage.notifications import Notification, NotificationKind, NotificationScope
from enforcement import store
from enforcement.model import ActorKind

log = logging.getLogger(__name__)

BATCH = 100  # models per pass: a first deployment may meet a few dozen at once


def dedupe_key(model: str) -> str:
    return digest(NotificationKind.UNPRICED_MODEL, model)


def alert_unpriced(conn: Connection, now: datetime) -> list[str]:
    """Queue one admin notification per unpriced model not yet notified; the models alerted."""
    with conn.cursor() as cur:
        cur.execute("SELECT model FROM unpriced_models WHERE notified_at IS NULL ORDER BY first_seen, model"
                    " LIMIT %s", (BATCH,))
        candidates = [str(r[0]) for r in cur.fetchall()]
    conn.commit()
    alerted: list[str] = []
    for model in candidates:
        try:
            with conn.cursor() as cur:
                if not cur.execute("UPDATE unpriced_models SET notified_at = %s WHERE model = %s"
                                   " AND notified_at IS NULL", (to_db(now), model)):
                    conn.rollback()
                    continue  # another enforcer claimed it first
                cur.execute("SELECT fallback_model, first_seen, calls FROM unpriced_models WHERE model = %s", (model,))
                fallback, first_seen, calls = cur.fetchone() or (None, None, 0)
            store.enqueue(conn, Notification(
                dedupe_key(model), NotificationKind.UNPRICED_MODEL, NotificationScope.ADMINS, "admins", now,
                actor=ActorKind.SYSTEM,
                reason=f"model {model} has no price; its calls are charged as {fallback or 'the fallback'}"[:512],
                payload={"model": model, "fallback_model": fallback, "first_seen": first_seen, "calls": int(calls)}))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        alerted.append(model)
        log.warning("model without a price: admins alerted", extra={"model": model, "fallback": fallback})
    return alerted
