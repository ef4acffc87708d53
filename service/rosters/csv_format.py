"""Rosters as CSV: one trip per row, in documented columns, turned into `POST /v1/assessments` bodies.

A cell left empty means "not given", as a field left out of a JSON body does: the score takes the field at
its expectation and the result lists it under `not_given`. Lists are separated by `;`; the word `none` in
a list column states that there are none (an empty list). Each leg reads `COUNTRY[/REGION] ARRIVE DEPART
[transit]`, legs separated by `;`, e.g. `TH 2018-12-04 2018-12-05 transit; CN/Beijing 2018-12-05 2018-12-20`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

# column -> (path in the request, kind, description); the order is the template's.
COLUMNS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "reference": (("traveler", "reference"), "text", "Your pseudonymous id for the traveller."),
    "citizenships": (("traveler", "citizenships"), "list", "Required. Country codes, e.g. `CA;CN`."),
    "birth_country": (("traveler", "birth_country"), "text", "Country code."),
    "former_citizenships": (("traveler", "former_citizenships"), "list", "Country codes, or `none`."),
    "occupation": (("traveler", "occupation"), "text", "One of the contract's occupations."),
    "employer_name": (("traveler", "employer", "name"), "text", "The employer's name."),
    "employer_sector": (("traveler", "employer", "sector"), "text", "One of the contract's sectors."),
    "criticizes_destination_government": (
        ("traveler", "public_profile", "criticizes_destination_government"),
        "bool",
        "`true` or `false`.",
    ),
    "activism": (("traveler", "public_profile", "activism"), "list", "e.g. `human_rights;hong_kong`, or `none`."),
    "affiliations": (("traveler", "affiliations"), "list", "e.g. `falun_gong`, or `none`."),
    "family_ties": (
        ("traveler", "family_ties"),
        "family",
        "`relation[:sought_by_destination_authorities][:lives_in_destination]`, `;` between ties, or `none`.",
    ),
    "relatives_in_destination": (("traveler", "relatives_in_destination"), "bool", "`true` or `false`."),
    "civil_or_commercial_dispute": (
        ("traveler", "legal_exposure", "civil_or_commercial_dispute"),
        "bool",
        "`true` or `false`.",
    ),
    "tax_dispute": (("traveler", "legal_exposure", "tax_dispute"), "bool", "`true` or `false`."),
    "criminal_investigation": (
        ("traveler", "legal_exposure", "criminal_investigation"),
        "bool",
        "`true` or `false`.",
    ),
    "sought_by_destination_authorities": (
        ("traveler", "legal_exposure", "sought_by_destination_authorities"),
        "bool",
        "`true` or `false`.",
    ),
    "purpose": (("trip", "purpose"), "text", "One of the contract's purposes."),
    "entry_document": (("trip", "entry_document"), "text", "Country code or `destination_travel_permit`."),
    "legs": (
        ("trip", "legs"),
        "legs",
        "Required. `COUNTRY[/REGION] ARRIVE DEPART [transit]`, `;` between legs.",
    ),
}
REQUIRED = ("citizenships", "legs")
TEMPLATE_ROWS = (
    {
        "reference": "E-10442",
        "citizenships": "CA",
        "birth_country": "CN",
        "former_citizenships": "CN",
        "occupation": "business_executive",
        "employer_name": "Rio Tinto",
        "employer_sector": "mining_resources",
        "family_ties": "parent:sought_by_destination_authorities",
        "relatives_in_destination": "true",
        "purpose": "business",
        "entry_document": "CA",
        "legs": "TH 2018-12-04 2018-12-05 transit; CN/Beijing 2018-12-05 2018-12-20",
    },
    {"reference": "E-20017", "citizenships": "GB", "occupation": "engineer", "legs": "HK 2026-03-02 2026-03-06"},
)
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}
_FAMILY_FLAGS = ("sought_by_destination_authorities", "lives_in_destination")


class CsvHeaderError(ValueError):
    """The header row is missing, names an unknown column, or lacks a required one."""


def template() -> str:
    """The downloadable template: every column, and two example trips."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    for row in TEMPLATE_ROWS:
        writer.writerow(row)
    return out.getvalue()


