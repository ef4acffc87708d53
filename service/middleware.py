"""ASGI middleware: request ids and access logs, and the request-body limit.

Both are plain ASGI (not `BaseHTTPMiddleware`) so they add little per request and see streamed bodies.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.problems import ContentTooLarge, problem_response

log = logging.getLogger("travelrisk.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """Gives each request an id (`X-Request-ID`, echoed back) and logs one line when it ends."""

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
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
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


def install(app: Any, body_limit: int, path_limits: dict[str, int] | None = None) -> None:
    """Add the middleware to `app`; the request context is outermost so that every answer is logged."""
    app.add_middleware(BodyLimitMiddleware, limit=body_limit, path_limits=path_limits)
    app.add_middleware(RequestContextMiddleware)
