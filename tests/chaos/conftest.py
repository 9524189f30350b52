"""The fault-injection suite (`make chaos`): each case in two sizes.

- Short form, in `make test` (and `make test-fast`): the same case on fewer records, kills or outages,
  sized to finish within CI's time (under a minute a case).
- Full form, under `make chaos`, which sets CHAOS_FULL=1: the figures the README reports.

A case asks for the `chaos_scale` fixture and sizes itself with `chaos_scale.pick(short, full)`; it asks
for `chaos_seed` for its random choices (fixed by default, printed, overridden by CHAOS_SEED to replay a
failure). Every test in this directory carries the `chaos` marker (`pytest -m chaos` selects them), and
talks to the real services of TEST_MYSQL_URL and TEST_REDIS_URL (tests/conftest.py); a case that must
break a server (out of memory, a restart) starts a private `redis-server` of its own, never the shared one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.chaos.private_redis import PrivateRedis

T = TypeVar("T")

CHAOS_FULL = os.environ.get("CHAOS_FULL", "").strip().lower() not in ("", "0", "false", "no")
DEFAULT_SEED = 20261124  # any fixed value: the short form is the same run every time unless CHAOS_SEED is set
_HERE = Path(__file__).parent


@dataclass(frozen=True)
class ChaosScale:
    """Which form runs: `full` under `make chaos` (CHAOS_FULL=1), else the short form of `make test`."""

    full: bool

    def pick(self, short: T, full: T) -> T:
        return full if self.full else short

    @property
    def name(self) -> str:
        return "full" if self.full else "short"


def chaos_seed_value() -> int:
    raw = os.environ.get("CHAOS_SEED", "").strip()
    return int(raw) if raw else DEFAULT_SEED


@pytest.fixture
def chaos_scale() -> ChaosScale:
    return ChaosScale(CHAOS_FULL)


@pytest.fixture
def chaos_seed(request: pytest.FixtureRequest, chaos_scale: ChaosScale) -> int:
    """The case's random seed: printed (pytest -s shows it) and attached to the test's report, so that a
    failure says how to replay it."""
    seed = chaos_seed_value()
    line = f"{request.node.nodeid}: {chaos_scale.name} form, seed {seed} (replay: CHAOS_SEED={seed})"
    print(line)
    request.node.add_report_section("setup", "chaos", line)
    return seed


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A redis-server of the case's own (tests/chaos/private_redis.py), stopped at its end."""
    server = PrivateRedis()
    try:
        yield server
    finally:
        server.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.chaos)
