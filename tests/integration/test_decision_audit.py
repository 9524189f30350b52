"""The replay's decisions beside the record and the enforcer's audit trail, on real MariaDB and Redis (IAM on
moto): missed blocks while the enforcer was down, late blocks with their delay once it came back, a block
with no crossing behind it, admin blocks apart, team decisions per member."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from audit.decision_audit import audit_decisions
from audit.output import Section
from tests.conftest import NOW
from tests.integration.two_namespaces import (  # noqa: F401 (fixtures)
    Stage,
    calls,
    exceeded,
    in_order,
    person,
    replay_mysql,
    replay_schema,
    stage_fixture,
)

ALICE, BOB, CAROL, DAVE, ERIN = (person(n) for n in ("alice", "bob", "carol", "dave", "erin"))
FAY, GUS = person("fay"), person("gus")
TEAM_FILE = """
teams:
  research: {daily_limit: 5}
users:
  "arn:aws:iam::123456789012:user/fay": {team: research, daily_limit: 100}
  "arn:aws:iam::123456789012:user/gus": {team: research, daily_limit: 100}
"""


def _by_name(sections: list[Section]) -> dict[str, list[dict[str, Any]]]:
    return {s.name: s.as_dicts() for s in sections}


def _minutes_ago(*minutes: float) -> list[Any]:
    return [NOW - timedelta(minutes=m) for m in minutes]


def test_the_enforcer_down_gives_missed_blocks_and_its_return_late_ones(stage: Stage, tmp_path: Path) -> None:
    (tmp_path / "quotas.yaml").write_text(TEAM_FILE)
    for replay in (False, True):
        stage.quotas(tmp_path / "quotas.yaml", replay=replay)
    stage.iam_users(ALICE, BOB, CAROL, FAY, GUS)
    # Three calls each use up a daily limit of 3: alice's third at -12 min, bob's at -11, carol's at -10.
    events = (calls(ALICE, _minutes_ago(14, 13, 12, 2), seed=1) + calls(BOB, _minutes_ago(13, 12, 11), seed=2)
              + calls(CAROL, _minutes_ago(12, 11, 10), seed=3)
              # The team of fay and gus uses up its 5 at gus's third call (-7 min); gus's first is at -9.
              + calls(FAY, _minutes_ago(10, 8, 6), seed=4) + calls(GUS, _minutes_ago(9, 8, 7), seed=5))
    live = stage.consumer(replay=False, DEFAULT_DAILY_REQUEST_LIMIT="3").processor.process(in_order(events))
    stage.consumer(replay=True, DEFAULT_DAILY_REQUEST_LIMIT="3").processor.process(in_order(events))

    enforcer = stage.enforcer()
    carol = exceeded(live.decisions, CAROL.quota_key)
    stage.now = NOW - timedelta(minutes=10) + timedelta(seconds=5)  # carol's: handled at once
    enforcer.decisions.handle(carol)
    # The enforcer was down from then on: it came back at NOW and handled alice's decision (bob's, and the
    # team's, were lost).
    stage.now = NOW
    enforcer.decisions.handle(exceeded(live.decisions, ALICE.quota_key))

    sections, finding = audit_decisions(stage.live, stage.replay, stage.period, late_after=timedelta(seconds=60))

    found = _by_name(sections)
    assert finding
    assert found["decisions"] == [] and found["decisions_crossed_on_another_call"] == []
    assert [(r["principal"], r["scope"], r["subject"], r["live"]) for r in found["missed_blocks"]] == [
        (BOB.quota_key, "user", BOB.quota_key, "no action recorded"),
        (FAY.quota_key, "team", "research", "no action recorded"),
        (GUS.quota_key, "team", "research", "no action recorded")]
    (late,) = found["late_blocks"]
    assert (late["principal"], late["delay_seconds"], late["denied_by"]) == (ALICE.quota_key, 12 * 60, "system")
    assert late["crossed_at"] == (NOW - timedelta(minutes=12)).isoformat(timespec="milliseconds")
    assert found["blocks_without_crossing"] == [] and found["admin_blocks"] == []

    # A minute more of patience and alice's block is on time; the missed ones stay missed.
    sections, _ = audit_decisions(stage.live, stage.replay, stage.period, late_after=timedelta(minutes=13))
    assert _by_name(sections)["late_blocks"] == [] and len(_by_name(sections)["missed_blocks"]) == 3


def test_a_team_block_covers_each_member_and_one_counted_later_is_due_from_their_first_call(
    stage: Stage, tmp_path: Path
) -> None:
    (tmp_path / "quotas.yaml").write_text(TEAM_FILE)
    for replay in (False, True):
        stage.quotas(tmp_path / "quotas.yaml", replay=replay)
    stage.iam_users(FAY, GUS)
    # Fay alone uses up the team's 5 at -6 min; gus is first counted in the team at -3 min.
    fay, gus = calls(FAY, _minutes_ago(10, 9, 8, 7, 6), seed=6), calls(GUS, _minutes_ago(3), seed=7)
    consumer = stage.consumer(replay=False)
    live = consumer.processor.process(in_order(fay))
    stage.consumer(replay=True).processor.process(in_order(fay + gus))
    enforcer = stage.enforcer()
    stage.now = NOW - timedelta(minutes=6) + timedelta(seconds=2)  # fay's block at once (gus not counted yet)
    results = enforcer.decisions.handle(exceeded(live.decisions, "research"))
    assert [r.principal for r in results] == [FAY.quota_key]
    consumer.processor.process(in_order(gus, start=100))
    stage.now = NOW - timedelta(minutes=3) + timedelta(seconds=30)  # the reconciler finds gus 30 s after his call
    enforcer.reconciler.run_once()

    sections, finding = audit_decisions(stage.live, stage.replay, stage.period)

    found = _by_name(sections)
    assert found["missed_blocks"] == [] and found["late_blocks"] == [] and found["blocks_without_crossing"] == []
    assert not finding
    # With no patience at all, each member's delay counts from when they were due.
    sections, finding = audit_decisions(stage.live, stage.replay, stage.period, late_after=timedelta(0))
    assert finding
    assert {r["principal"]: (r["delay_seconds"], r["denied_by"]) for r in _by_name(sections)["late_blocks"]} == {
        FAY.quota_key: (2, "system"), GUS.quota_key: (30, "reconciler")}


def test_a_block_with_no_crossing_in_the_replay_is_listed_and_an_admin_block_is_not(stage: Stage) -> None:
    stage.iam_users(DAVE, ERIN)
    events = calls(DAVE, _minutes_ago(9, 8, 7, 6), seed=8) + calls(ERIN, _minutes_ago(5), seed=9)
    # Live, dave's limit was 3 (a limit lower than it should have been); the replay runs with 10.
    live = stage.consumer(replay=False, DEFAULT_DAILY_REQUEST_LIMIT="3").processor.process(in_order(events))
    stage.consumer(replay=True, DEFAULT_DAILY_REQUEST_LIMIT="10").processor.process(in_order(events))
    enforcer = stage.enforcer()
    stage.now = NOW - timedelta(minutes=7) + timedelta(seconds=1)
    enforcer.decisions.handle(exceeded(live.decisions, DAVE.quota_key))
    stage.now = NOW - timedelta(minutes=4)
    enforcer.enforcer.admin_block(ERIN.quota_key, actor="ops@example.com", reason="left the company", until=None)

    sections, finding = audit_decisions(stage.live, stage.replay, stage.period)

    found = _by_name(sections)
    assert finding
    (unfounded,) = found["blocks_without_crossing"]
    assert (unfounded["principal"], unfounded["quota"], unfounded["actor"], unfounded["finding"]) == (
        DAVE.quota_key, "daily_requests", "system", "no exceeded crossing in the replay")
    assert [(r["principal"], r["actor"], r["reason"]) for r in found["admin_blocks"]] == [
        (ERIN.quota_key, "ops@example.com", "left the company")]
    # The decisions dave's lower limit made live (85 % and 100 % of 3 at his third call, 60 % at his
    # second) are live only; under 10 the replay warned him at 60 % (his sixth call: never).
    assert sorted((r["difference"], r["percent"], r["live_limit"]) for r in found["decisions"]) == [
        ("live only", 60, 3), ("live only", 85, 3), ("live only", 100, 3)]
    assert found["missed_blocks"] == [] and found["late_blocks"] == []


def test_a_protected_principal_left_unblocked_is_no_missed_block(stage: Stage) -> None:
    stage.iam_users(CAROL)
    events = calls(CAROL, _minutes_ago(9, 8, 7), seed=10)
    live = stage.consumer(replay=False, DEFAULT_DAILY_REQUEST_LIMIT="3").processor.process(in_order(events))
    stage.consumer(replay=True, DEFAULT_DAILY_REQUEST_LIMIT="3").processor.process(in_order(events))
    stage.now = NOW - timedelta(minutes=6)
    (result,) = stage.enforcer(PROTECTED_PRINCIPALS=CAROL.quota_key).decisions.handle(
        exceeded(live.decisions, CAROL.quota_key))
    assert result.outcome.value == "protected"

    sections, finding = audit_decisions(stage.live, stage.replay, stage.period)

    found = _by_name(sections)
    assert not finding and found["missed_blocks"] == []
    (exempt,) = found["blocks_not_applied_by_design"]
    assert exempt["principal"] == CAROL.quota_key and exempt["live"].startswith("protected at ")
