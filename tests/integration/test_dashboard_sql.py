"""The dashboard's MySQL panels run on the real schema and count what they say."""

from __future__ import annotations

import json
from pathlib import Path

import pymysql

from consumer.assembly import ConsumerParts
from devtools.simulate import Person
from tests.conftest import DAY, NOW, envelope, records

DASHBOARD = Path(__file__).parents[2] / "infra" / "grafana" / "dashboards" / "bedrock-usage-control.json"


def test_usage_per_team_and_top_users_queries(make_consumer, mysql: pymysql.connections.Connection) -> None:  # type: ignore[no-untyped-def]
    consumer: ConsumerParts = make_consumer()
    people = [Person("ana", sso=False), Person("li", sso=False)]
    events = [envelope(people[0], NOW, seed=i) for i in range(3)] + [envelope(people[1], NOW, seed=9)]
    consumer.processor.process(records(events))
    panels = {p["title"]: p for p in json.loads(DASHBOARD.read_text())["panels"]}
    results = {}
    for title in ("Usage per team today", "Top users today"):
        with mysql.cursor() as cur:
            # The panels use the database's CURDATE(): pin it to the events' day for the test.
            cur.execute(panels[title]["targets"][0]["rawSql"].replace("CURDATE()", "%s"),
                        (DAY,) * panels[title]["targets"][0]["rawSql"].count("CURDATE()"))
            results[title] = cur.fetchall()
        mysql.commit()
    assert [(team, int(requests)) for team, requests, _ in results["Usage per team today"]] == [("unassigned", 4)]
    assert [(int(n)) for _, _, n in results["Top users today"]] == [3, 1]
