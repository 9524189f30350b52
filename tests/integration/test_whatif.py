"""What-if audits on real MariaDB and Redis: a replay re-priced with another price file shows each person's
over- or under-charge exactly (computed here by hand from the token counts and the two tables); a replay
under a quota file with lower limits shows who would have been warned and blocked."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
import pytest

from audit.whatif import apply_prices, apply_quotas, outcomes_section, repricing_section
from bedrock_usage.keys import Keys
from bedrock_usage.pricing.price_file import PriceFileError
from consumer.records import InputRecord
from devtools.simulate import Person, invocation_log, subscription_payload
from tests.conftest import NOW
from tests.integration.two_namespaces import (  # noqa: F401 (fixtures)
    REPLAY_PREFIX,
    Stage,
    calls,
    hand_cost,
    in_order,
    person,
    replay_mysql,
    replay_schema,
    stage_fixture,
)

SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
ALICE, BOB, CAROL = person("alice"), person("bob"), person("carol")
FAY, GUS = person("fay"), person("gus")
# The price fix: Sonnet 4.5 on regional endpoints charged at its global rate (dated after the period: the
# file's table stands over the whole period whatever its date).
FIXED = {"input": Decimal("3.00"), "output": Decimal("15.00"), "cache_read": Decimal("0.30"),
         "cache_write_5m": Decimal("3.75"), "cache_write_1h": Decimal("6.00")}
PRICE_FILE = f"""
currency: USD
source: the corrected table
effective: 2099-01-01
prices:
  - model: {SONNET}
    region: "*"
    scope: regional
    per_million: {{{", ".join(f"{k}: {v}" for k, v in FIXED.items())}}}
"""


def _traffic(who: Person, model: str, count: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    made = calls(who, [NOW - timedelta(minutes=30 - i) for i in range(count)], seed=seed)
    rng = random.Random(seed)
    for call in made:
        call["detail"]["requestParameters"]["modelId"] = model
    return made, [invocation_log(call, rng, input_tokens=rng.randrange(100, 5000),
                                 output_tokens=rng.randrange(10, 2000)) for call in made]


def _log_records(logs: list[dict[str, Any]]) -> list[InputRecord]:
    return [InputRecord(subscription_payload(logs[i:i + 4]), "shardId-000000000001", str(500 + i))
            for i in range(0, len(logs), 4)]


def _regional_price(conn: pymysql.connections.Connection, model: str) -> dict[str, Decimal]:
    with conn.cursor() as cur:
        cur.execute("SELECT input, output, cache_read, cache_write_5m, cache_write_1h FROM prices WHERE model = %s"
                    " AND region = '*' AND scope = 'regional' AND tier = 'standard'", (model,))
        (row,) = cur.fetchall()
    conn.commit()
    return dict(zip(FIXED, row, strict=True))


def test_a_changed_price_file_shows_each_persons_overcharge_exactly(stage: Stage, tmp_path: Path) -> None:
    alice, bob, carol = _traffic(ALICE, SONNET, 12, 1), _traffic(BOB, SONNET, 5, 2), _traffic(CAROL, NOVA, 4, 3)
    events = alice[0] + bob[0] + carol[0]
    logs = alice[1] + bob[1] + carol[1]
    live_sonnet = _regional_price(stage.live, SONNET)
    (tmp_path / "prices.yaml").write_text(PRICE_FILE)
    apply_prices(stage.replay, tmp_path / "prices.yaml")
    assert _regional_price(stage.replay, SONNET) == FIXED  # the copied row is gone, whatever its date
    for replay in (False, True):
        consumer = stage.consumer(replay=replay)
        consumer.processor.process(in_order(events))
        consumer.processor.process(_log_records(logs))

    section = repricing_section(stage.live, stage.replay, stage.period)

    rows = {(r["scope"], r["subject"]): r for r in section.as_dicts()}
    for who, made in ((ALICE, alice), (BOB, bob)):
        row = rows["user", who.quota_key]
        charged, fixed = hand_cost(made[1], live_sonnet), hand_cost(made[1], FIXED)
        assert (row["live_cost_usd"], row["repriced_cost_usd"]) == (charged, fixed)
        assert row["overcharged_usd"] == charged - fixed > 0 and row["verdict"] == "over-charged"
        assert row["live_logs"] == row["replay_logs"] == len(made[1])
    # A model the file does not name keeps its price: carol's cost is the same on both sides.
    carol_row = rows["user", CAROL.quota_key]
    assert carol_row["overcharged_usd"] == 0 and carol_row["verdict"] == "same"
    assert carol_row["live_cost_usd"] == carol_row["repriced_cost_usd"] > 0
    # People first, the largest difference first (alice has more calls than bob); then the team.
    assert [(r["scope"], r["subject"]) for r in section.as_dicts()] == [
        ("user", ALICE.quota_key), ("user", BOB.quota_key), ("user", CAROL.quota_key), ("team", "unassigned")]
    team = rows["team", "unassigned"]
    assert team["overcharged_usd"] == sum(rows["user", p.quota_key]["overcharged_usd"] for p in (ALICE, BOB, CAROL))


def test_a_bad_price_file_changes_nothing(stage: Stage, tmp_path: Path) -> None:
    before = _regional_price(stage.replay, SONNET)
    (tmp_path / "prices.yaml").write_text(PRICE_FILE.replace("output: 15.00", "output: -1"))
    with pytest.raises(PriceFileError, match="output"):
        apply_prices(stage.replay, tmp_path / "prices.yaml")
    assert _regional_price(stage.replay, SONNET) == before


def test_a_quota_file_with_lower_limits_shows_who_would_have_been_warned_and_blocked(
    stage: Stage, tmp_path: Path
) -> None:
    (tmp_path / "quotas.yaml").write_text(f"""
