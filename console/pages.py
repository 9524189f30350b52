"""The console's pages (HTML). Each reads its view (views.py, the same data the JSON API returns) and
renders a template; the CSV links write the rows the page shows."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from bedrock_usage.quota_file import normalise_key
from console import actions, charts, csv_export, trail
from console.auth import SESSION_COOKIE, NotSignedIn
from console.deps import Read, Signed, check_csrf
from console.history import parse_day
from console.params import audit_query, range_of, zone_of
from console.render import html
from console.usage_view import PeopleQuery

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login(request: Request, token: str = "") -> Response:
    login_ = request.app.state.login
    if login_ is None:
        raise NotSignedIn("sign-in links are for CONSOLE_AUTH=local; here the load balancer signs people in")
    session = login_.redeem(token)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax", secure=request.url.scheme == "https",
                        max_age=login_.SESSION_SECONDS, path="/")
    return response


@router.post("/logout")
def logout(request: Request, viewer: Signed, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token)
    if request.app.state.login is not None:
        request.app.state.login.sign_out(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/signed-out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/signed-out")
def signed_out(request: Request) -> Response:
    return html(request, "error.html", None, title="Signed out", detail="You are signed out.", status=200)


@router.get("/")
def overview(request: Request, viewer: Signed, read: Read) -> Response:
    data = read.overview(viewer)
    return html(request, "overview.html", viewer, data=data, chart=charts.spend_by_team(data.spend_by_team))


@router.get("/people")
def people(request: Request, viewer: Signed, read: Read, q: str = "", team: str = "", state: str = "",
           active: str = "month", sort: str = "monthly_cost", order: str = "desc", page: int = 1,
           page_size: int = 50) -> Response:
    query = PeopleQuery(q, team, state, active, sort, order, page, page_size).checked()
    return html(request, "people.html", viewer, data=read.people(viewer, query), q=query)


@router.get("/people.csv")
def people_csv(viewer: Signed, read: Read, q: str = "", team: str = "", state: str = "", active: str = "month",
               sort: str = "monthly_cost", order: str = "desc", page: int = 1, page_size: int = 50,
               every_page: bool = False) -> Response:
    query = PeopleQuery(q, team, state, active, sort, order, page, page_size).checked()
    found = read.people(viewer, query, every_page=every_page)
    return csv_export.response(f"people-{found.day}.csv", csv_export.people(found.rows))


@router.get("/person")
def person(request: Request, viewer: Signed, read: Read, key: str, day: str = "", done: str = "") -> Response:
    key = normalise_key(key)
    when = parse_day(day, read.snapshots.today())
    # What an action did, by code (a link cannot make the page say something that did not happen).
    notice = {"blocked": "Blocked.", "unblocked": "Unblocked.",
              "not-blocked": "NOT blocked: a protected principal, or the deny could not be scoped to them alone"
                             " (see the audit trail below)."}.get(done, "")
    data = read.person(viewer, key, when)
    return html(request, "person.html", viewer, data=data, notice=notice, chart=charts.hours(data.hours),
                yesterday=(when - timedelta(days=1)).isoformat(), tomorrow=(when + timedelta(days=1)).isoformat())


@router.post("/person/block")
def block(request: Request, viewer: Signed, read: Read, key: Annotated[str, Form()],
          step: Annotated[str, Form()] = "review", mode: Annotated[str, Form()] = "day",
          duration: Annotated[str, Form()] = "", until: Annotated[str, Form()] = "",
          viewer_zone: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
          csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token)
    key = normalise_key(key)
    read.require_actionable(viewer, key)  # a team admin acts on their own teams' people only, nobody on themselves
    settings = request.app.state.settings
    wanted = actions.block_request(settings, key, mode=mode, duration=duration, until=until,
                                   viewer_zone=viewer_zone, reason=reason)
    if step != "confirm":
        return html(request, "confirm.html", viewer, action="block", key=key, request_=wanted,
                    summary=wanted.describe(settings.quota_timezone), preview=actions.preview_block(settings, wanted),
                    fields={"mode": mode, "duration": duration, "until": until, "viewer_zone": viewer_zone,
                            "reason": wanted.reason})
    result = actions.block(settings, viewer, wanted)
    done = "not-blocked" if actions.refused(result) else "blocked"
    return RedirectResponse(f"/person?{urlencode({'key': key, 'done': done})}", status_code=303)


@router.post("/person/unblock")
def unblock(request: Request, viewer: Signed, read: Read, key: Annotated[str, Form()],
            step: Annotated[str, Form()] = "review", reason: Annotated[str, Form()] = "",
            protect: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token)
    key = normalise_key(key)
    read.require_actionable(viewer, key)
    settings = request.app.state.settings
    shielded = protect in ("on", "yes", "true", "1")
    if step != "confirm":
        reason = actions.checked_reason(reason)
        summary = f"unblock {key}" + (" and protect them from quota blocks until the period ends" if shielded else "")
        return html(request, "confirm.html", viewer, action="unblock", key=key, summary=summary, preview=[
            "Quotas may block them again at once if they are still over one." if not shielded else
            "Quotas will not block them again before the end of the current period."],
            fields={"reason": reason, "protect": "on" if shielded else ""})
    actions.unblock(settings, viewer, key, reason=reason, protect=shielded)
    return RedirectResponse(f"/person?{urlencode({'key': key, 'done': 'unblocked'})}", status_code=303)


@router.get("/teams")
def teams(request: Request, viewer: Signed, read: Read) -> Response:
    rows = read.teams(viewer)
    return html(request, "teams.html", viewer, rows=rows, day=read.snapshots.today().isoformat(),
                chart=charts.teams_month(rows))


@router.get("/teams.csv")
def teams_csv(viewer: Signed, read: Read) -> Response:
    return csv_export.response(f"teams-{read.snapshots.today().isoformat()}.csv", csv_export.teams(read.teams(viewer)))


@router.get("/team")
def team(request: Request, viewer: Signed, read: Read, name: str, day: str = "") -> Response:
    when = parse_day(day, read.snapshots.today())
    data = read.team(viewer, name, when)
    return html(request, "team.html", viewer, data=data, chart=charts.hours(data.hours),
                yesterday=(when - timedelta(days=1)).isoformat(), tomorrow=(when + timedelta(days=1)).isoformat())


@router.get("/cost")
def cost(request: Request, viewer: Signed, read: Read, first: Annotated[str, Query(alias="from")] = "",
         last: Annotated[str, Query(alias="to")] = "", team: str = "") -> Response:
    start, end = range_of(read, first, last, 0)
    teams_ = [t.team for t in read.teams(viewer)]
    found = read.cost(viewer, start, end, team)
    return html(request, "cost.html", viewer, data=found, team=team, teams=teams_, chart=charts.cost_by_day(found))


@router.get("/cost.csv")
def cost_csv(viewer: Signed, read: Read, first: Annotated[str, Query(alias="from")] = "",
             last: Annotated[str, Query(alias="to")] = "", team: str = "") -> Response:
    start, end = range_of(read, first, last, 0)
    found = read.cost(viewer, start, end, team)
    return csv_export.response(f"cost-{found.first}-{found.last}.csv", csv_export.cost(found))


@router.get("/hourly")
def hourly(request: Request, viewer: Signed, read: Read, first: Annotated[str, Query(alias="from")] = "",
           last: Annotated[str, Query(alias="to")] = "", team: str = "", tz: str = "") -> Response:
    start, end = range_of(read, first, last, 14)
    zone = zone_of(tz, read)
    teams_ = [t.team for t in read.teams(viewer)]
    return html(request, "hourly.html", viewer, data=read.hourly(viewer, start, end, zone, team), team=team,
                teams=teams_)


@router.get("/blocks")
def blocks(request: Request, viewer: Signed, read: Read, principal: str = "", actor: str = "", action: str = "",
           since: str = "", until: str = "") -> Response:
    query = audit_query(read, principal=principal, actor=actor, action=action, since=since, until=until)
    return html(request, "blocks.html", viewer, data=read.blocks(viewer, query), f=query,
                since=since, until=until)


@router.get("/audit.csv")
def audit_csv(viewer: Signed, read: Read, principal: str = "", actor: str = "", action: str = "", since: str = "",
              until: str = "") -> Response:
    query = audit_query(read, principal=principal, actor=actor, action=action, since=since, until=until)
    found = read.blocks(viewer, query)
    return csv_export.response("audit.csv", csv_export.audit(found.audit))


@router.get("/blocked.csv")
def blocked_csv(viewer: Signed, read: Read) -> Response:
    found = read.blocks(viewer, trail.AuditQuery(limit=1))
    return csv_export.response("blocked.csv", csv_export.blocked(found.blocked))


@router.get("/services")
def services(request: Request, viewer: Signed, read: Read) -> Response:
    return html(request, "health.html", viewer, data=read.service_health(viewer))
