"""`travelrisk assess`: score one request (or a list) in-process with the bundled data and active model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service.commands.common import fail

if TYPE_CHECKING:
    from pydantic import ValidationError


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per invalid field, `path: message`, worded as the API's problem details word them."""
    from service.field_errors import field_errors

    return "\n".join(f"{prefix}{e['field'] or '(body)'}: {e['message']}" for e in field_errors(exc.errors()))


def assess(
    file: Annotated[str, typer.Argument(help="A JSON file with one request or a list of requests; '-' reads stdin.")],
) -> None:
    """Score a planned trip and print the response JSON."""
    from pydantic import ValidationError

    from models.assess import Assessor
    from risk_rules.errors import TravelriskError
    from risk_rules.forms import AssessmentRequest
    from risk_rules.reference import load_bundled_reference

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    items = document if isinstance(document, list) else [document]
    requests = []
    for position, item in enumerate(items):
        try:
            requests.append(AssessmentRequest.model_validate(item))
        except ValidationError as exc:
            prefix = f"[{position}] " if isinstance(document, list) else ""
            raise fail("invalid request:\n" + format_validation_error(exc, prefix)) from None
    try:
        assessor = Assessor.load()
        reference = load_bundled_reference()
    except TravelriskError as exc:
        raise fail(str(exc), code=1) from None
    results = [assessor.assess(r, reference).model_dump(mode="json") for r in requests]
    typer.echo(json.dumps(results if isinstance(document, list) else results[0], indent=2, ensure_ascii=False))
