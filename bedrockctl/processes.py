"""The process packages the shell gathers: their commands, their settings, their IAM permissions.

A new process (the console, replay) is one line here: a package with `commands.register`, a settings
class extending `SharedSettings` and, if it runs as a service, `permissions.IAM_PERMISSIONS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import audit.commands
import console.commands
import console.permissions
import consumer.commands
import consumer.permissions
import enforcement.commands
import enforcement.permissions
import notifier.commands
import notifier.permissions
import producer_config.commands
import provisioning.commands
from audit.settings import AuditSettings
from bedrock_usage.commands import CommandPackage
from bedrock_usage.settings import SharedSettings
from console.settings import ConsoleSettings
from consumer.settings import ConsumerSettings
from enforcement.settings import EnforcerSettings
from notifier.settings import NotifierSettings
from producer_config.settings import ProducerSettings
from provisioning.settings import ProvisioningSettings

Statement = dict[str, Any]


@dataclass(frozen=True)
class Process:
    name: str  # as the README's settings table and the stack's task roles name it
    commands: CommandPackage  # its `commands` module
    settings: type[SharedSettings]
    iam_permissions: Sequence[Statement] = ()  # a service's task role; empty: run by an admin


PROCESSES = (
    Process("consumer", consumer.commands, ConsumerSettings, consumer.permissions.IAM_PERMISSIONS),
    Process("enforcer", enforcement.commands, EnforcerSettings, enforcement.permissions.IAM_PERMISSIONS),
    Process("notifier", notifier.commands, NotifierSettings, notifier.permissions.IAM_PERMISSIONS),
    Process("producer", producer_config.commands, ProducerSettings),
    Process("audit", audit.commands, AuditSettings),
    Process("console", console.commands, ConsoleSettings, console.permissions.IAM_PERMISSIONS),
    # Run by an admin: provisioning/permissions.py is for an admin's or a provisioning role, no service's.
    Process("provisioning", provisioning.commands, ProvisioningSettings),
)
SERVICES = tuple(p.name for p in PROCESSES if p.iam_permissions)


def iam_permissions(service: str) -> list[Statement]:
    """Every IAM permission a service's code uses (infra/ grants its task role exactly these)."""
    for process in PROCESSES:
        if process.name == service and process.iam_permissions:
            return list(process.iam_permissions)
    raise ValueError(f"unknown service {service!r}")
