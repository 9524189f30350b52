"""Application inference profiles: which base model a call made through one was billed for, and at which scope.

An invocation log's `modelId` may be an application-inference-profile ARN
(`arn:aws:bedrock:<region>:<account>:application-inference-profile/<id>`), which names no model.
`bedrock:GetInferenceProfile` answers with the profile's `models`: foundation-model ARNs, one per Region the
profile may route to. Their model ID is the base model the price table knows.

Scope (which rate AWS bills): a profile copied from a `global.` profile lists a Region-less model ARN
(`arn:aws:bedrock:::foundation-model/<id>`) beside the Regional ones, as the `global.` profiles themselves do;
that is `global`. Everything else (one Region, or a geographic profile's Regions) is `regional`: the rate of
the Region called. The profile's name and description are the owner's free text and are not read. When in
doubt it is `regional`, the dearer rate: never under-charge.

Answers are shared by every process through MySQL (`inference_profiles`) and kept in memory too. A resolved
profile is reused for `max_age_seconds` (a profile's model cannot be changed after it is created, so this only
bounds how long a deleted and re-created ARN could be stale). Failures:
- AccessDenied, ResourceNotFound, Validation (or a profile whose models are not one foundation model): a
  final answer, *unresolved*, recorded with its error; the caller prices the call at the fallback. It is
  asked again after `failure_max_age_seconds`, so a fixed policy or a re-created profile is picked up.
- Throttling, server errors, unreachable endpoints, any other error: `ProfileLookupUnavailable`, nothing
  recorded; the caller retries (the consumer does not checkpoint past the record).

The MySQL session must be this object's own: it commits (and rolls back its reads) on it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pymysql.connections import Connection

from bedrock_usage import aws
from bedrock_usage.db import from_db, to_db
from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.pricing.rates import PriceScope
from bedrock_usage.settings import SharedSettings

log = logging.getLogger(__name__)

# What resolving calls, declared beside it (infra/ grants exactly this: tests/unit/test_infra.py). The
# placeholder is the stack's `arn:${AWS::Partition}:bedrock:*:${AWS::AccountId}:application-inference-profile/*`.
IAM_PERMISSIONS: tuple[dict[str, Any], ...] = (
    {"Sid": "ResolveApplicationInferenceProfiles", "Action": ["bedrock:GetInferenceProfile"],
     "Resource": ["<APPLICATION_INFERENCE_PROFILES_ARN>"]},
)

PROFILE_ARN = re.compile(
    r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):application-inference-profile/[A-Za-z0-9]+$")
_MODEL_ARN = re.compile(r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]*):[0-9]{0,12}:foundation-model/(?P<model>.+)$")
FINAL_ERRORS = frozenset({"AccessDeniedException", "AccessDenied", "ResourceNotFoundException",
                          "ValidationException"})
ERROR_CHARS = 255  # inference_profiles.error


@dataclass(frozen=True, slots=True)
class Profile:
    """What is known of one profile. `model` None: unresolved (price the call at the fallback), `error` says why."""

    arn: str
    model: str | None
    scope: PriceScope
    error: str | None
    resolved_at: datetime

    @property
    def resolved(self) -> bool:
        return self.model is not None


class ProfileLookupUnavailable(Exception):
    """GetInferenceProfile could not answer now (throttled, unreachable): retry later, record nothing."""

    def __init__(self, arns: list[str], detail: str) -> None:
        super().__init__(f"inference profiles unavailable ({', '.join(arns)}): {detail}")
        self.arns = arns


class Sessions(Protocol):
    """A lazily connected MySQL connection (bedrock_usage.mysql_session.MySQLSession)."""

    @property
    def conn(self) -> Connection: ...

    def close(self) -> None: ...


def profile_from_response(arn: str, response: dict[str, Any], now: datetime) -> Profile:
    """A GetInferenceProfile answer -> the profile's base model and scope (pure)."""
    models: set[str] = set()
    global_ = False
    for entry in response.get("models") or []:
        match = _MODEL_ARN.match(str(entry.get("modelArn") or ""))
        if match is None:
            return _unresolved(arn, f"not a foundation model: {entry.get('modelArn')}", now)
        models.add(match["model"])
        global_ = global_ or not match["region"]
    if len(models) != 1:
        detail = ", ".join(sorted(models)) or "none"
        return _unresolved(arn, f"profile does not name one foundation model: {detail}", now)
    return Profile(arn, models.pop(), PriceScope.GLOBAL if global_ else PriceScope.REGIONAL, None, now)


def _unresolved(arn: str, error: str, now: datetime) -> Profile:
    return Profile(arn, None, PriceScope.REGIONAL, error[:ERROR_CHARS], now)


