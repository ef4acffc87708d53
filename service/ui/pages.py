"""Rendering workspace pages: the template environment, the signed-in officer, and problem pages."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from service.db import get_session, run_db_work
from service.keys.models import Role
from service.problems import CsrfRejected, Forbidden, SignInRequired
from service.ui import sessions
from service.ui.charts import percent

PACKAGE = Path(str(resources.files("service.ui")))
templates = Jinja2Templates(directory=str(PACKAGE / "templates"))
templates.env.globals["percent"] = percent
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True

READERS = frozenset({Role.requester, Role.reviewer, Role.admin})
"""Roles that read their tenant's assessments."""
REVIEWERS = frozenset({Role.reviewer, Role.admin})


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, str) and "T" in value:
        try:
            return _date(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    return "" if value is None else str(value)


templates.env.filters["when"] = _date


async def current_session(request: Request, session: Annotated[Session, Depends(get_session)]) -> sessions.OpenSession:
    """The signed-in officer's session; without one, the browser is sent to sign in."""
    found = await run_db_work(request, sessions.find_session, session, request.cookies.get(sessions.COOKIE))
    if found is None:
        raise SignInRequired()
    request.state.tenant = found.principal.tenant_name
    request.state.ui_session = found
    return found


SignedIn = Annotated[sessions.OpenSession, Depends(current_session)]


def require_roles(signed_in: sessions.OpenSession, roles: frozenset[Role], what: str) -> None:
    """403 (as a page) unless the officer's role is one of `roles`."""
    if signed_in.principal.role not in roles:
        names = ", ".join(sorted(r.value for r in roles))
        raise Forbidden(f"The role '{signed_in.principal.role.value}' may not {what}; it needs one of: {names}.")


async def check_csrf(request: Request, expected: str | None) -> dict[str, Any]:
    """The posted form, once its CSRF token matches `expected`; refused (403) otherwise."""
    form = await request.form()
    presented = form.get("csrf_token")
    if not sessions.tokens_match(expected, presented if isinstance(presented, str) else None):
        raise CsrfRejected()
    return {key: form.getlist(key) if len(form.getlist(key)) > 1 else value for key, value in form.items()}


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    signed_in: sessions.OpenSession | None = None,
) -> Response:
    """A page from `name`, with the officer's session (for the menu and the forms' CSRF token)."""
    signed_in = signed_in or getattr(request.state, "ui_session", None)
    return templates.TemplateResponse(
        request,
        name,
        {"signed_in": signed_in, "roles": Role, "path": request.url.path, **(context or {})},
        status_code=status,
    )


def problem_page(request: Request, problem: dict[str, Any]) -> Response:
    """A problem answered as a page: sign-in for a missing session, otherwise the error with what to do."""
    if problem["status"] == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/sign-in?next={quote(target, safe='')}", status_code=303)
    return render(request, "problem.html", {"problem": problem}, status=problem["status"])
