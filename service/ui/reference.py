"""Reference-data pages, declared once per kind of dated record.

A kind's page is built from its declaration and its API create form: the form's JSON Schema says which
fields exist, which are required, which are choices (enums), dates or lists, so a new kind of dated record
needs a `PageKind` and nothing else. Writes go through the same service functions as the API, so the
same checks apply.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from risk_rules.sources import bundled_sources_dir
from service.employer_disputes import service as employer_disputes
from service.reference import records
from service.situations import service as situations

CITATION_ROWS = 3
"""Citation rows offered on a form (filled rows are kept; an empty row is ignored)."""


@dataclass(frozen=True)
class FormField:
    """One control of a record's form, read from the create form's JSON Schema."""

    name: str
    label: str
    widget: str  # text, select, date, lines, textarea
    required: bool
    help: str = ""
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class PageKind:
    """A kind of dated record as the workspace shows it."""

    slug: str  # in the URL: /ui/reference/<slug>
    kind: records.RecordKind
    plural: str  # "Situations"
    name_field: str  # the field that names a record in tables and links
    derived_prefix: str  # how factors cite it: "situation" in `situation:<id>`
    columns: tuple[str, ...]  # table columns after the name
    search_fields: tuple[str, ...]  # fields the text search looks in
    filters: tuple[str, ...] = ("destination", "kind")
    long_fields: frozenset[str] = field(default_factory=lambda: frozenset({"date_note", "severity_note"}))

    @cached_property
    def form_fields(self) -> list[FormField]:
        """The form's controls, in the create form's field order (citations are handled apart)."""
        schema = self.kind.form.model_json_schema()
        required = set(schema.get("required", ()))
        fields: list[FormField] = []
        for name, spec in schema["properties"].items():
            if name == "sources":
                continue
            resolved = _resolve(spec, schema)
            widget, options = "text", ()
            if name == "destination":
                # Only destinations the service scores are accepted: offer exactly those.
                widget = "destination"
            elif "enum" in resolved:
                widget, options = "select", tuple(resolved["enum"])
            elif resolved.get("format") == "date":
                widget = "date"
            elif resolved.get("type") == "array":
                widget = "lines"
            elif name in self.long_fields:
                widget = "textarea"
            label = name.replace("_", " ").capitalize()
            fields.append(FormField(name, label, widget, name in required, spec.get("description", ""), options))
        return fields

    def label_of(self, document: Mapping[str, Any]) -> str:
        """The record's name as shown in tables and links."""
        return str(document.get(self.name_field) or document.get("id"))


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A property's schema with `$ref` and `anyOf [X, null]` unwrapped."""
    while True:
        if "$ref" in spec:
            spec = schema["$defs"][spec["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in spec:
            options = [s for s in spec["anyOf"] if s.get("type") != "null"]
            if len(options) != 1:
                return spec
            spec = options[0]
        elif "allOf" in spec and len(spec["allOf"]) == 1:
            spec = spec["allOf"][0]
        else:
            return spec


KINDS: dict[str, PageKind] = {
    page.slug: page
    for page in (
        PageKind(
            slug="situations",
            kind=situations.KIND,
            plural="Situations",
            name_field="title",
            derived_prefix="situation",
            columns=("home_country", "destination", "kind", "severity", "started_on", "ended_on"),
            search_fields=("id", "title", "home_country", "destination", "kind"),
        ),
        PageKind(
            slug="employer-disputes",
            kind=employer_disputes.KIND,
            plural="Employer disputes",
            name_field="name",
            derived_prefix="employer_dispute",
            columns=("destination", "kind", "started_on", "ended_on"),
            search_fields=("id", "name", "aliases", "destination", "kind"),
        ),
    )
}
BY_PREFIX = {page.derived_prefix: page for page in KINDS.values()}


def source_titles() -> dict[str, str]:
    """Bundled reference source id → its title, from the sources' README table (`| `id` | title | …`)."""
    folder = bundled_sources_dir()
    titles = {path.stem: path.stem for path in sorted(folder.glob("*.txt"))}
    readme = folder / "README.md"
    if readme.is_file():
        for line in readme.read_text(encoding="utf-8").splitlines():
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if len(cells) >= 4 and cells[0].startswith("`") and cells[0].strip("`") in titles:
                titles[cells[0].strip("`")] = f"{cells[1]} ({cells[2]}, {cells[3]})"
    return titles


SOURCE_TITLES = source_titles()


# ---------------------------------------------------------------------------------------------
# Listing


@dataclass(frozen=True, slots=True)
class Search:
    """The table's search: words to find, and exact filters; empty means "any"."""

    text: str = ""
    destination: str = ""
    kind: str = ""
    active_on: dt.date | None = None

    def clauses(self, page: PageKind) -> list[ColumnElement[bool]]:
        model = page.kind.model
        clauses: list[ColumnElement[bool]] = []
        if self.destination:
            clauses.append(model.destination == self.destination)
        if self.kind:
            clauses.append(model.kind == self.kind)
        if self.active_on is not None:
            clauses.extend(records.active_on_clauses(model, self.active_on))
        return clauses

    def matcher(self, page: PageKind) -> records.Predicate | None:
        words = self.text.casefold().split()
        if not words:
            return None

        def matches(document: dict[str, Any]) -> bool:
            haystack = " ".join(_flat(document.get(name)) for name in page.search_fields).casefold()
            return all(word in haystack for word in words)

        return matches


def _flat(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def search_page(
    session: Session, page: PageKind, search: Search, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of current records matching the search, in id order."""
    return records.current_page(session, page.kind, search.clauses(page), search.matcher(page), limit, cursor)


# ---------------------------------------------------------------------------------------------
# Forms


def document_from_form(page: PageKind, form: Mapping[str, Any], *, for_patch: bool) -> dict[str, Any]:
    """The API document a submitted form stands for: empty optional fields are left out (cleared on an
    edit), list fields are one item per line, and filled citation rows become `sources`."""
    document: dict[str, Any] = {}
    for control in page.form_fields:
        if control.name == "id" and for_patch:
            continue
        raw = form.get(control.name)
        text = raw.strip() if isinstance(raw, str) else ""
        if control.widget == "lines":
            document[control.name] = [line.strip() for line in text.splitlines() if line.strip()]
        elif text:
            document[control.name] = text
        elif for_patch and not control.required:
            document[control.name] = None
    sources = []
    for index in range(CITATION_ROWS + 20):
        row = {
            key: (form.get(f"sources.{index}.{key}") or "").strip()
            for key in ("source", "quote", "title", "url", "date")
        }
        if any(row.values()):
            sources.append({key: value for key, value in row.items() if value})
    document["sources"] = sources
    return document


def citation_rows(sources: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The citation rows a form shows: the record's citations, then at least one empty row."""
    rows = [dict(s) for s in (sources or [])]
    return rows + [{} for _ in range(max(CITATION_ROWS, len(rows) + 1) - len(rows))]


def errors_by_field(errors: list[dict[str, str]] | None) -> dict[str, str]:
    """A 422's field errors keyed by form control name (`sources.0.quote` stays as it is)."""
    found: dict[str, str] = {}
    for error in errors or []:
        found.setdefault(error["field"] or "form", error["message"])
    return found
