"""ASGI middleware: request ids, access logs and response headers; the request-body limit; control
characters in path and query parameters.

All are plain ASGI (not `BaseHTTPMiddleware`) so they add little per request and see streamed bodies.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from risk_rules.values import control_character
from service.activity import REQUESTS
from service.problems import ContentTooLarge, invalid_detail, problem_response

log = logging.getLogger("travelrisk.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


# HTML that sets no policy of its own (an error page, say) may load nothing and be framed by no one.
DEFAULT_HTML_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
API_PREFIX = "/v1"


def response_headers(scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with the ones every response carries: the request id, `nosniff`, `no-store` on API
    responses (they carry traveller data or vary by key), frame protection and a policy on HTML, and the
    rate limit's headers when the request was counted."""
    state = scope.get("state", {})
    added = [(b"x-request-id", state["request_id"].encode()), (b"x-content-type-options", b"nosniff")]
    names = {name.lower() for name, _ in headers}
    if scope.get("path", "").startswith(API_PREFIX) and b"cache-control" not in names:
        added.append((b"cache-control", b"no-store"))
    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    if content_type.startswith(b"text/html"):
        added.append((b"x-frame-options", b"DENY"))
        if b"content-security-policy" not in names:
            added.append((b"content-security-policy", DEFAULT_HTML_POLICY.encode()))
    rate_limit = state.get("rate_limit_headers")
    if rate_limit and b"ratelimit" not in names:
        added.extend(rate_limit)
    return [*headers, *added]


class RequestContextMiddleware:
    """Gives each request an id (`X-Request-ID`, echoed back), adds the headers every response carries
    (`response_headers`) and logs one line when the request ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = response_headers(scope, list(message.get("headers", [])))
            await send(message)

        # Counted while in flight: background work gives way to requests being served.
        REQUESTS.enter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUESTS.leave()
            route = scope.get("route")
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    # The route template, never the concrete path or query string.
                    "route": getattr(route, "path", None) or "(unmatched)",
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "tenant": state.get("tenant"),
                },
            )


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _REQUEST_ID.fullmatch(candidate) else None
    return None


class BodyLimitMiddleware:
    """Answers 413 for a body over `limit` bytes, before the application parses any of it.

    A declared `Content-Length` over the limit is refused without reading; a streamed (chunked) body is
    counted as it arrives and refused as soon as it passes the limit. `path_limits` gives some paths
    (roster uploads) a limit of their own.
    """

    def __init__(self, app: ASGIApp, limit: int, path_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.path_limits = path_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope.get("path", ""), self.limit)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, send, limit)
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the app's body read: FastAPI re-raises HTTP exceptions unchanged, and
                    # the problem handler (or the except below) answers 413.
                    raise ContentTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except ContentTooLarge:
            if response_started:
                raise
            await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        response = problem_response(
            413,
            f"The request body exceeds the limit of {limit} bytes.",
            scope=scope,
            headers={"Connection": "close"},
        )
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class ControlCharacterMiddleware:
    """Answers 422 for a path or query parameter holding a control character (such as a percent-encoded
    NUL), for every route before it runs: no parameter has a use for one, and PostgreSQL cannot even
    compare with a string holding NUL, where SQLite would. Body fields are checked by their types."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            errors = _control_character_errors(scope)
            if errors:
                response = problem_response(
                    422,
                    invalid_detail(errors),
                    scope=scope,
                    kind="invalid-input",
                    title="Invalid input",
                    errors=errors,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _control_character_errors(scope: Scope) -> list[dict[str, str]]:
    errors = []
    bad = control_character(scope.get("path", ""))
    if bad is not None:
        errors.append({"field": "", "message": f"the path contains the control character {bad}", "location": "path"})
    query = scope.get("query_string", b"")
    # Percent-encoded controls are `%00`-`%1F` and `%7F`; a plain query has none, and costs one search.
    if query and _ENCODED_CONTROL.search(query):
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, errors="replace"):
            bad = control_character(value) or control_character(name)
            if bad is not None:
                errors.append(
                    {
                        "field": control_free(name),
                        "message": f"contains the control character {bad}; remove it",
                        "location": "query",
                    }
                )
    return errors


_ENCODED_CONTROL = re.compile(rb"%(?:[01][0-9a-fA-F]|7[fF]|[89][0-9a-fA-F])|[\x00-\x1f\x7f]")


def control_free(value: str) -> str:
    """`value` with its control characters written as `U+XXXX`, fit to be echoed in an error."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", lambda m: f"U+{ord(m.group()):04X}", value)


# Pages run only the package's own scripts and styles, and may not be framed (clickjacking).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self';"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
# Swagger UI and ReDoc set styles from their scripts, and ReDoc searches in a worker it builds from a blob.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    " font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeadersMiddleware:
    """Adds the content security policy of the workspace pages and the API docs to their HTML answers
    (`response_headers` adds `nosniff`, frame protection and a locked-down policy to every other one).

    Workspace pages are also marked `no-store`: they show a tenant's assessments, which a shared browser's
    cache should not keep after sign-out.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    policy = DOCS_POLICY if path in DOCS_PATHS else PAGE_POLICY
                    headers.append((b"content-security-policy", policy.encode()))
                    headers.append((b"referrer-policy", b"same-origin"))
                    if path.startswith("/ui") and not any(k.lower() == b"cache-control" for k, _ in headers):
                        headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: Any, body_limit: int, path_limits: dict[str, int] | None = None) -> None:
    """Add the middleware to `app`; the request context is outermost so that every answer is logged."""
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(ControlCharacterMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=body_limit, path_limits=path_limits)
    app.add_middleware(RequestContextMiddleware)