def read_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows of a CSV document; `CsvHeaderError` when the header is unusable."""
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        # A stray quote or line break the reader cannot place: say so, rather than fail the request.
        raise CsvHeaderError(f"the file is not CSV the service can read ({exc})") from None
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()  # trailing blank lines
    if not rows:
        raise CsvHeaderError("the file is empty: the first row must name the columns")
    header = [name.strip().lower() for name in rows[0]]
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise CsvHeaderError(
            f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)}; the columns"
            f" are: {', '.join(COLUMNS)} (see GET /v1/rosters/template.csv)"
        )
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise CsvHeaderError(f"missing required column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise CsvHeaderError(f"column{'s' if len(duplicated) > 1 else ''} given twice: {', '.join(duplicated)}")
    return header, rows[1:]


def _list(value: str) -> list[str]:
    if value.strip().lower() == "none":
        return []  # stated: there are none (an empty cell is not given)
    return [part.strip() for part in value.split(";") if part.strip()]


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"'{value}' is not true or false")


def _legs(value: str) -> list[dict[str, Any]]:
    legs = []
    for number, text in enumerate(_list(value), start=1):
        tokens = text.split()
        leg: dict[str, Any] = {}
        if tokens and tokens[-1].lower() == "transit":
            leg["transit"] = True
            tokens.pop()
        if len(tokens) < 3:
            raise ValueError(f"leg {number} '{text}' is not `COUNTRY[/REGION] ARRIVE DEPART [transit]`")
        place = " ".join(tokens[:-2])
        country, _, region = place.partition("/")
        leg["country"] = country.strip()
        if region.strip():
            leg["region"] = region.strip()
        leg["arrive"], leg["depart"] = tokens[-2], tokens[-1]
        legs.append(leg)
    return legs


def _family(value: str) -> list[dict[str, Any]]:
    ties = []
    for text in _list(value):
        relation, *flags = (part.strip() for part in text.split(":"))
        tie: dict[str, Any] = {"relation": relation}
        for flag in flags:
            if flag not in _FAMILY_FLAGS:
                raise ValueError(f"'{flag}' is not one of: {', '.join(_FAMILY_FLAGS)}")
            tie[flag] = True
        ties.append(tie)
    return ties


_PARSERS = {"text": str.strip, "list": _list, "bool": _bool, "legs": _legs, "family": _family}


def row_document(header: Sequence[str], cells: Sequence[str]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """A CSV row as a request document, and the errors (column and message) of cells that cannot be read."""
    document: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    if len(cells) > len(header):
        errors.append({"column": "", "message": f"{len(cells)} cells, but the header names {len(header)} columns"})
    for name, cell in zip(header, cells, strict=False):
        if not cell.strip():
            continue
        path, kind, _ = COLUMNS[name]
        try:
            value = _PARSERS[kind](cell)
        except ValueError as exc:
            errors.append({"column": name, "message": str(exc)})
            continue
        node = document
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return document, errors


def column_of(field: Sequence[Any]) -> str:
    """The CSV column a request field comes from (`trip.legs.1.depart` → `legs`)."""
    best, length = "", 0
    parts = tuple(str(p) for p in field)
    for name, (path, _, _) in COLUMNS.items():
        if parts[: len(path)] == path and len(path) > length:
            best, length = name, len(path)
    return best


def iterate_rows(text: str) -> Iterator[tuple[dict[str, Any], list[dict[str, str]]]]:
    """Every data row of a CSV document as `row_document` reads it."""
    header, rows = read_rows(text)
    for cells in rows:
        yield row_document(header, cells)


def describe_columns() -> Mapping[str, str]:
    """Each column and what it holds (for documentation)."""
    return {name: description for name, (_, _, description) in COLUMNS.items()}
