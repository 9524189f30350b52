"""What every route depends on: the signed-in viewer (checked on every request), the views, and the check
that a form was posted by the console's own page (cross-site request forgery)."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from console.access import Forbidden, Viewer, viewer_of
from console.auth import ALB_TOKEN_HEADER, SESSION_COOKIE
from console.settings import ConsoleAuth, ConsoleSettings
from console.views import Views

CSRF_COOKIE = "bu_console_csrf"
CSRF_FIELD = "csrf_token"


def current_viewer(request: Request) -> Viewer:
    """The signed-in viewer of a request (a dependency of every page and API route)."""
    state = request.app.state
    settings: ConsoleSettings = state.settings
    if state.verifier is not None:
        identity = state.verifier.identity(request.headers.get(ALB_TOKEN_HEADER))
    else:
        identity = state.login.identity(request.cookies.get(SESSION_COOKIE))
    admins = settings.console_admins
    if settings.console_auth is ConsoleAuth.LOCAL:
        admins = admins | {settings.console_local_admin}
    viewer = viewer_of(identity, admins=admins, admin_groups=settings.console_admin_groups,
                       team_admins=state.team_admins)
    request.state.viewer = viewer
    return viewer


def views(request: Request) -> Views:
    found: Views = request.app.state.views
    return found


# What a route declares to get the signed-in viewer and the views.
Signed = Annotated[Viewer, Depends(current_viewer)]
Read = Annotated[Views, Depends(views)]


def csrf_token(request: Request) -> str:
    """The token the page's forms carry: the cookie's (set on the first page), or a new one."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return str(token)


def check_csrf(request: Request, submitted: str) -> None:
    """A state-changing form must carry the token of its own cookie (a page of another site cannot read
    it: double submit), and, when the browser says where it comes from, come from this site."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not submitted or not secrets.compare_digest(cookie, submitted):
        raise Forbidden("the form's security token is missing or stale: reload the page and try again")
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden("a form posted from another site is refused")
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Forbidden("a form posted from another site is refused")
