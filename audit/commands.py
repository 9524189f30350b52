"""The audit commands of `bedrockctl`: `replay` and `bill reconcile` (registered as they are built)."""

from __future__ import annotations

from bedrock_usage.commands import CommandGroup


def register(commands: CommandGroup) -> None:
    del commands  # replay and bill reconcile add themselves here
