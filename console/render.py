"""Rendering pages: one jinja2 environment (autoescape on), the filters the templates share (dollars,
counts, instants the browser shows in the viewer's time zone), and the CSRF cookie a page's forms need."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from bedrock_usage.quota import format_dollars
from console.access import Viewer
from console.deps import CSRF_COOKIE, CSRF_FIELD, csrf_token

_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def money(value: Decimal | int | None) -> str:
    if value is None:
        return "—"
    return format_dollars(Decimal(value))


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def instant(value: str | datetime | None) -> Markup:
    """A <time> the page's script rewrites in the viewer's zone; the text before it runs is UTC."""
    if value is None:
        return Markup("—")
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    text = at.strftime("%Y-%m-%d %H:%M UTC")
    return Markup(f'<time datetime="{escape(at.isoformat())}">{escape(text)}</time>')


def used_of(used: Decimal | int, limit: Decimal | int | None, dollars: bool = False) -> str:
    shown = money(used) if dollars else count(int(used))
    if limit is None:
        return shown
    return f"{shown} / {money(limit) if dollars else count(int(limit))}"


def to_json(value: Any) -> Markup:
    """Data for a chart, in an attribute (escaped by the template)."""
    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            return float(o)  # a chart's bar height: display only, never summed again
        if isinstance(o, date | datetime):
            return o.isoformat()
        raise TypeError(type(o))
    return Markup(escape(json.dumps(value, default=default)))


def query(request: Request, **changes: Any) -> str:
    """The current page's query string with some parameters changed (sort links, pages)."""
    params = {k: v for k, v in request.query_params.items() if k not in changes}
    params.update({k: v for k, v in changes.items() if v not in (None, "")})
    return "?" + urlencode(params)


_ENV.filters.update(usd=money, count=count, instant=instant, tojson_attr=to_json)
_ENV.globals.update(used_of=used_of, query=query, CSRF_FIELD=CSRF_FIELD)


def page(request: Request, template: str, viewer: Viewer | None, **context: Any) -> str:
    settings = request.app.state.settings
    return _ENV.get_template(template).render(
        request=request, viewer=viewer, csrf=csrf_token(request), quota_timezone=settings.quota_timezone.key,
        nav=request.url.path, **context)


def html(request: Request, template: str, viewer: Viewer | None, status: int = 200, **context: Any) -> HTMLResponse:
    response = HTMLResponse(page(request, template, viewer, **context), status_code=status)
    new = getattr(request.state, "new_csrf", None)
    if new:
        # Read by no script (the forms carry it server-rendered); Strict: never sent from another site.
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                            path="/")
    return response
