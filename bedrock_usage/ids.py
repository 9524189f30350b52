"""Deterministic identifiers: the same inputs give the same key, so a replayed action collides with the
first (audit rows, notifications, deliveries' dedupe keys)."""

from __future__ import annotations

import hashlib


def digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
