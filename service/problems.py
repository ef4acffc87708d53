"""Every error the service answers with, as RFC 9457 problem details, mapped in this one module.

Route code raises a `Problem` (or lets a typed engine error propagate); the handlers registered by
`install` turn those, FastAPI's validation errors and Starlette's HTTP errors into
`application/problem+json`. Middleware that answers before routing uses `problem_response` directly.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import get_route_path

from risk_rules.errors import ModelArtifactError, ReferenceDataError, RuleSetError, TravelriskError
from service.field_errors import field_errors

PROBLEM_JSON = "application/problem+json"
DATABASE_RETRY_AFTER_SECONDS = 5
TYPE_PREFIX = "urn:travelrisk:problem:"

log = logging.getLogger("travelrisk.errors")

T = TypeVar("T")


class FieldError(BaseModel):
    """One invalid input: where it is and what to fix."""

    field: str = Field(
        description="Dotted path of the field, e.g. `trip.legs.0.depart` (body fields are given from the"
        " body's root; an empty string is the body itself).",
        examples=["trip.legs.0.depart"],
    )
    message: str = Field(examples=["depart (2018-12-04) is before arrive (2018-12-05)"])
    location: str = Field(
        default="body", description="Where the field is: body, query, path or header.", examples=["body"]
    )


class ProblemDetails(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str = Field(description="A URI naming the kind of problem; `about:blank` for plain HTTP errors.")
    title: str
    status: int
    detail: str
    instance: str | None = Field(default=None, description="The request path that failed.")
    request_id: str | None = Field(default=None, description="Quote it when asking about this request.")
    errors: list[FieldError] | None = Field(default=None, description="Every invalid field, for 400/422.")


class Problem(HTTPException):
    """An HTTP error carrying problem details. Subclasses name the common ones."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=detail, headers=dict(headers) if headers else None)
        self.kind = kind
        self.title = title or HTTPStatus(status).phrase
        self.errors = [dict(e) for e in errors] if errors is not None else None
        # Problem-specific members of the body (RFC 9457 extensions), e.g. the current revision.
        self.extensions = dict(extensions) if extensions else None


class Unauthorized(Problem):
    def __init__(self, detail: str) -> None:
        super().__init__(401, detail, headers={"WWW-Authenticate": 'Bearer realm="travelrisk"'})


class Forbidden(Problem):
    def __init__(self, detail: str, *, kind: str | None = None, title: str | None = None) -> None:
        super().__init__(403, detail, kind=kind, title=title)


class NotFound(Problem):
    def __init__(self, detail: str) -> None:
        super().__init__(404, detail)


def found_or_404(row: T | None, detail: str) -> T:
    """`row` when a lookup found one; otherwise the 404 that says, in `detail`, what was not found."""
    if row is None:
        raise NotFound(detail)
    return row


def owned_or_404(row: T | None, label: str, ident: str) -> T:
    """`row` when the caller's tenant has it; otherwise "No <label> '<ident>' in your tenant." (404).

    Another tenant's row is looked up as none, so it answers the same 404 and is not revealed. `ident` is
    echoed as given: callers cut it to the id column's length, so an overlong path is not repeated whole.
    """
    return found_or_404(row, f"No {label} '{ident}' in your tenant.")


class Conflict(Problem):
    def __init__(self, detail: str, *, kind: str, title: str, extensions: Mapping[str, Any] | None = None) -> None:
        super().__init__(409, detail, kind=kind, title=title, extensions=extensions)


class StaleRevision(Conflict):
    """A write based on an older revision of an assessment than the current one."""

    def __init__(self, assessment_id: str, read: int, current: int) -> None:
        super().__init__(
            f"You read revision {read} of assessment '{assessment_id}', but it has been re-scored: the current"
            f" revision is {current}. Read revision {current} and decide on it.",
            kind="stale-revision",
            title="Stale revision",
            extensions={"current_revision": current},
        )


class ReviewNotOpen(Conflict):
    """A decision on an assessment whose review state accepts none (not required, or already decided)."""

    def __init__(self, detail: str, state: str) -> None:
        super().__init__(detail, kind="review-not-open", title="Review not open", extensions={"review_state": state})


