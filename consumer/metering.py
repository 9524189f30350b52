"""Invocation logs → what each call costs, on the consumer's hot path.

The price table lives in MySQL (`bedrockctl prices import|sync`); each consumer process holds it in memory
(bedrock_usage/pricing/book.py) and re-reads it when it changed, checked every `refresh_seconds`. Model IDs
of every form are parsed once per distinct ID; application inference profiles are resolved with
bedrock:GetInferenceProfile (bedrock_usage/pricing/profiles.py), cached. A model with no price is charged at
the fallback (never free) and reported so its price can be added.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.pricing.book import NoPrices, PriceBook
from bedrock_usage.pricing.model_ids import ModelRef, parse_model_id
from bedrock_usage.pricing.profiles import InferenceProfiles, ProfileLookupUnavailable
from bedrock_usage.pricing.rates import Charge, PriceStatus
from consumer.events import InvocationLog
from consumer.role_paths import RoleLookupUnavailable
from consumer.rows import Unpriced

log = logging.getLogger(__name__)

_MODEL_CACHE = 10_000
# Retried like an outage, nothing checkpointed: GetInferenceProfile or GetRole throttled or unreachable,
# or a price table emptied by hand (a call is never charged nothing; `bedrockctl prices import` ends it).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ProfileLookupUnavailable, RoleLookupUnavailable, NoPrices)


@dataclass(frozen=True, slots=True)
class Metered:
    """The charges of a batch's logs, in order."""

    charges: list[Charge]

    def unpriced(self, logs: Sequence[InvocationLog], new: set[str]) -> list[Unpriced]:
        """The models charged at the fallback, counting only the logs charged for the first time (`new`
        request IDs): a replayed batch adds nothing."""
        seen: dict[str, list[datetime]] = {}
        fallbacks: dict[str, str | None] = {}
        for entry, charge in zip(logs, self.charges, strict=True):
            if charge.status is PriceStatus.FALLBACK and entry.request_id in new:
                seen.setdefault(entry.model_id, []).append(entry.timestamp.replace(tzinfo=None))
                fallbacks[entry.model_id] = charge.price_model
        return [Unpriced(model, fallbacks[model], len(times), min(times), max(times))
                for model, times in sorted(seen.items())]


class Metering:
    def __init__(
        self,
        session: MySQLSession,
        *,
        fallback: str,
        refresh_seconds: float,
        profiles: InferenceProfiles | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session  # the caller's thread (the people directory's session)
        self._fallback = fallback
        self._refresh_seconds = refresh_seconds
        self._profiles = profiles
        self._monotonic = monotonic
        self._book: PriceBook | None = None
        self._checked_at = float("-inf")
        self._models: dict[str, ModelRef] = {}

    def charge(self, logs: Sequence[InvocationLog]) -> Metered:
        """Price every log; a model without a price is charged at the fallback."""
        if not logs:
            return Metered([])
        book = self._current_book()
        models = self._model_refs({entry.model_id for entry in logs})
        try:
            return Metered([book.charge(models[e.model_id], e.region, e.tier, e.timestamp.date(), e.tokens)
                            for e in logs])
        except NoPrices:
            self._checked_at = float("-inf")  # the retry reads the table again
            raise

    def _current_book(self) -> PriceBook:
        now = self._monotonic()
        if self._book is None or now - self._checked_at >= self._refresh_seconds:
            conn = self._session.conn
            conn.commit()  # a fresh snapshot (REPEATABLE READ): the table as it is now
            book = PriceBook.load(conn, self._fallback) if self._book is None else self._book.refreshed(conn)
            conn.commit()
            if book is not self._book:
                log.info("price table loaded", extra={"models": len(book.models)})
            self._book, self._checked_at = book, now
        return self._book

    def _model_refs(self, model_ids: set[str]) -> dict[str, ModelRef]:
        if len(self._models) > _MODEL_CACHE:
            self._models.clear()
        refs = {m: self._models.get(m) or self._models.setdefault(m, parse_model_id(m)) for m in model_ids}
        arns = sorted({ref.application_profile for ref in refs.values()
                       if ref.application_profile and ref.model is None})
        if arns and self._profiles is not None:
            # Resolved every batch (from the resolver's own cache, which knows how long an answer lasts):
            # a profile unresolved now may be resolved later. Unavailable (throttled…) raises: retried.
            profiles = self._profiles.resolve_many(arns)
            for model_id, ref in refs.items():
                profile = profiles.get(ref.application_profile or "")
                if profile is not None and profile.model is not None:
                    refs[model_id] = ref.resolved(profile.model, profile.scope)
        return refs
