"""The people directory's shared state in MySQL: its change sequence and the Identity Center rule.

Every writer of people's teams, names or emails (`bedrockctl limits apply`, the consumer's team
resolution) stamps the rows it changes with `next_version()`, taken inside its own transaction. The
version row stays locked until that transaction commits, so versions commit in order, and a reader
holding "every change up to N" never misses one (see sql/006_directory_state.sql).

The Identity Center rule comes from the quota file's `identity_center` section:

    identity_center:
      store_id: d-1234567890
      region: eu-west-1                     # of the Identity Store (default: AWS_REGION)
      team_from_groups:                      # group display name → team, first matching entry wins
        "bedrock-team-*": "{name}"           # {name}: what the * matched; {group}: the whole name
        "Data Science": data-science         # no wildcard: that group exactly
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pymysql.cursors import Cursor


@dataclass(frozen=True)
class IdentityCenterRule:
    store_id: str
    region: str | None = None
    team_from_groups: tuple[tuple[str, str], ...] = ()  # (group pattern, team template), in file order

    def team_for(self, groups: Iterable[str]) -> str | None:
        """The team of a person in `groups` (display names): the first pattern, in file order, that
        matches one of them; among several groups matching it, the first by name (deterministic)."""
        names = sorted(groups)
        for pattern, template in self.team_from_groups:
            for group in names:
                if _matches(pattern, group):
                    star = _star_part(pattern, group)
                    return template.replace("{name}", star).replace("{group}", group).strip() or None
        return None

    def to_json(self) -> str:
        return json.dumps({"store_id": self.store_id, "region": self.region,
                           "team_from_groups": [list(p) for p in self.team_from_groups]})

    @classmethod
    def from_json(cls, text: str | bytes) -> IdentityCenterRule:
        data: dict[str, Any] = json.loads(text)
        return cls(str(data["store_id"]), data.get("region") or None,
                   tuple((str(p), str(t)) for p, t in data.get("team_from_groups") or ()))


def _matches(pattern: str, group: str) -> bool:
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), group, re.DOTALL) is not None


def _star_part(pattern: str, group: str) -> str:
    """What the first `*` of `pattern` matched in `group` (the whole name when there is none)."""
    if "*" not in pattern:
        return group
    # Only `*` is a wildcard in these patterns (group names may hold `?` or `[`): the first one
    # captures, the others match anything.
    parts = [re.escape(part) for part in pattern.split("*")]
    match = re.fullmatch(parts[0] + "(.*?)" + ".*".join(parts[1:]), group, re.DOTALL)
    return match.group(1) if match else group


def next_version(cur: Cursor) -> int:
    """Take the next directory version inside the caller's transaction (holds the version row's lock
    until it commits or rolls back: keep the transaction short)."""
    cur.execute("UPDATE directory_state SET version = LAST_INSERT_ID(version + 1) WHERE id = 1")
    cur.execute("SELECT LAST_INSERT_ID()")
    row = cur.fetchone()
    assert row is not None
    return int(row[0])


def read_state(cur: Cursor) -> tuple[int, IdentityCenterRule | None]:
    """The committed version and the Identity Center rule (in the caller's snapshot)."""
    cur.execute("SELECT version, identity_center FROM directory_state WHERE id = 1")
    row = cur.fetchone()
    if row is None:
        return 0, None
    return int(row[0]), IdentityCenterRule.from_json(row[1]) if row[1] else None


def store_identity_center(cur: Cursor, rule: IdentityCenterRule | None, *, version: int | None = None) -> None:
    """Record the rule (None: no Identity Store lookups), in the caller's transaction. `version`: one
    the caller already took in this transaction (one change, one version), else a new one."""
    if version is None:
        version = next_version(cur)
    cur.execute("UPDATE directory_state SET identity_center = %s WHERE id = 1 AND version = %s",
                (rule.to_json() if rule else None, version))


def team_patterns(rule: IdentityCenterRule | None) -> Sequence[str]:
    return [p for p, _ in rule.team_from_groups] if rule else []
