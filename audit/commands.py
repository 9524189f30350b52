"""The audit commands of `bedrockctl`: `replay` and `bill reconcile`."""

from __future__ import annotations

from audit import bill_command, replay_command
from bedrock_usage.commands import CommandGroup


def register(commands: CommandGroup) -> None:
    replay_command.register(commands)  # bedrockctl replay
    bill_command.register(commands)  # bedrockctl bill reconcile
