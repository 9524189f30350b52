"""What each page's chart draws, built here rather than in the templates: the labels and series Chart.js
gets (console.js reads them from the canvas's `data-chart`; `hours: true` labels are instants it shows in
the viewer's time zone)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from console.history import CostAnalysis, HourPoint
from console.usage_view import TeamRow
from console.views import TeamSpend

Chart = dict[str, Any]


def spend_by_team(rows: Sequence[TeamSpend]) -> Chart:
    return {"type": "bar", "labels": [r.team for r in rows], "datasets": [
        {"label": "cost this month ($)", "data": [r.cost_month_usd for r in rows]},
        {"label": "cost today ($)", "data": [r.cost_today_usd for r in rows]}]}


def hours(points: Sequence[HourPoint]) -> Chart:
    return {"type": "bar", "hours": True, "labels": [p.hour for p in points], "datasets": [
        {"label": "requests", "data": [p.requests for p in points]},
        {"label": "cost ($)", "data": [p.cost_usd for p in points], "yAxisID": "cost", "type": "line"}]}


def teams_month(rows: Sequence[TeamRow]) -> Chart:
    return {"type": "bar", "labels": [r.team for r in rows],
            "datasets": [{"label": "cost this month ($)", "data": [r.monthly_cost_usd for r in rows]}]}


def cost_by_day(found: CostAnalysis, most: int = 8) -> Chart:
    """Spend by day, stacked by team: the `most` dearest teams, the rest as one."""
    days = sorted(found.by_day_and_team)
    named = [line.key for line in found.by_team[:most]]
    datasets: list[dict[str, Any]] = [
        {"label": team, "data": [found.by_day_and_team[d].get(team, 0) for d in days]} for team in named]
    if len(found.by_team) > most:
        datasets.append({"label": "other teams", "data": [
            sum((v for t, v in found.by_day_and_team[d].items() if t not in named), Decimal(0)) for d in days]})
    return {"type": "bar", "stacked": True, "labels": days, "datasets": datasets}
