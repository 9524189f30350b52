"""The audit commands of `bedrockctl`: `replay` and `bill reconcile` (registered as they are built)."""

from __future__ import annotations

from audit import bill_command
from bedrock_usage.commands import CommandGroup


def register(commands: CommandGroup) -> None:
    bill_command.register(commands)  # bedrockctl bill reconcile
