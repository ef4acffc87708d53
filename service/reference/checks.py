"""Checking a whole reference set before it is imported: each record with the checks the API makes, then
the set as a whole.

A set is imported whole or not at all, so every problem is collected (not only the first) and reported
with the record it is in and the field to fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from risk_rules.forms import iso_country_codes
from risk_rules.reference import DestinationIn, ReferenceSetIn, ThirdCountryIn
from risk_rules.sources import quote_problem
from service.dated_records.kinds import EMPLOYER_DISPUTES as DISPUTES
from service.dated_records.kinds import SITUATIONS
from service.field_errors import clean_message
from service.reference.records import RecordKind

# Each section of the file, and the field that identifies its records.
SECTIONS = {"destinations": "code", "third_countries": "code", "situations": "id", "employer_disputes": "id"}


@dataclass(frozen=True, slots=True)
class SetProblem:
    """One thing to fix: the record it is in (e.g. `situations[3] ca-cn-meng`), the field and what is wrong."""

    record: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.record}: {self.field or '(the record)'}: {self.message}"


def check_reference_set(
    document: Any, known_destinations: Iterable[str] = ()
) -> tuple[ReferenceSetIn | None, list[SetProblem]]:
    """The parsed set and no problems, or None and every problem found.

    Each record is checked on its own, so that one bad record does not hide the problems of the others;
    then the set as a whole (unique ids). A situation or employer dispute may name a destination profiled
    in the set itself or already in the database (`known_destinations`).
    """
    if not isinstance(document, dict):
        return None, [SetProblem("(the file)", "", f"expected a mapping with the sections {', '.join(SECTIONS)}")]
    problems = [
        SetProblem("(the file)", str(key), f"unknown section (expected: {', '.join(SECTIONS)})")
        for key in document
        if key not in SECTIONS
    ]
    sections: dict[str, list[Any]] = {}
    for section in SECTIONS:
        items = document.get(section, [])
        if section == "destinations" and section not in document:
            problems.append(SetProblem("(the file)", section, "Field required"))
        if not isinstance(items, list):
            problems.append(SetProblem("(the file)", section, "expected a list of records"))
            items = []
        sections[section] = items
    profiled = {d.get("code") for d in sections["destinations"] if isinstance(d, dict)}
    covered = {c for c in profiled if isinstance(c, str)} | set(known_destinations)
    for section, kind in (("situations", SITUATIONS), ("employer_disputes", DISPUTES)):
        for position, item in enumerate(sections[section]):
            problems.extend(_record_problems(document, section, position, kind, item, covered))
    for section, schema in (("destinations", DestinationIn), ("third_countries", ThirdCountryIn)):
        for position, item in enumerate(sections[section]):
            problems.extend(_profile_problems(document, section, position, schema, item))
    if problems:
        return None, problems
    try:
        return ReferenceSetIn.model_validate(document), []
    except ValidationError as exc:
        return None, [_problem(document, e["loc"], e["msg"]) for e in exc.errors()]


def _label(document: dict[str, Any], section: str, position: int) -> str:
    try:
        key = document[section][position].get(SECTIONS[section])
    except (KeyError, IndexError, TypeError, AttributeError):
        key = None
    return f"{section}[{position}]" + (f" {key}" if isinstance(key, str) else "")


def _message(message: str) -> str:
    return clean_message(message)


def _problem(document: dict[str, Any], loc: Sequence[Any], message: str) -> SetProblem:
    if len(loc) >= 2 and loc[0] in SECTIONS and isinstance(loc[1], int):
        record = _label(document, str(loc[0]), loc[1])
        return SetProblem(record, ".".join(str(p) for p in loc[2:]), _message(message))
    return SetProblem("(the set)", ".".join(str(p) for p in loc), _message(message))


def _errors(label: str, exc: ValidationError) -> Iterator[SetProblem]:
    for error in exc.errors():
        yield SetProblem(label, ".".join(str(p) for p in error["loc"]), _message(error["msg"]))


def _record_problems(
    document: dict[str, Any], section: str, position: int, kind: RecordKind, item: Any, covered: set[str]
) -> Iterator[SetProblem]:
    """The API's checks of one situation or employer dispute (its form is stricter than the file's schema,
    and names the field of each problem), then the file's schema, which also needs the id."""
    label = _label(document, section, position)
    try:
        kind.form.model_validate(item)
        kind.stored.model_validate(item)
    except ValidationError as exc:
        yield from _errors(label, exc)
        return
    if item["destination"] not in covered:
        yield SetProblem(
            label,
            "destination",
            f"'{item['destination']}' is not a covered destination (covered: {', '.join(sorted(covered))})",
        )


def _profile_problems(
    document: dict[str, Any], section: str, position: int, schema: type[BaseModel], item: Any
) -> Iterator[SetProblem]:
    """A destination or third-country profile: the file's schema, ISO country codes, verbatim quotes."""
    yield from profile_problems(section, schema, item, _label(document, section, position))


def profile_problems(
    section: str, schema: type[BaseModel], item: Any, label: str = "(the record)"
) -> Iterator[SetProblem]:
    """The checks of one destination (`section` "destinations") or third-country profile."""
    try:
        record = schema.model_validate(item).model_dump(mode="json")
    except ValidationError as exc:
        yield from _errors(label, exc)
        return
    codes = [("code", record["code"])]
    if section == "destinations":
        codes += [(f"nationality_group.{i}", c) for i, c in enumerate(record["nationality_group"])]
        codes += [(f"situations_from.{i}", c) for i, c in enumerate(record["situations_from"])]
    else:
        for key in ("extradition_treaties", "mutual_legal_assistance", "forced_returns"):
            codes += [(f"{key}.{i}.destination", entry["destination"]) for i, entry in enumerate(record[key])]
    for field, code in codes:
        if code not in iso_country_codes():
            yield SetProblem(label, field, f"'{code}' is not an ISO 3166-1 alpha-2 country code")
    for path, citation in _citations(record, ()):
        if citation.get("source"):
            problem = quote_problem(citation["source"], citation.get("quote") or "")
            if problem is not None:
                yield SetProblem(label, ".".join((*path, "quote")), problem)


def _citations(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if (key == "sources" or key.endswith("_sources")) and isinstance(value, list):
                for i, citation in enumerate(value):
                    yield (*path, key, str(i)), citation
            else:
                yield from _citations(value, (*path, key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _citations(item, (*path, str(i)))
