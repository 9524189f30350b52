"""bedrock_usage.quota: threshold arithmetic, crossings, states and the decision record."""

from __future__ import annotations

import dataclasses

import pytest

from bedrock_usage.quota import (
    Decision,
    Kind,
    Limits,
    Quota,
    Scope,
    State,
    crossed,
    kind_for,
    state_of,
    threshold_count,
)

WARNINGS = (60, 85)

DECISION = Decision(
    kind=Kind.EXCEEDED,
    scope=Scope.USER,
    subject="sso:alice@example.com",
    quota=Quota.DAILY_REQUESTS,
    period="2024-10-01",
    percent=100,
    usage=250,
    limit=250,
    event_id="0f3c1e0a-5b8e-4f2d-9a51-3b7d8c2e1f44",
    event_time="2024-10-01T11:52:37+00:00",
    principal="sso:alice@example.com",
    team="data-science",
)


@pytest.mark.parametrize(
    ("limit", "percent", "expected"),
    [
        (250, 60, 150),
        (250, 85, 213),  # 212.5 rounds up
        (250, 100, 250),
        (5000, 60, 3000),
        (5000, 85, 4250),
        (10, 85, 9),  # 8.5 rounds up
        (3, 60, 2),  # 1.8 rounds up
        (1, 60, 1),
        (1, 1, 1),  # 0.01: at least one request
        (7, 100, 7),
    ],
)
def test_threshold_count_rounds_up_and_is_at_least_one(limit: int, percent: int, expected: int) -> None:
    assert threshold_count(limit, percent) == expected


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (0, 1, []),
        (5, 6, [60]),
        (6, 7, []),
        (8, 9, [85]),
        (9, 10, [100]),
        (10, 11, []),  # over the limit: already exceeded
        (4, 9, [60, 85]),
        (0, 12, [60, 85, 100]),
        (9, 9, []),
        (10, 5, []),  # a counter never goes down; nothing is crossed backwards
    ],
)
def test_crossed_with_a_limit_of_10(before: int, after: int, expected: list[int]) -> None:
    assert crossed(before, after, 10, WARNINGS) == expected


def test_each_threshold_is_crossed_exactly_once_counting_one_by_one() -> None:
    crossings = [(usage, p) for usage in range(300) for p in crossed(usage, usage + 1, 250, WARNINGS)]

    assert crossings == [(149, 60), (212, 85), (249, 100)]


def test_a_limit_of_one_crosses_every_threshold_with_the_first_call() -> None:
    assert crossed(0, 1, 1, WARNINGS) == [60, 85, 100]
    assert crossed(1, 2, 1, WARNINGS) == []


@pytest.mark.parametrize("limit", [None, 0, -5])
def test_no_limit_crosses_nothing(limit: int | None) -> None:
    assert crossed(0, 1_000_000, limit, WARNINGS) == []


def test_without_warning_thresholds_only_100_is_crossed() -> None:
    assert crossed(0, 10, 10, ()) == [100]


@pytest.mark.parametrize(
    ("usage", "expected"),
    [(0, State.OK), (5, State.OK), (6, State.WARNING), (9, State.WARNING), (10, State.EXCEEDED),
     (11, State.EXCEEDED)],
)
def test_state_of_with_a_limit_of_10(usage: int, expected: State) -> None:
    assert state_of(usage, 10, WARNINGS) is expected


def test_state_uses_the_lowest_warning_threshold() -> None:
    assert state_of(6, 10, (85, 60)) is State.WARNING


def test_state_without_a_limit_is_ok() -> None:
    assert state_of(10**9, None, WARNINGS) is State.OK


def test_state_without_warning_thresholds_is_ok_until_the_limit() -> None:
    assert state_of(9, 10, ()) is State.OK
    assert state_of(10, 10, ()) is State.EXCEEDED


def test_limits_for_quota() -> None:
    limits = Limits(daily=250, monthly=None)

    assert limits.for_quota(Quota.DAILY_REQUESTS) == 250
    assert limits.for_quota(Quota.MONTHLY_REQUESTS) is None


def test_kind_for() -> None:
    assert (kind_for(60), kind_for(85), kind_for(100)) == (Kind.WARNING, Kind.WARNING, Kind.EXCEEDED)


# -- decisions ----------------------------------------------------------------------------------------


def test_decision_id_is_deterministic() -> None:
    twin = dataclasses.replace(DECISION)

    assert DECISION.decision_id == twin.decision_id
    # sha256("user|sso:alice@example.com|daily_requests|2024-10-01|100|250")[:32]
    assert DECISION.decision_id == "6072aa22d1c06364512aae72a23089e3"


def test_a_republished_decision_keeps_its_id_whichever_call_crossed() -> None:
    republished = dataclasses.replace(
        DECISION, usage=251, event_id="another", event_time="2024-10-01T12:00:00+00:00", principal="x", team="y")

    assert republished.decision_id == DECISION.decision_id


@pytest.mark.parametrize(
    "change",
    [
        {"limit": 300},
        {"period": "2024-10-02"},
        {"percent": 85, "kind": Kind.WARNING},
        {"subject": "sso:bob@example.com"},
        {"scope": Scope.TEAM, "subject": "sso:alice@example.com"},
        {"quota": Quota.MONTHLY_REQUESTS, "period": "2024-10-01"},
    ],
)
def test_decision_id_differs_by_what_identifies_the_crossing(change: dict[str, object]) -> None:
    other = dataclasses.replace(DECISION, **change)  # type: ignore[arg-type]

    assert other.decision_id != DECISION.decision_id


def test_to_fields_are_strings_with_the_decision_id() -> None:
    assert DECISION.to_fields() == {
        "kind": "exceeded",
        "scope": "user",
        "subject": "sso:alice@example.com",
        "quota": "daily_requests",
        "period": "2024-10-01",
        "percent": "100",
        "usage": "250",
        "limit": "250",
        "event_id": "0f3c1e0a-5b8e-4f2d-9a51-3b7d8c2e1f44",
        "event_time": "2024-10-01T11:52:37+00:00",
        "principal": "sso:alice@example.com",
        "team": "data-science",
        "decision_id": "6072aa22d1c06364512aae72a23089e3",
    }


def test_fields_round_trip() -> None:
    assert Decision.from_fields(DECISION.to_fields()) == DECISION


def test_fields_round_trip_with_bytes_values() -> None:
    fields = {k: v.encode() for k, v in DECISION.to_fields().items()}

    assert Decision.from_fields(fields) == DECISION


def test_fields_from_json_numbers_round_trip() -> None:
    # The counting script hands decisions over as JSON, where the numbers are numbers.
    fields: dict[str, object] = {**DECISION.to_fields(), "percent": 100, "usage": 250, "limit": 250}

    assert Decision.from_fields(fields) == DECISION


def test_fields_round_trip_with_bytes_keys_and_values() -> None:
    fields = {k.encode(): v.encode() for k, v in DECISION.to_fields().items()}

    assert Decision.from_fields(fields) == DECISION  # type: ignore[arg-type]
