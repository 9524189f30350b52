"""How a package offers `bedrockctl` commands, without importing the shell that gathers them.

The `bedrockctl` package (the shell) imports every process package and calls its `commands.register`
with a `CommandGroup`; a process package names its commands, their arguments, their handler and the
settings class the handler reads (each process validates only its own settings: a bad KCL setting
must not stop `bedrockctl notify outbox`). This vocabulary lives in the kernel so that the arrow only
ever points down: shell -> process packages -> kernel.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from bedrock_usage.settings import SharedSettings

S = TypeVar("S", bound=SharedSettings)

# A handler takes the parsed arguments and its settings and returns the exit status.
Handler = Callable[[argparse.Namespace, Any], int]


class CommandGroup:
    """One level of sub-commands (`bedrockctl`, `bedrockctl notify`, ...)."""

    def __init__(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self._subparsers = subparsers

    @classmethod
    def root(cls, parser: argparse.ArgumentParser) -> CommandGroup:
        return cls(parser.add_subparsers(dest="command", required=True))

    def group(self, name: str, help_: str) -> CommandGroup:
        """A command with sub-commands of its own (`bedrockctl prices import|show|...`); argparse names
        a missing one by `dest` ("the following arguments are required: prices_command")."""
        parser = self._subparsers.add_parser(name, help=help_, description=help_)
        return CommandGroup(parser.add_subparsers(dest=f"{name.replace('-', '_')}_command", required=True))

    def add(self, name: str, handler: Callable[[argparse.Namespace, S], int], help_: str, *,
            settings: type[S]) -> argparse.ArgumentParser:
        """A command: the shell reads `settings` from the environment, then calls `handler`."""
        parser = self._subparsers.add_parser(name, help=help_, description=help_)
        parser.set_defaults(handler=handler, settings_type=settings)
        return parser


class CommandPackage(Protocol):
    """What the shell expects of a package's `commands` module."""

    def register(self, commands: CommandGroup) -> None: ...
