"""Reading JSON request bodies: one parser for every route, refusing what JSON parsers disagree on.

A body with the same key twice in one object is refused (parsers differ on which value wins, and a proxy
that checks one value while we act on the other is a known attack), as are the non-standard constants
`NaN` and `Infinity`, and nesting deeper than any of our forms could use. A malformed body is answered
with where the error is: line, column and character offset.

Every router is built with `JsonRoute`, so that FastAPI reads its bodies through `parse_json`; the hot
path (POST /v1/assessments) reads its body itself and calls `parse_json` directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from service.problems import MalformedJson

# Deeper than any form the service accepts (the assessment request nests five levels), far below Python's
# recursion limit.
MAX_DEPTH = 32


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(name)


# The standard library's C scanner calls the hook once per object: the duplicate check costs a dict
# length comparison per object on well-formed bodies.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_object, parse_constant=_no_constant)


def _depth_exceeds(text: str, limit: int) -> bool:
    # Brackets inside strings count too, so this may over-count: it only decides whether to look closer.
    return text.count("[") + text.count("{") > limit and _real_depth(text) > limit


def _real_depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(body: bytes) -> Any:
    """The body's JSON value; a `MalformedJson` (400) saying what is wrong and where otherwise."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"the body is not UTF-8 text (invalid byte at offset {exc.start})") from None
    text = text.removeprefix("\ufeff")
    if _depth_exceeds(text, MAX_DEPTH):
        raise MalformedJson(f"arrays and objects are nested more than {MAX_DEPTH} levels deep")
    try:
        return _DECODER.decode(text)
    except _DuplicateKey as exc:
        raise MalformedJson(
            f"the key '{exc.key[:100]}' appears more than once in one object; send each key once",
            kind="duplicate-key",
            title="Duplicate key in JSON",
        ) from None
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except ValueError as exc:  # from _no_constant
        raise MalformedJson(f"{exc} is not a JSON value; send numbers as digits") from None


class JsonRequest(Request):
    """A request whose `json()` is `parse_json` of its body."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class JsonRoute(APIRoute):
    """An API route that reads JSON bodies with `parse_json`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_json_request(request: Request) -> Response:
            return await handler(JsonRequest(request.scope, request.receive))

        return with_json_request
