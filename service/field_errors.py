"""Pydantic validation errors as field paths and plain messages, worded the same by the API and the CLI.

The problem details of a 422 (`service/problems.py`), `travelrisk assess` and `travelrisk data import`
all word an invalid field through this module. It imports nothing from the web stack, so that the CLI
can use it without loading FastAPI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_LOCATIONS = {"body", "query", "path", "header", "cookie"}
# Pydantic's prefixes for errors raised by validators: implementation detail, not advice to the user.
_MESSAGE_PREFIXES = ("Value error, ", "Assertion failed, ")


def _is_union_tag(part: Any) -> bool:
    # Pydantic names the member of a union that failed ("literal['x']", "function-after[...]"); it is
    # not a field of the document, so it is left out of the path.
    return isinstance(part, str) and any(ch in part for ch in "[]()'")


def clean_message(message: str) -> str:
    """A validation message without pydantic's "Value error, " (or "Assertion failed, ") prefix."""
    for prefix in _MESSAGE_PREFIXES:
        message = message.removeprefix(prefix)
    return message


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Pydantic/FastAPI errors as `{field, message, location}` with dotted paths.

    Errors from the members of one union are merged into one entry per field, their messages joined.
    """
    merged: dict[tuple[str, str], list[str]] = {}
    for error in errors:
        loc = list(error.get("loc", ()))
        location = "body"
        if loc and loc[0] in _LOCATIONS:
            location = str(loc.pop(0))
        field = ".".join(str(part) for part in loc if not _is_union_tag(part))
        message = clean_message(str(error.get("msg", "invalid")))
        messages = merged.setdefault((location, field), [])
        if message not in messages:
            messages.append(message)
    return [
        {"field": field, "message": " or ".join(messages), "location": location}
        for (location, field), messages in merged.items()
    ]