teams:
  research: {{daily_limit: 4}}
users:
  "{ALICE.quota_key}": {{daily_limit: 2}}
  "{BOB.quota_key}": {{daily_limit: 5}}
  "{FAY.quota_key}": {{team: research}}
  "{GUS.quota_key}": {{team: research}}
""")
    apply_quotas(stage.replay, stage.redis, Keys(REPLAY_PREFIX), tmp_path / "quotas.yaml", "unassigned")
    # bob's 3 calls reach 60 % of 5; fay's and gus's 3 reach the team's 4 at gus's second call.
    events = (calls(ALICE, [NOW - timedelta(minutes=m) for m in (9, 8, 7)], seed=1)
              + calls(BOB, [NOW - timedelta(minutes=m) for m in (9, 8, 7)], seed=2)
              + calls(FAY, [NOW - timedelta(minutes=m) for m in (6, 5)], seed=3)
              + calls(GUS, [NOW - timedelta(minutes=m) for m in (4, 3)], seed=4))
    for replay in (False, True):
        stage.consumer(replay=replay).processor.process(in_order(events))
    assert stage.rows(stage.live, "SELECT COUNT(*) FROM decisions") == [(0,)]  # the live limits: nothing

    section = outcomes_section(stage.replay, stage.period)

    at = {m: (NOW - timedelta(minutes=m)).isoformat() for m in range(10)}
    assert [(r["principal"], r["outcome"], r["scope"], r["subject"], r["limit"], r["percent"], r["first_warned_at"],
             r["blocked_at"]) for r in section.as_dicts()] == [
        (ALICE.quota_key, "blocked", "user", ALICE.quota_key, 2, 100, at[8], at[8]),
        (FAY.quota_key, "blocked", "team", "research", 4, 100, at[4], at[3]),
        (GUS.quota_key, "blocked", "team", "research", 4, 100, at[4], at[3]),
        (BOB.quota_key, "warned", "user", BOB.quota_key, 5, 60, at[7], None)]
