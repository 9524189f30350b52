"""`bedrockctl`: the admin and operations command line.

The parser is gathered: the shell's own commands over the shared kernel (db, limits, usage, cost,
prices, settings), then each process package's (bedrockctl/processes.py). Each command reads only the
settings its process reads, does one job, and exits non-zero with a one-line error on bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from bedrock_usage import logs
from bedrock_usage.commands import CommandGroup, CommandPackage, Handler
from bedrock_usage.config import SettingsError
from bedrock_usage.migrate import MigrationError
from bedrock_usage.pricing.book import NoPrices
from bedrock_usage.quota_file import QuotaFileError
from bedrock_usage.settings import SharedSettings
from bedrockctl import cost_commands, db_commands, limits_commands, price_commands, settings_command, usage_commands
from bedrockctl.processes import PROCESSES

# Errors an admin fixes (the file, the environment: no credentials, access denied): one line, exit 2.
USER_ERRORS = (QuotaFileError, MigrationError, NoPrices, FileNotFoundError, ValueError, ClientError, BotoCoreError)

# The shell's own commands: over the kernel alone, reading the shared settings.
_OWN: tuple[CommandPackage, ...] = (db_commands, limits_commands, usage_commands, cost_commands, price_commands,
                                    settings_command)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="bedrockctl", description="Bedrock Usage Control")
    commands = CommandGroup.root(root)
    for module in _OWN:
        module.register(commands)
    for process in PROCESSES:
        process.commands.register(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings_type: type[SharedSettings] = args.settings_type
    try:
        settings = settings_type.from_env()
    except SettingsError as error:
        print(f"bedrockctl: bad setting: {error}", file=sys.stderr)
        return 2
    logs.setup("bedrockctl", "WARNING" if settings.log_level == "INFO" else settings.log_level)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except USER_ERRORS as error:
        print(f"bedrockctl: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
