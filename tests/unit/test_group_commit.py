"""Group commit: items handed in by several threads while one group is applied go into the next group."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from enforcement.group_commit import GroupCommit


def test_items_handed_in_meanwhile_are_applied_together_and_each_caller_gets_its_answer() -> None:
    groups: list[list[int]] = []
    first_running, release = threading.Event(), threading.Event()

    def apply(items: list[int]) -> dict[int, str | Exception]:
        groups.append(items)
        if len(groups) == 1:  # hold the first group until the others have queued behind it
            first_running.set()
            release.wait(10)
        return {i: ValueError(i) if i == 13 else f"done {i}" for i in items}

    commit: GroupCommit[int, str] = GroupCommit(apply)
    with ThreadPoolExecutor(max_workers=13) as pool:
        first = pool.submit(commit.submit, 0)
        assert first_running.wait(10)
        rest = {i: pool.submit(commit.submit, i) for i in range(1, 12)} | {13: pool.submit(commit.submit, 13)}
        deadline = time.monotonic() + 10
        while len(commit._queued) < len(rest) and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
        assert first.result(10) == "done 0"
        assert all(f.result(10) == f"done {i}" for i, f in rest.items() if i != 13)
        with pytest.raises(ValueError):
            rest[13].result(10)
    assert groups[0] == [0]
    assert len(groups) == 2 and sorted(groups[1]) == [*range(1, 12), 13]  # one write for all who waited


def test_a_failure_of_the_whole_group_is_every_callers() -> None:
    def apply(items: list[str]) -> dict[str, str | Exception]:
        raise ConnectionError("IAM throttled past its retries")

    commit: GroupCommit[str, str] = GroupCommit(apply)
    with pytest.raises(ConnectionError):
        commit.submit("a")
    with pytest.raises(ConnectionError):  # and the next group is tried afresh
        commit.submit("b")