class ReviewForbidden(Forbidden):
    """A decision this key may not make on this assessment (four-eyes rules, no holder)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, kind="review-forbidden", title="Review not allowed")


class ContentTooLarge(Problem):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds the limit of {limit} bytes.")


class UnsupportedMediaType(Problem):
    def __init__(self, detail: str) -> None:
        super().__init__(415, detail)


class MalformedJson(Problem):
    """A body that is not JSON we accept: `reason` says what is wrong and where."""

    def __init__(self, reason: str, *, kind: str = "malformed-json", title: str = "Malformed JSON") -> None:
        super().__init__(
            400,
            f"The body is not valid JSON: {reason}.",
            kind=kind,
            title=title,
            errors=[{"field": "", "message": reason, "location": "body"}],
        )


class InvalidInput(Problem):
    def __init__(self, detail: str, errors: Sequence[Mapping[str, str]]) -> None:
        super().__init__(422, detail, kind="invalid-input", title="Invalid input", errors=errors)


class SignInRequired(Unauthorized):
    """A workspace page asked for without a valid session: the browser is sent to the sign-in page."""

    def __init__(self) -> None:
        super().__init__("Sign in with your API key to open this page.")


class CsrfRejected(Forbidden):
    """A workspace form posted without the token of the session (or of the sign-in form) it came from."""

    def __init__(self) -> None:
        super().__init__(
            "The form was refused: it did not carry this session's security token. Reload the page and send"
            " the form again."
        )


class TooManyRequests(Problem):
    def __init__(self, detail: str, *, retry_after: int, headers: Mapping[str, str]) -> None:
        super().__init__(
            429,
            detail,
            kind="rate-limited",
            title="Too many requests",
            headers={**headers, "Retry-After": str(retry_after)},
        )


class ServiceUnavailable(Problem):
    def __init__(self, detail: str, *, kind: str = "unavailable") -> None:
        super().__init__(503, detail, kind=kind, title="Service unavailable", headers={"Retry-After": "5"})


# ---------------------------------------------------------------------------------------------
# Building responses


def problem_body(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    title: str | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem-details document for one error; `extensions` adds problem-specific members."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + kind if kind else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if request_id:
        body["request_id"] = request_id
    if errors is not None:
        body["errors"] = [dict(e) for e in errors]
    if extensions:
        body.update(extensions)
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    scope: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    **fields: Any,
) -> Response:
    """An `application/problem+json` response; `scope` supplies the request path and id."""
    instance = scope.get("path") if scope else None
    request_id = scope.get("state", {}).get("request_id") if scope else None
    body = problem_body(status, detail, instance=instance, request_id=request_id, **fields)
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=PROBLEM_JSON)


# ---------------------------------------------------------------------------------------------
# Validation errors → field paths


def invalid_detail(errors: Sequence[Mapping[str, str]]) -> str:
    """The `detail` line of a 422: how many fields are invalid, and the first five of them."""
    count = len(errors)
    detail = f"{count} invalid field{'s' if count != 1 else ''}: " + "; ".join(
        f"{e['field'] or e['location']}: {e['message']}" for e in errors[:5]
    )
    if count > 5:
        detail += f"; and {count - 5} more"
    return detail


def invalid_cursor(
    reason: Exception | str, detail: str = "The cursor is not valid: pass `next_cursor` from a previous page unchanged."
) -> InvalidInput:
    """A 422 on the `cursor` query parameter: `reason` says what is wrong with it, `detail` what to do."""
    return InvalidInput(detail, [{"field": "cursor", "message": str(reason), "location": "query"}])


def invalid_input(errors: Iterable[Mapping[str, Any]]) -> InvalidInput:
    """A 422 for errors found after FastAPI parsed the request, worded as FastAPI's own.

    `errors` are in Pydantic's form: `loc` starts with the location (`("body", "ended_on")`), `msg` says
    what to fix.
    """
    formed = field_errors(errors)
    return InvalidInput(invalid_detail(formed), formed)


# ---------------------------------------------------------------------------------------------
# Handlers

UI_PREFIX = "/ui"
ProblemPage = Callable[[Request, dict[str, Any]], Response]
"""Renders a problem as an HTML page of the workspace (installed by `install(app, problem_page=...)`)."""


def _is_page(request: Request) -> bool:
    path = request.url.path
    return (path == UI_PREFIX or path.startswith(UI_PREFIX + "/")) and not path.startswith(UI_PREFIX + "/static/")


def _answer(
    request: Request, status: int, detail: str, *, headers: Mapping[str, str] | None = None, **fields: Any
) -> Response:
    """Problem details; for a workspace page, the same problem as an HTML page (a sign-in for a 401)."""
    page: ProblemPage | None = getattr(request.app.state, "problem_page", None)
    if page is not None and _is_page(request):
        body = problem_body(status, detail, instance=request.url.path, **fields)
        return page(request, body)
    return problem_response(status, detail, scope=request.scope, headers=headers, **fields)


async def _problem_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return _answer(
        request,
        exc.status_code,
        str(exc.detail),
        headers=exc.headers,
        kind=exc.kind,
        title=exc.title,
        errors=exc.errors,
        extensions=exc.extensions,
    )


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).description
    if status == 404 and exc.detail == HTTPStatus(404).phrase:
        detail = f"There is no resource at {request.url.path}."
    elif status == 405:
        # Starlette answers from the first route that matched the path, which knows only its own method:
        # the path's methods are those of every route that matches it.
        allow = ", ".join(allowed_methods(request))
        if request.method == "OPTIONS":
            # OPTIONS asks what the path supports: that is an answer, not an error.
            return Response(status_code=204, headers={"Allow": allow})
        detail = f"{request.method} is not allowed on {request.url.path}; it allows {allow}."
        return _answer(request, status, detail, headers={**(exc.headers or {}), "Allow": allow})
    return _answer(request, status, detail, headers=exc.headers)


def method_index(routes: Iterable[Any]) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """Each route's path pattern and methods (routes without a path, such as mounts, are skipped)."""
    return [
        (route.path_regex, frozenset(route.methods))
        for route in routes
        if getattr(route, "path_regex", None) is not None and getattr(route, "methods", None)
    ]


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (from `app.state.route_methods`, built by
    `method_index`), OPTIONS included."""
    path = get_route_path(request.scope)
    methods = {"OPTIONS"}
    for pattern, route_methods in getattr(request.app.state, "route_methods", ()):
        if pattern.match(path):
            methods.update(route_methods)
    return sorted(methods)


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    if any(tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes) for e in raw):
        return problem_response(
            415, "Send the body as JSON with `Content-Type: application/json`.", scope=request.scope
        )
    errors = field_errors(raw)
    for error in errors:
        if error["field"] == "" and error["location"] == "body" and error["message"] == "Field required":
            error["message"] = "A JSON request body is required."
    return _answer(request, 422, invalid_detail(errors), kind="invalid-input", title="Invalid input", errors=errors)


async def _engine_unavailable_handler(request: Request, exc: Exception) -> Response:
    log.error("scoring engine unavailable", extra={"error_type": type(exc).__name__})
    return problem_response(
        503,
        "The scoring model or rule set is not available; try again later.",
        scope=request.scope,
        headers={"Retry-After": "5"},
        kind="scoring-unavailable",
        title="Service unavailable",
    )


async def _database_unavailable_handler(request: Request, exc: Exception) -> Response:
    # Only the error's type: its message can quote the statement's parameters, i.e. request data.
    log.error("database unavailable", extra={"error_type": type(exc).__name__})
    return problem_response(
        503,
        "The database is not available; try again later.",
        scope=request.scope,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        kind="database-unavailable",
        title="Service unavailable",
    )


async def _unexpected_handler(request: Request, exc: Exception) -> Response:
    # The traceback is logged without the exception's message, which may quote request data.
    log.error(
        "unhandled error",
        extra={"error_type": type(exc).__name__, "traceback": "".join(traceback.format_tb(exc.__traceback__))},
    )
    return _answer(
        request,
        500,
        "An unexpected error occurred; it has been logged.",
        kind="internal-error",
        title="Internal Server Error",
    )


def install(app: FastAPI, problem_page: ProblemPage | None = None) -> None:
    """Register the problem-details handlers on `app`; `problem_page` answers workspace pages in HTML."""
    app.state.problem_page = problem_page
    app.add_exception_handler(Problem, _problem_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    for engine_error in (ModelArtifactError, RuleSetError, ReferenceDataError):
        app.add_exception_handler(engine_error, _engine_unavailable_handler)
    # The database cannot be reached or used (stopped, unreachable, its file gone, locked past the busy
    # timeout, no pooled connection free in time): the request may succeed later, so 503, not 500.
    for database_error in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(database_error, _database_unavailable_handler)
    app.add_exception_handler(TravelriskError, _unexpected_handler)
    app.add_exception_handler(Exception, _unexpected_handler)


def openapi_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem-details errors for the given statuses."""
    descriptions = {
        400: "Malformed JSON.",
        401: "No key, or an unknown or revoked key.",
        403: "The key's role may not do this.",
        404: "No such object in the caller's tenant.",
        409: "The Idempotency-Key was used with a different body, or the object changed (see `type`).",
        413: "The body is larger than the limit.",
        415: "The body is not JSON.",
        422: "Invalid input; `errors` lists every invalid field.",
        429: "Over a rate limit: the key's requests, or the address's failed authentications; see `Retry-After`.",
        503: "The database or the model is not available.",
    }
    return {
        status: {
            "description": descriptions.get(status, HTTPStatus(status).phrase),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        }
        for status in statuses
    }
