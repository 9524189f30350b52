"""The README's map of the code ("The code") matches the tree: every module it names exists, and every
module of the product and the dev tooling is named (by its path, its directory, or — for the files each
process package has — by the name the section gives them)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bedrockctl", "audit", "console", "bedrock_usage", "consumer", "enforcement", "notifier", "producer_config",
            "devtools")
EVERY_PACKAGE_HAS = ("settings.py", "commands.py", "permissions.py", "assembly.py", "metrics.py")


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## The code\n")
    return text[start:text.index("\n## ", start + 1)]


def _listed() -> set[str]:
    """Paths named in the map's table: the first cell's first entry carries the directory of the others."""
    paths: set[str] = set()
    for line in _section().splitlines():
        if not line.startswith("| `"):
            continue
        names = re.findall(r"`([^`]+)`", line.split("|")[1])
        directory = names[0].rsplit("/", 1)[0] if "/" in names[0].rstrip("/") else ""
        for name in names:
            paths.add(name if "/" in name.rstrip("/") or not directory else f"{directory}/{name}")
    return paths


def test_every_module_the_map_names_exists() -> None:
    missing = sorted(p for p in _listed() if not (ROOT / p).exists())
    assert missing == []


def test_the_map_names_every_module() -> None:
    listed = _listed()
    section = _section()
    unnamed = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            if path.suffix not in (".py", ".lua") or "__pycache__" in path.parts or path.name.startswith("__"):
                continue
            relative = path.relative_to(ROOT).as_posix()
            covered = relative in listed or any(relative.startswith(p) for p in listed if p.endswith("/"))
            generic = path.name in EVERY_PACKAGE_HAS and f"`{path.name}`" in section
            if not (covered or generic):
                unnamed.append(relative)
    assert unnamed == []
