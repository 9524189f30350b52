"""Block and Unblock from the console: checked first (a reason, a known person, a time in the future, a
person the viewer may act on), previewed as `bedrockctl block --dry-run` would, then done by the enforcer's
own state machine — the same IAM change, audit row (the signed-in person as the actor) and message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prometheus_client import CollectorRegistry

from bedrock_usage.periods import periods_of
from console.access import Viewer
from console.errors import BadInput
from console.settings import ConsoleSettings
from enforcement.assembly import EnforcerParts, assemble_enforcer
from enforcement.commands import parse_duration, unknown_key_refusal
from enforcement.model import Outcome, Result
from enforcement.targets import Refusal, target_of

MAX_REASON = 512


@dataclass(frozen=True)
class BlockRequest:
    principal: str
    reason: str
    until: datetime | None  # None: until an admin unblocks

    def describe(self, tz: ZoneInfo) -> str:
        end = "an admin unblocks" if self.until is None else self.until.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
        return f"block {self.principal} until {end}"


def checked_reason(text: str) -> str:
    reason = " ".join(text.split())
    if not reason:
        raise BadInput("a reason is required: it is kept in the audit trail and sent to the person")
    if len(reason) > MAX_REASON:
        raise BadInput(f"the reason is at most {MAX_REASON} characters")
    return reason


def block_request(settings: ConsoleSettings, principal: str, *, mode: str, duration: str = "", until: str = "",
                  viewer_zone: str = "", reason: str = "", now: datetime | None = None) -> BlockRequest:
    """The form's fields, checked: `mode` is `day` (until the next daily reset, the command's default),
    `for` (a duration like 4h), `until` (a local time in the viewer's zone) or `indefinite`."""
    now = now or datetime.now(UTC)
    if mode == "indefinite":
        end = None
    elif mode == "for":
        try:
            end = now + parse_duration(duration)
        except ValueError as error:
            raise BadInput(str(error).replace("--for takes", "a duration is")) from None
    elif mode == "until":
        try:
            zone = ZoneInfo(viewer_zone) if viewer_zone else settings.quota_timezone
        except (ZoneInfoNotFoundError, ValueError):
            raise BadInput(f"unknown time zone {viewer_zone!r}") from None
        try:
            local = datetime.fromisoformat(until)
        except ValueError:
            raise BadInput(f"expected a date and time, got {until!r}") from None
        end = (local if local.tzinfo else local.replace(tzinfo=zone)).astimezone(UTC)
        if end <= now:
            raise BadInput("that time is in the past")
    elif mode == "day":
        end = periods_of(now, settings.quota_timezone).day_ends_at
    else:
        raise BadInput("choose how long: until the daily reset, for a duration, until a time, or indefinitely")
    return BlockRequest(principal, checked_reason(reason), end)


def _parts(settings: ConsoleSettings) -> EnforcerParts:
    return assemble_enforcer(settings, registry=CollectorRegistry())


def preview_block(settings: ConsoleSettings, request: BlockRequest) -> list[str]:
    """What blocking would do, from what the enforcer reads before acting; nothing is written."""
    if refusal := unknown_key_refusal(settings, request.principal):
        raise BadInput(refusal.replace(" Use --force to block it anyway.", ""))
    parts = _parts(settings)
    try:
        enforcer = parts.enforcer
        person = parts.store.principal(request.principal)
        (current,) = parts.status.rows(request.principal)
    finally:
        parts.close()
    lines = []
    if current["blocked"]:
        end = "an admin unblocks" if current["indefinite"] else str(current["blocked_until"])
        lines.append(f"Already blocked until {end}: the later end stands.")
    target = target_of(person, enforcer.account_id, settings.session_roles) if person else None
    if enforcer.is_protected(request.principal):
        lines.append("Will NOT be denied: a protected principal (PROTECTED_PRINCIPALS) is never denied.")
    elif target is None or isinstance(target, Refusal):
        lines.append(f"Will NOT be denied in IAM: {target.detail if target else 'not a known principal'}.")
    elif settings.shadow:
        lines.append(f"Shadow mode: recorded, no IAM change (would deny {target}).")
    else:
        lines.append(f"IAM: deny {target}.")
    return lines


def block(settings: ConsoleSettings, viewer: Viewer, request: BlockRequest) -> Result:
    if refusal := unknown_key_refusal(settings, request.principal):
        raise BadInput(refusal.replace(" Use --force to block it anyway.", ""))
    parts = _parts(settings)
    try:
        return parts.enforcer.admin_block(request.principal, actor=viewer.email, reason=request.reason,
                                          until=request.until)
    finally:
        parts.close()


def unblock(settings: ConsoleSettings, viewer: Viewer, principal: str, *, reason: str, protect: bool) -> Result:
    reason = checked_reason(reason)
    parts = _parts(settings)
    try:
        return parts.enforcer.admin_unblock(principal, actor=viewer.email, reason=reason, protect=protect)
    finally:
        parts.close()


def refused(result: Result) -> bool:
    return result.outcome in (Outcome.REFUSED, Outcome.PROTECTED)