class InferenceProfiles:
    def __init__(
        self,
        mysql: Sessions,
        bedrock: Callable[[str], Any],
        *,
        max_age_seconds: int,
        failure_max_age_seconds: int = 600,
        give_up_after_seconds: int = 300,
        workers: int = 4,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`bedrock(region)` gives a "bedrock" (control plane) client for the profile's Region."""
        self._mysql = mysql
        self._bedrock = bedrock
        self._max_age = timedelta(seconds=max_age_seconds)
        self._failure_max_age = timedelta(seconds=failure_max_age_seconds)
        self._workers = workers
        self._clock = clock
        self._known: dict[str, Profile] = {}
        self._failing_since: dict[str, datetime] = {}  # transient failures, first seen
        self._give_up = timedelta(seconds=give_up_after_seconds)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: SharedSettings, *, max_age_seconds: int) -> InferenceProfiles:
        """With a MySQL session of its own and a bedrock client per Region from the settings."""
        return cls(MySQLSession(settings.mysql), lambda region: aws.client(settings, "bedrock", region=region),
                   max_age_seconds=max_age_seconds)

    def close(self) -> None:
        self._mysql.close()

    def resolve(self, arn: str) -> Profile:
        return self.resolve_many([arn])[arn]

    def resolve_many(self, arns: Iterable[str]) -> dict[str, Profile]:
        """Each ARN's profile: from memory, else MySQL, else one GetInferenceProfile per ARN (in a small
        thread pool). Final answers are recorded before a `ProfileLookupUnavailable` for the rest is raised."""
        now = self._clock()
        answers: dict[str, Profile] = {}
        wanted: list[str] = []
        for arn in dict.fromkeys(arns):
            if not PROFILE_ARN.match(arn) or len(arn) > 512:
                answers[arn] = _unresolved(arn, "not an application-inference-profile ARN", now)
                continue
            with self._lock:
                known = self._known.get(arn)
            if known is not None and self._fresh(known, now):
                answers[arn] = known
            else:
                wanted.append(arn)
        if wanted:
            stored = {arn: p for arn, p in self._read(wanted).items() if self._fresh(p, now)}
            self._remember(stored.values())
            answers.update(stored)
            asked = [arn for arn in wanted if arn not in stored]
            if asked:
                answers.update(self._ask(asked, now))
        return answers

    def _fresh(self, profile: Profile, now: datetime) -> bool:
        return now - profile.resolved_at < (self._max_age if profile.resolved else self._failure_max_age)

    def _remember(self, profiles: Iterable[Profile]) -> None:
        with self._lock:
            self._known.update((p.arn, p) for p in profiles)

    def _ask(self, arns: list[str], now: datetime) -> dict[str, Profile]:
        with ThreadPoolExecutor(max_workers=min(self._workers, len(arns))) as pool:
            outcomes = list(pool.map(lambda arn: self._get(arn, now), arns))
        final = [o for o in outcomes if isinstance(o, Profile)]
        self._write(final)
        self._remember(final)
        for profile in final:
            if not profile.resolved:
                log.warning("inference profile unresolved", extra={"arn": profile.arn, "error": profile.error})
        failed = [(arn, o) for arn, o in zip(arns, outcomes, strict=True) if isinstance(o, str)]
        with self._lock:
            for profile in final:
                self._failing_since.pop(profile.arn, None)
            for arn, _ in failed:
                self._failing_since.setdefault(arn, now)
            # Unavailable for too long (an endpoint that never answers, an unknown error): the calls are
            # charged at the fallback rather than the whole shard waiting — asked again later as a failure.
            given_up = [(arn, detail) for arn, detail in failed if now - self._failing_since[arn] >= self._give_up]
        if given_up:
            lasting = [_unresolved(arn, f"unavailable for {self._give_up}: {detail}", now) for arn, detail in given_up]
            self._write(lasting)
            self._remember(lasting)
            final += lasting
            failed = [(arn, detail) for arn, detail in failed if arn not in dict(given_up)]
        if failed:
            raise ProfileLookupUnavailable([arn for arn, _ in failed], failed[0][1])
        return {p.arn: p for p in final}

    def _get(self, arn: str, now: datetime) -> Profile | str:
        """The profile, or a transient error's description."""
        match = PROFILE_ARN.match(arn)
        assert match is not None
        try:
            response = self._client(match["region"]).get_inference_profile(inferenceProfileIdentifier=arn)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code") or "ClientError")
            if code in FINAL_ERRORS:
                message = str(error.response.get("Error", {}).get("Message") or "")
                return _unresolved(arn, f"{code}: {message}".rstrip(": "), now)
            return f"{code}: {error}"
        except BotoCoreError as error:  # unreachable endpoint, timeouts, no credentials
            return f"{type(error).__name__}: {error}"
        return profile_from_response(arn, response, now)

    def _client(self, region: str) -> Any:
        with self._lock:
            if region not in self._clients:
                self._clients[region] = self._bedrock(region)
            return self._clients[region]

    def _read(self, arns: list[str]) -> dict[str, Profile]:
        conn = self._mysql.conn
        with conn.cursor() as cur:
            cur.execute("SELECT arn, model, scope, error, resolved_at FROM inference_profiles WHERE arn IN %s",
                        (arns,))
            rows = cur.fetchall()
        conn.rollback()  # end the read's snapshot: the next read sees other processes' answers
        found = {}
        for arn, model, scope, error, resolved_at in rows:
            at = from_db(resolved_at)
            if at is None:
                continue
            found[arn] = Profile(arn, model, PriceScope(scope) if model and scope else PriceScope.REGIONAL,
                                 error, at)
        return found

    def _write(self, profiles: list[Profile]) -> None:
        if not profiles:
            return
        conn = self._mysql.conn
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO inference_profiles (arn, model, scope, error, resolved_at) VALUES (%s, %s, %s, %s, %s)"
                " ON DUPLICATE KEY UPDATE model = VALUES(model), scope = VALUES(scope), error = VALUES(error),"
                " resolved_at = VALUES(resolved_at)",
                [(p.arn, p.model, p.scope.value if p.resolved else None, p.error, to_db(p.resolved_at))
                 for p in profiles])
        conn.commit()
