"""The Redis key layout, shared by every process that reads or writes counters.

All keys of one scope (a person or a team) share a hash tag, `{u:<quota key>}` or `{t:<team>}`, so the
counting script — which touches one scope's seen-set, day and month counters, limits and pending
decisions — runs on Redis Cluster. The decision stream is a single key of its own.

    <prefix>:{u:KEY}:c:2024-10-01   hash  day counters: req (counted calls), err (failed calls), tokens…
    <prefix>:{u:KEY}:c:2024-10      hash  month counters
    <prefix>:{u:KEY}:s:2024-10-01   set   64-bit hashes of the eventIDs seen that day (dedupe)
    <prefix>:{u:KEY}:lim            hash  limit overrides: daily, monthly (absent: the defaults)
    <prefix>:{u:KEY}:pending        set   decisions decided but not yet published (crash safety)
    <prefix>:{u:KEY}:fwd            hash  the person's new events being handed to their team (crash safety)
    <prefix>:{u:KEY}:hold           hash  events counted while the person's team was not known yet
    <prefix>:{t:TEAM}:m:2024-10-01  set   quota keys counted in the team that day (…:m:2024-10: that month)
    <prefix>:held                   set   quota keys with held events (so any consumer can settle them)
    <prefix>:decisions              stream the decisions, consumed by the enforcer's group
    <prefix>:marker                 string the Redis marker's epoch id (bedrock_usage/redis_marker.py); on a
                                           cluster one per hash slot: <prefix>:{<tag of the slot>}:marker
"""

from __future__ import annotations

from functools import cache

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from bedrock_usage.quota import Scope


def _tag_safe(subject: str) -> str:
    # Braces would end the hash tag early; percent-encode them (and % itself, to stay unambiguous).
    return subject.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


@cache
def _slot_tags() -> tuple[str, ...]:
    """For each of the cluster's 16,384 hash slots, a short hash tag that falls in it (found once, by trying
    m0, m1, … : about 170,000 CRC16s, a fraction of a second)."""
    tags: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    missing, i = REDIS_CLUSTER_HASH_SLOTS, 0
    while missing:
        tag = f"m{i}"
        slot = key_slot(tag.encode())
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
        i += 1
    return tuple(t for t in tags if t is not None)


class Keys:
    def __init__(self, prefix: str, *, cluster: bool = False) -> None:
        """`cluster`: Redis Cluster (REDIS_CLUSTER=true): the marker is then one key per hash slot."""
        self.prefix = prefix
        self.cluster = cluster

    def scope(self, scope: Scope, subject: str) -> str:
        return f"{self.prefix}:{{{'u' if scope is Scope.USER else 't'}:{_tag_safe(subject)}}}"

    def counter(self, scope: Scope, subject: str, period_id: str) -> str:
        return f"{self.scope(scope, subject)}:c:{period_id}"

    def seen(self, scope: Scope, subject: str, day_id: str) -> str:
        return f"{self.scope(scope, subject)}:s:{day_id}"

    def limits(self, scope: Scope, subject: str) -> str:
        return f"{self.scope(scope, subject)}:lim"

    def pending(self, scope: Scope, subject: str) -> str:
        return f"{self.scope(scope, subject)}:pending"

    def forward(self, person: str) -> str:
        return f"{self.scope(Scope.USER, person)}:fwd"

    def hold(self, person: str) -> str:
        return f"{self.scope(Scope.USER, person)}:hold"

    def members(self, team: str, period_id: str) -> str:
        return f"{self.scope(Scope.TEAM, team)}:m:{period_id}"

    @property
    def held(self) -> str:
        return f"{self.prefix}:held"

    @property
    def decisions(self) -> str:
        return f"{self.prefix}:decisions"

    def marker(self, for_key: str = "") -> str:
        """The marker key the counting script checks beside `for_key` (its first key).

        One key on a single Redis. On Redis Cluster a script may only touch keys of one hash slot: the marker
        of `for_key`'s slot. One per slot, not one per master: a slot keeps its marker when it moves (a
        reshard), and a master that forgot (a failover to an empty replica) lost the markers of its slots."""
        if not self.cluster:
            return f"{self.prefix}:marker"
        return f"{self.prefix}:{{{_slot_tags()[key_slot(for_key.encode())]}}}:marker"

    def markers(self) -> list[str]:
        """Every marker key (one, or one per slot), as the writer of a new marker sets them."""
        if not self.cluster:
            return [self.marker()]
        return [f"{self.prefix}:{{{tag}}}:marker" for tag in _slot_tags()]
