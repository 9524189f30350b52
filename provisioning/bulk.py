"""`bedrockctl user import FILE`: onboarding many people at once from a CSV file, as `user create` would one
by one.

The file is read and every line checked (names, tags, teams that exist, a user in another team, a user named
twice) before anything is written, and every problem is reported at once with its line: an admin fixes a
fifty-line file in one pass, and a file with a mistake changes nothing. Then each person's plan is run as
`user create` runs it (printed, applied, one audit row per person changed). A person already as asked is
`no change`, so a run that stopped part-way (IAM throttling, say) is finished by running it again.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import TextIO

from provisioning import changes, users
from provisioning.changes import Plan
from provisioning.parts import Parts

REQUIRED = ("username", "person", "team")
OPTIONAL = ("email", "tool", "language")
MAX_PEOPLE = 5000  # one file; IAM's own quota is 5,000 users an account


class PeopleFileError(ValueError):
    """The file's problems, one a line: nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("nothing imported; fix these and run again:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Line:
    number: int  # in the file's own numbering
    person: users.NewPerson


@dataclass(frozen=True)
class PeopleFile:
    lines: list[Line]  # the lines that could be read
    problems: list[tuple[int, str]]  # (line number, what is wrong) of those that could not


def read(text: TextIO) -> PeopleFile:
    """The file's people. A header names the columns (any order; REQUIRED, then any of OPTIONAL); blank
    lines and lines starting with # are skipped; an empty optional cell means "not given"."""
    # Skipped lines are kept as empty ones (which csv skips) so that every number is the file's own line.
    kept = ["\n" if not line.strip() or line.lstrip().startswith("#") else line for line in text]
    if kept:
        kept[0] = kept[0].removeprefix("\ufeff")  # a byte-order mark, where the file was not opened as utf-8-sig
    reader = csv.reader(kept, skipinitialspace=True)
    columns = next((row for row in reader if row), [])
    columns = [c.strip().lower() for c in columns]
    missing = [c for c in REQUIRED if c not in columns]
    unknown = [c for c in columns if c not in (*REQUIRED, *OPTIONAL)]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if missing or unknown or repeated:
        raise PeopleFileError([f"header: the columns are {', '.join(REQUIRED)} and any of {', '.join(OPTIONAL)}"
                               f" (missing: {', '.join(missing) or '-'}; unknown: {', '.join(unknown) or '-'};"
                               f" repeated: {', '.join(repeated) or '-'}; got: {', '.join(columns) or 'nothing'})"])
    lines: list[Line] = []
    problems: list[tuple[int, str]] = []
    for row in reader:
        number = reader.line_num
        if not row:
            continue
        if len(row) > len(columns):  # a comma in an unquoted name, most likely
            problems.append((number, f"line {number}: {len(row)} cells for {len(columns)} columns"
                                     " (quote a value that holds a comma)"))
            continue
        cells = dict(zip(columns, (cell.strip() for cell in row), strict=False))
        absent = [c for c in REQUIRED if not cells.get(c)]
        if absent:
            problems.append((number, f"line {number}: no {', '.join(absent)}"))
            continue
        lines.append(Line(number, users.NewPerson(
            cells["username"], cells["person"], cells["team"], cells.get("email") or None,
            cells.get("tool") or None, cells.get("language") or None)))
    if len(lines) > MAX_PEOPLE:
        raise PeopleFileError([f"{len(lines)} people: at most {MAX_PEOPLE} a file"])
    return PeopleFile(lines, problems)


def plans(parts: Parts, people: PeopleFile) -> list[Plan]:
    """Each line's `user create` plan, read from IAM and MySQL only: the plans, or every line's problem
    (those found reading the file too), in the file's order."""
    problems = list(people.problems)
    made: list[Plan] = []
    seen: dict[str, int] = {}
    for line in people.lines:
        name = line.person.user
        if name.lower() in seen:  # IAM's user names are unique regardless of case
            problems.append((line.number, f"line {line.number}: {name} is on line {seen[name.lower()]} too"))
            continue
        seen[name.lower()] = line.number
        try:
            made.append(users.create(parts, line.person))
        except ValueError as error:
            problems.append((line.number, f"line {line.number} ({name}): {error}"))
    if problems:
        raise PeopleFileError([text for _, text in sorted(problems)])
    return made


def run(parts: Parts, people: PeopleFile, *, actor: str, dry_run: bool, out: TextIO) -> int:
    """Check every line, then run each person's plan as `user create` does; a summary at the end."""
    checked = plans(parts, people)  # raises before any write
    lines = people.lines
    changed = 0
    for done, (line, plan) in enumerate(zip(lines, checked, strict=True)):
        try:
            changes.run(plan, parts.conn, actor=actor, dry_run=dry_run, out=out)
        except Exception as error:
            # One line for the admin (bedrockctl prints a ValueError so), the cause chained for a log.
            raise ValueError(f"stopped at line {line.number} ({plan.target}): {error}; the {done} people"
                               " before it are done: run the same file again to finish") from error
        changed += bool(plan.changes)
    verb = "would change" if dry_run else "changed"
    print(f"user import: {len(lines)} people; {verb} {changed}, {len(lines) - changed} already as asked"
          + ("; nothing written" if dry_run else ""), file=out)
    return 0
