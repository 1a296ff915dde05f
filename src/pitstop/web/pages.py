"""What every dashboard page shares: the router its pages join, the templates, the logged-in caller's
key, posted forms, rendering and redirects. The page modules (routes, models, runs) import it; it
imports none of them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from pitstop.app import Pitstop
from pitstop.core.types import Role
from pitstop.errors import NotFound, PitstopError
from pitstop.storage.repos.keys import ApiKey
from pitstop.web.session import COOKIE, Sessions

log = logging.getLogger("pitstop.web")
HERE = Path(__file__).parent
PREFIX = "/ui"
MAX_FORM_BYTES = 64 * 1024
CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; form-action 'self'"
T = TypeVar("T")

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
router = APIRouter(prefix=PREFIX, include_in_schema=False)


class Refused(Exception):
    """A page or action the caller may not have: login again (401) or not this role (403), or bad input (400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def pitstop_of(request: Request) -> Pitstop:
    pitstop: Pitstop = request.app.state.pitstop
    return pitstop


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.web_sessions
    return sessions


def caller_key(request: Request, role: Role = Role.VIEWER) -> ApiKey:
    """The key of the logged-in caller, who must have `role`."""
    key = sessions_of(request).key(request.cookies.get(COOKIE), pitstop_of(request).clock.now())
    if key is None:
        raise Refused(401, "log in")
    if not key.role.allows(role):
        raise Refused(403, f"this needs the {role.value} role; you are logged in as {key.role.value}")
    request.state.actor = f"web:{key.name}:{key.prefix}"
    return key


async def posted_form(request: Request, role: Role) -> dict[str, str]:
    """The posted form of a logged-in caller of `role`, its CSRF token checked."""
    caller_key(request, role)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Refused(413, "the form is too large")
    try:
        fields = {k: v[0] for k, v in parse_qs(body.decode(), max_num_fields=50).items()}
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "the form could not be read") from None
    if not sessions_of(request).csrf_ok(request.cookies.get(COOKIE), fields.get("csrf", "")):
        raise Refused(403, "the form's CSRF token is missing or wrong; reload the page")
    return fields


def form_text(fields: dict[str, str], name: str, *, required: bool = True, limit: int = 2000) -> str:
    value = fields.get(name, "").strip()
    if required and not value:
        raise Refused(400, f"{name} is required")
    if len(value) > limit or any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise Refused(400, f"{name} must be at most {limit} printable characters")
    return value


def page_part(what: str, func: Callable[[], T]) -> T | None:
    """A part of a page: whatever a component can give; None when the component is missing or fails."""
    try:
        return func()
    except Exception:
        log.warning("dashboard: %s unavailable", what, exc_info=True)
        return None


def render(name: str, request: Request, key: ApiKey | None, *, status: int = 200, **context: Any) -> HTMLResponse:
    cookie = request.cookies.get(COOKIE)
    csrf = sessions_of(request).csrf(cookie) if (key and cookie) else ""
    page = templates.get_template(name).render(
        request=request,
        prefix=PREFIX,
        key=key,
        can_act=bool(key and key.role.allows(Role.OPERATOR)),
        csrf=csrf,
        now=pitstop_of(request).clock.now(),
        **context,
    )
    response = HTMLResponse(page, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(path: str) -> RedirectResponse:
    """After a form action: see `path` of the dashboard."""
    return RedirectResponse(f"{PREFIX}{path}", status_code=303)


def run_action(func: Callable[[], object]) -> None:
    """A form's action; pitstop's refusals become the dashboard's (not found 404, anything else 400)."""
    try:
        func()
    except PitstopError as exc:
        raise Refused(404 if isinstance(exc, NotFound) else 400, str(exc)) from None
