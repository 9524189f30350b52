"""The console's `bedrockctl` commands: `console run` (the service) and `console rollup` (the hourly
summaries its cost and hourly pages read, brought up to date once)."""

from __future__ import annotations

import argparse

from bedrock_usage.commands import CommandGroup
from console.settings import ConsoleSettings


def console_run(args: argparse.Namespace, settings: ConsoleSettings) -> int:
    from console import server  # noqa: PLC0415 — the web stack is loaded by the console alone, not every command

    return server.run(settings)


def register(commands: CommandGroup) -> None:
    console = commands.group("console", "the admin console (a web app)")
    console.add("run", console_run, "serve the console on CONSOLE_HOST:CONSOLE_PORT", settings=ConsoleSettings)
