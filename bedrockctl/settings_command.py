"""`bedrockctl settings`: every environment variable, its default, and which processes read it.

The README's settings table is this command's `--markdown` output (a test keeps them in step).
"""

from __future__ import annotations

import argparse
import json

from bedrock_usage.commands import CommandGroup
from bedrock_usage.config import Spec
from bedrock_usage.printing import table
from bedrock_usage.settings import SharedSettings
from bedrockctl.processes import PROCESSES


def readers() -> list[tuple[Spec, str]]:
    """Each variable once, the shared ones first (read by every process), then each process's own, with
    every process that reads it (the console reads the enforcer's settings: it blocks through its code)."""
    rows = [(spec, "all") for spec in SharedSettings.OWN_SPECS]
    for process in PROCESSES:
        for spec in process.settings.__dict__.get("OWN_SPECS", ()):
            names = [p.name for p in PROCESSES if spec in p.settings.specs()]
            rows.append((spec, ", ".join([process.name, *(n for n in names if n != process.name)])))
    return rows


def markdown() -> str:
    lines = ["| Variable | Default | Read by | Meaning |", "|---|---|---|---|"]
    for spec, reader in readers():
        default = "(unset)" if spec.default is None else f"`{spec.default}`" if spec.default else "(empty)"
        lines.append(f"| `{spec.name}` | {default} | {reader} | {spec.help} |")
    return "\n".join(lines)


def show(args: argparse.Namespace, settings: SharedSettings) -> int:
    if args.markdown:
        print(markdown())
    elif args.json:
        print(json.dumps([{"name": s.name, "default": s.default, "read_by": r, "help": s.help}
                          for s, r in readers()], indent=2))
    else:
        print(table(("variable", "default", "read by"), [(s.name, s.default, r) for s, r in readers()]))
    return 0


def register(commands: CommandGroup) -> None:
    p = commands.add("settings", show, "every setting, its default and which processes read it",
                     settings=SharedSettings)
    output = p.add_mutually_exclusive_group()
    output.add_argument("--markdown", action="store_true", help="as the README's table")
    output.add_argument("--json", action="store_true")
