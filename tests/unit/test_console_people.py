"""The People table's search, filters, sort and pages, and the Block form's checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from console.actions import block_request
from console.settings import ConsoleSettings
from console.usage_view import PeopleQuery, PersonRow, page_of, select_people


def _row(key: str, team: str, *, requests: int = 0, month_cost: str = "0", state: str = "ok",
         blocked: bool = False, month: bool = True, name: str | None = None) -> PersonRow:
    return PersonRow(key, name, team, "team", requests, 0, requests, Decimal(0), Decimal(month_cost), 100, 1000,
                     None, None, requests, "daily_requests", state, blocked, requests > 0, month)


ROWS = [_row("arn:aws:iam::1:user/ana", "a", requests=5, month_cost="3.5", name="Ana"),
        _row("arn:aws:iam::1:user/bo", "a", requests=9, month_cost="1", state="warning"),
        _row("sso:cy@example.com", "b", requests=1, month_cost="7", state="exceeded", blocked=True),
        _row("arn:aws:iam::1:user/idle", "b", month=False)]


def _keys(rows: list[PersonRow]) -> list[str]:
    return [r.principal.rsplit("/", 1)[-1].removeprefix("sso:") for r in rows]


def test_search_filter_sort_and_pages() -> None:
    assert _keys(select_people(ROWS, PeopleQuery())) == ["cy@example.com", "ana", "bo"]  # month cost, desc
    assert _keys(select_people(ROWS, PeopleQuery(active="all", sort="principal", order="asc"))) == \
        ["ana", "bo", "idle", "cy@example.com"]
    assert _keys(select_people(ROWS, PeopleQuery(team="a", sort="requests"))) == ["bo", "ana"]
    assert _keys(select_people(ROWS, PeopleQuery(state="blocked"))) == ["cy@example.com"]
    assert _keys(select_people(ROWS, PeopleQuery(state="warning"))) == ["bo"]
    assert _keys(select_people(ROWS, PeopleQuery(q="ANA"))) == ["ana"]  # the name or the key, any case
    assert _keys(select_people(ROWS, PeopleQuery(active="today", sort="requests", order="asc"))) == \
        ["cy@example.com", "ana", "bo"]
    chosen = select_people(ROWS, PeopleQuery(active="all", sort="principal", order="asc", page_size=3))
    pages = [page_of(chosen, PeopleQuery(page=n, page_size=3)) for n in (1, 2)]
    assert [len(p) for p in pages] == [3, 1] and [*pages[0], *pages[1]] == chosen  # no row twice, none missed


@pytest.mark.parametrize("query", [PeopleQuery(sort="salary"), PeopleQuery(order="up"), PeopleQuery(state="sad"),
                                   PeopleQuery(page=0), PeopleQuery(page_size=5000), PeopleQuery(active="never")])
def test_bad_queries_are_refused(query: PeopleQuery) -> None:
    with pytest.raises(ValueError):
        query.checked()


def test_the_block_form_is_checked_before_anything_is_done() -> None:
    settings = ConsoleSettings.from_env({}, CONSOLE_AUTH="local")
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    key = "arn:aws:iam::1:user/ana"
    assert block_request(settings, key, mode="for", duration="4h", reason=" loop ", now=now).until == \
        now + timedelta(hours=4)
    assert block_request(settings, key, mode="indefinite", reason="x", now=now).until is None
    # Until 12:00 in the viewer's zone (New York): 17:00 UTC.
    assert block_request(settings, key, mode="until", until="2026-12-01T12:00", viewer_zone="America/New_York",
                         reason="x", now=now).until == datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    # The next daily reset: midnight in QUOTA_TIMEZONE (Europe/Madrid, UTC+1 in December).
    assert block_request(settings, key, mode="day", reason="x", now=now).until == datetime(2026, 12, 1, 23, 0,
                                                                                           tzinfo=UTC)
    for fields, why in (({"mode": "for", "duration": "4 hours"}, "duration"),
                        ({"mode": "until", "until": "2026-11-30T09:00"}, "past"),
                        ({"mode": "until", "until": "soon"}, "date and time"), ({"mode": "someday"}, "how long"),
                        ({"mode": "until", "until": "2026-12-02T09:00", "viewer_zone": "Mars/Base"}, "time zone")):
        with pytest.raises(ValueError, match=why):
            block_request(settings, key, reason="x", now=now, **fields)
    with pytest.raises(ValueError, match="reason is required"):
        block_request(settings, key, mode="day", reason="  ", now=now)
    with pytest.raises(ValueError, match="at most 512"):
        block_request(settings, key, mode="day", reason="x" * 513, now=now)
