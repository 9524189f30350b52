"""The dashboard and the alert rules use only metrics the code exports, and cover what operators watch."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from consumer.metrics import ConsumerMetrics
from enforcement.metrics import EnforcerMetrics
from notifier.metrics import NotifierMetrics

INFRA = Path(__file__).parents[2] / "infra"
DASHBOARD = INFRA / "grafana" / "dashboards" / "bedrock-usage-control.json"
RULES = INFRA / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\bbedrock_usage_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported() -> set[str]:
    registry = CollectorRegistry()
    ConsumerMetrics(registry), EnforcerMetrics(registry), NotifierMetrics(registry)
    names = set()
    for family in registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"] if "expr" in t]


def rule_exprs() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r["expr"] for g in groups for r in g["rules"]}


def test_every_metric_the_dashboard_and_the_rules_use_is_exported() -> None:
    names = exported()
    used = {m for expr in [*dashboard_exprs(), *rule_exprs().values()] for m in METRIC.findall(expr)}
    assert used, "no metric found: the pattern or the files are wrong"
    assert used <= names, f"not exported by the code: {sorted(used - names)}"


def test_the_dashboard_shows_what_operators_watch() -> None:
    text = " ".join(dashboard_exprs())
    for metric in ("bedrock_usage_records_total", 'outcome="new"', "bedrock_usage_millis_behind_latest",
                   'outcome="duplicate"', "bedrock_usage_dead_letters_total", "bedrock_usage_decisions_total",
                   "bedrock_usage_enforcer_denied_people", "bedrock_usage_enforcer_decision_to_deny_seconds_bucket",
                   "bedrock_usage_notifier_sent_total", "bedrock_usage_notifier_failed_total"):
        assert metric in text, metric
    sql = [t["rawSql"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"] if "rawSql" in t]
    assert any("GROUP BY team" in q for q in sql) and any("LIMIT 20" in q for q in sql)  # per team, top users


def test_the_alerts_cover_lag_silence_dead_letters_enforcement_notifier_and_down() -> None:
    assert set(rule_exprs()) >= {
        "BedrockUsageConsumerLagHigh", "BedrockUsageNoEventsInWorkingHours", "BedrockUsageDeadLettersGrowing",
        "BedrockUsageEnforcementRefusals", "BedrockUsageEnforcementFailing", "BedrockUsageNotifierDeadMessages",
        "BedrockUsageServiceDown"}
