"""The enforcer's own settings: the mode, who is never denied, the deny policies, the breaker, metrics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from bedrock_usage.config import SettingsError, Source, Spec, choice, integer, listed
from bedrock_usage.settings import SharedSettings


class EnforcementMode(StrEnum):
    ENFORCE = "enforce"  # deny over-quota people in IAM
    SHADOW = "shadow"  # decide, record and notify (marked shadow), but change no IAM policy


@dataclass(frozen=True)
class EnforcerSettings(SharedSettings):
    OWN_SPECS: ClassVar[tuple[Spec, ...]] = (
        Spec("ENFORCEMENT_MODE", "enforce", "enforce: deny over-quota people in IAM; shadow: decide, record and"
             " notify (marked shadow) but change no IAM policy."),
        Spec("PROTECTED_PRINCIPALS", "", "Comma-separated quota-key globs never denied (break-glass admins),"
             " e.g. `arn:aws:iam::*:user/breakglass-*`."),
        Spec("DENY_POLICY_NAME", "BedrockUsageControlDeny", "Name of the product's deny policy (path"
             " /bedrock-usage-control/); the session policies are <name>Sessions1..N."),
        Spec("SESSION_DENY_POLICIES", "3", "Session deny policies (each holds ~100-200 sessions; attach all to"
             " shared roles and permission sets)."),
        Spec("MAX_QUOTA_DENIES_PER_HOUR", "100", "Circuit breaker: past this many people denied for quotas in an"
             " hour, further quota denies are refused and alerted (0: no limit). Admin blocks are not limited."),
        Spec("DECISION_CLAIM_IDLE_SECONDS", "60", "How long a decision a dead enforcer took but never finished"
             " waits before another enforcer (or its restarted task) claims it. Longer than the slowest"
             " decision (a team's, IAM throttled), or a live enforcer's decision is taken over while it works."),
        Spec("IAM_LOCK_TIMEOUT_SECONDS", "60", "The lock serialising writes of the session deny policies: how"
             " long a holder may keep it (it expires if the holder dies) and a writer waits for it."),
        Spec("ENFORCER_IAM_CONCURRENCY", "8", "How many people of a team decision are denied at once (IAM calls"
             " in flight; each with its own MySQL connection). 1: one after another."),
        Spec("RECONCILE_INTERVAL_SECONDS", "300", "How often the enforcer compares desired and actual IAM state."),
        Spec("UNMETERED_AFTER_SECONDS", "900", "A successful call whose invocation log has not come this long"
             " after it is unmetered (no cost known): counted in a metric, alerted, and listed in the daily"
             " summary."),
        Spec("ENFORCER_METRICS_PORT", "9102", "Port of the enforcer's Prometheus /metrics and /health endpoint."),
    )

    enforcement_mode: EnforcementMode
    protected_principals: tuple[str, ...]
    deny_policy_name: str
    session_deny_policies: int
    max_quota_denies_per_hour: int
    decision_claim_idle_seconds: int
    iam_lock_timeout_seconds: int
    enforcer_iam_concurrency: int
    reconcile_interval_seconds: int
    unmetered_after_seconds: int
    enforcer_metrics_port: int

    @property
    def shadow(self) -> bool:
        return self.enforcement_mode is EnforcementMode.SHADOW

    @classmethod
    def read(cls, source: Source) -> dict[str, Any]:
        get = source.get
        policy_name = get("DENY_POLICY_NAME").strip()
        if not re.fullmatch(r"[\w+=,.@-]{1,100}", policy_name):
            raise SettingsError(f"DENY_POLICY_NAME must be a valid IAM policy name, got {policy_name!r}")
        session_policies = integer("SESSION_DENY_POLICIES", get("SESSION_DENY_POLICIES"), 1)
        if session_policies > 8:
            raise SettingsError("SESSION_DENY_POLICIES must be at most 8 (a role holds 10 managed policies)")
        return {
            **super().read(source),
            "enforcement_mode": EnforcementMode(choice("ENFORCEMENT_MODE", get("ENFORCEMENT_MODE"),
                                                      tuple(EnforcementMode))),
            "protected_principals": listed(get("PROTECTED_PRINCIPALS")),
            "deny_policy_name": policy_name,
            "session_deny_policies": session_policies,
            "max_quota_denies_per_hour": integer("MAX_QUOTA_DENIES_PER_HOUR", get("MAX_QUOTA_DENIES_PER_HOUR"), 0),
            "decision_claim_idle_seconds": integer("DECISION_CLAIM_IDLE_SECONDS",
                                                   get("DECISION_CLAIM_IDLE_SECONDS"), 1),
            "iam_lock_timeout_seconds": integer("IAM_LOCK_TIMEOUT_SECONDS", get("IAM_LOCK_TIMEOUT_SECONDS"), 1),
            "enforcer_iam_concurrency": integer("ENFORCER_IAM_CONCURRENCY", get("ENFORCER_IAM_CONCURRENCY"), 1),
            "reconcile_interval_seconds": integer("RECONCILE_INTERVAL_SECONDS", get("RECONCILE_INTERVAL_SECONDS"), 5),
            "unmetered_after_seconds": integer("UNMETERED_AFTER_SECONDS", get("UNMETERED_AFTER_SECONDS"), 60),
            "enforcer_metrics_port": integer("ENFORCER_METRICS_PORT", get("ENFORCER_METRICS_PORT"), 0),
        }
