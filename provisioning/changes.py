"""How every provisioning command acts: it compares what is with what should be and makes a list of
changes; the runner prints them, and applies them unless it is a dry run, then writes the audit row.

A command whose list is empty changed nothing, says so, and writes no audit row: running it twice is
the same as running it once. A change that fails part-way is recorded with what was done before it and
re-raised; the command is safe to run again (every step compares first). A change may return what it
learned only by acting (the ID IAM gave a new key): it is printed and recorded after its description.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from pymysql.connections import Connection

from provisioning import journal


@dataclass(frozen=True)
class Change:
    description: str  # what an admin reads: "IAM: create group bedrock-team-data"
    apply: Callable[[], str | None]  # returns what it learned, if anything (never a secret)


@dataclass
class Plan:
    action: str  # "team create", "user delete"…
    target: str  # the team or user name
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said whether or not anything changes

    def add(self, description: str, apply: Callable[[], str | None]) -> None:
        self.changes.append(Change(description, apply))


def run(plan: Plan, conn: Connection, *, actor: str, dry_run: bool, out: TextIO) -> int:
    """Print and (unless `dry_run`) apply the plan; the exit status is 0."""
    for note in plan.notes:
        print(f"note: {note}", file=out)
    if not plan.changes:
        print(f"{plan.action} {plan.target}: no change (already as asked)", file=out)
        return 0
    if dry_run:
        print(f"dry run: {plan.action} {plan.target} would:", file=out)
        for change in plan.changes:
            print(f"  {change.description}", file=out)
        print("nothing written", file=out)
        return 0
    print(f"{plan.action} {plan.target}:", file=out)
    done: list[str] = []
    try:
        for change in plan.changes:
            learned = change.apply()
            done.append(f"{change.description}: {learned}" if learned else change.description)
            print(f"  {done[-1]}", file=out)
    except BaseException as error:
        journal.record(conn, actor=actor, action=plan.action, target=plan.target,
                       detail="; ".join([*done, f"FAILED at: {change.description}: {error}"]))
        raise
    journal.record(conn, actor=actor, action=plan.action, target=plan.target, detail="; ".join(done))
    return 0
