"""The console's settings. It blocks and unblocks through the enforcer's code, so it reads the enforcer's
settings too (the mode, protected principals, the deny policies): a block from the console is the block
`bedrockctl block` would make."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from bedrock_usage.config import SettingsError, Source, Spec, choice, integer, listed
from enforcement.settings import EnforcerSettings


class ConsoleAuth(StrEnum):
    ALB = "alb"  # behind an ALB rule with authenticate-oidc: every request's x-amzn-oidc-data is verified
    LOCAL = "local"  # a one-time login link printed at start-up (make demo, a laptop): never in AWS


_ALB_ARN = re.compile(r"^arn:aws[\w-]*:elasticloadbalancing:[\w-]+:\d{12}:loadbalancer/app/[\w-]+/[0-9a-f]+$")


@dataclass(frozen=True)
class ConsoleSettings(EnforcerSettings):
    OWN_SPECS: ClassVar[tuple[Spec, ...]] = (
        Spec("CONSOLE_HOST", "127.0.0.1", "Address the console listens on (0.0.0.0 in a container)."),
        Spec("CONSOLE_PORT", "8080", "Port of the console (its pages, /api/, /health and /metrics)."),
        Spec("CONSOLE_AUTH", "alb", "alb: trust only requests carrying a valid x-amzn-oidc-data token signed by"
             " CONSOLE_ALB_ARN; local: print a one-time login link at start-up (development only)."),
        Spec("CONSOLE_ALB_ARN", "", "The ALB whose signed tokens are accepted (the token's `signer`). Required"
             " when CONSOLE_AUTH=alb."),
        Spec("CONSOLE_ALB_KEYS_URL", "", "Where the ALB's public keys are served, by key ID (default:"
             " https://public-keys.auth.elb.<AWS_REGION>.amazonaws.com)."),
        Spec("CONSOLE_ADMINS", "", "Comma-separated emails of the console's admins: they see everything and may"
             " block and unblock anyone. Team admins (the quota file's `admins:`) see and act on their teams."),
        Spec("CONSOLE_ADMIN_GROUPS", "", "Comma-separated values of the identity provider's groups claim whose"
             " members are admins too (e.g. an Identity Center group ID)."),
        Spec("CONSOLE_GROUPS_CLAIM", "groups", "The claim of the ALB's user claims token that lists groups."),
        Spec("CONSOLE_SERVICE_URLS", "consumer=http://127.0.0.1:9101,enforcer=http://127.0.0.1:9102,"
             "notifier=http://127.0.0.1:9103", "name=base URL of each service's /health and /metrics, for the"
             " health page."),
        Spec("CONSOLE_SNAPSHOT_SECONDS", "10", "How often the console reads everyone's usage today from the counters"
             " (in the background: its pages show the latest read, at most this old)."),
        Spec("CONSOLE_ROLLUP_SECONDS", "15", "How often the console recomputes the hourly summaries the consumer"
             " marked (its cost and hourly pages read them; 0: never, `bedrockctl console rollup` does it)."),
        Spec("CONSOLE_LOCAL_ADMIN", "admin@localhost", "Who the local login link signs in as (an admin);"
             " CONSOLE_AUTH=local only."),
    )

    console_host: str
    console_port: int
    console_auth: ConsoleAuth
    console_alb_arn: str
    console_alb_keys_url: str
    console_admins: frozenset[str]
    console_admin_groups: frozenset[str]
    console_groups_claim: str
    console_service_urls: tuple[tuple[str, str], ...]
    console_snapshot_seconds: int
    console_rollup_seconds: int
    console_local_admin: str

    def check_serving(self) -> None:
        """What serving needs beyond well-formed values (checked by `console run`, not by every reader of
        these settings: the demo and the tests build every process's settings from one environment)."""
        if self.console_auth is ConsoleAuth.ALB and not self.console_alb_arn:
            raise SettingsError("CONSOLE_ALB_ARN is required when CONSOLE_AUTH=alb: the console accepts only"
                                " tokens its own load balancer signed")

    @classmethod
    def read(cls, source: Source) -> dict[str, Any]:
        get = source.get
        auth = ConsoleAuth(choice("CONSOLE_AUTH", get("CONSOLE_AUTH"), tuple(ConsoleAuth)))
        alb_arn = get("CONSOLE_ALB_ARN").strip()
        if alb_arn and not _ALB_ARN.match(alb_arn):
            raise SettingsError(f"CONSOLE_ALB_ARN must be an application load balancer's ARN, got {alb_arn!r}")
        urls = []
        for item in listed(get("CONSOLE_SERVICE_URLS")):
            name, sep, url = item.partition("=")
            if not sep or not name.strip() or not re.match(r"^https?://", url.strip()):
                raise SettingsError(f"CONSOLE_SERVICE_URLS takes name=http://host:port items, got {item!r}")
            urls.append((name.strip(), url.strip().rstrip("/")))
        region = source.get("AWS_REGION")
        return {
            **super().read(source),
            "console_host": get("CONSOLE_HOST").strip(),
            "console_port": integer("CONSOLE_PORT", get("CONSOLE_PORT"), 0),
            "console_auth": auth,
            "console_alb_arn": alb_arn,
            "console_alb_keys_url": (get("CONSOLE_ALB_KEYS_URL").strip().rstrip("/")
                                     or f"https://public-keys.auth.elb.{region}.amazonaws.com"),
            "console_admins": frozenset(e.lower() for e in listed(get("CONSOLE_ADMINS"))),
            "console_admin_groups": frozenset(listed(get("CONSOLE_ADMIN_GROUPS"))),
            "console_groups_claim": get("CONSOLE_GROUPS_CLAIM").strip() or "groups",
            "console_service_urls": tuple(urls),
            "console_snapshot_seconds": integer("CONSOLE_SNAPSHOT_SECONDS", get("CONSOLE_SNAPSHOT_SECONDS"), 1),
            "console_rollup_seconds": integer("CONSOLE_ROLLUP_SECONDS", get("CONSOLE_ROLLUP_SECONDS"), 0),
            "console_local_admin": get("CONSOLE_LOCAL_ADMIN").strip().lower(),
        }
