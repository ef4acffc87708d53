"""Reference-data pages, declared once per kind of dated record.

A kind's page is built from its declaration and its API create form: the form's JSON Schema says which
fields exist, which are required, which are choices (enums), dates or lists, so a new kind of dated record
needs a `PageKind` and nothing else. Writes go through the same service functions as the API, so the
same checks apply.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session

from risk_rules.sources import bundled_sources_dir
from service.dated_records.declaration import DatedRecordKind
from service.dated_records.kinds import KINDS as DATED_KINDS
from service.dated_records.service import Filters
from service.reference import records

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
class FilterControl:
    """One control of a table's search form, for one of the kind's declared list filters."""

    name: str
    label: str
    widget: str  # destination, select, date, text
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class PageKind:
    """A kind of dated record as the workspace shows it: everything is read from its declaration."""

    kind: DatedRecordKind

    @property
    def slug(self) -> str:
        """In the URL: /ui/reference/<slug>, the same word as the API's collection."""
        return self.kind.collection.rsplit("/", 1)[-1]

    @property
    def plural(self) -> str:
        return self.kind.title_plural

    @property
    def derived_prefix(self) -> str:
        """How factors cite a record of this kind: `situation` in `situation:<id>`."""
        return self.kind.record_type

    @cached_property
    def _properties(self) -> dict[str, Any]:
        return self.kind.form.model_json_schema()["properties"]

    @property
    def name_field(self) -> str:
        """The field that names a record in tables and links."""
        return "title" if "title" in self._properties else "name"

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """Table columns after the name: the filtered fields, severity when the kind has one, the dates."""
        filtered = tuple(f.column for f in self.kind.filters if f.column)
        return filtered + tuple(n for n in ("severity", "started_on", "ended_on") if n in self._properties)

    @cached_property
    def search_fields(self) -> tuple[str, ...]:
        """Fields the text search looks in."""
        names = ("id", self.name_field, "aliases", *(f.column for f in self.kind.filters if f.column))
        return tuple(n for n in dict.fromkeys(names) if n == "id" or n in self._properties)

    @cached_property
    def filter_controls(self) -> tuple[FilterControl, ...]:
        """The search form's controls, one per declared list filter."""
        options = {f.name: f.options for f in self.form_fields if f.widget == "select"}
        controls = []
        for f in self.kind.filters:
            label = f.name.replace("_", " ").capitalize()
            if f.active_on:
                controls.append(FilterControl(f.name, label, "date"))
            elif f.column == "destination":
                controls.append(FilterControl(f.name, label, "destination"))
            elif f.column in options:
                controls.append(FilterControl(f.name, label, "select", options[f.column]))
            else:
                controls.append(FilterControl(f.name, label, "text"))
        return tuple(controls)

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
            elif name.endswith("_note"):
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


KINDS: dict[str, PageKind] = {page.slug: page for page in (PageKind(kind) for kind in DATED_KINDS)}
"""Every kind of dated record the API declares gets its pages, with nothing more to write."""
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


class InvalidSearch(ValueError):
    """A search value that is not one of the filter's (a bad date, an unknown choice)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Search:
    """The table's search: words to find, and the values of the kind's declared filters ("" means any)."""

    text: str
    values: dict[str, str]

    @classmethod
    def parse(cls, page: PageKind, query: Mapping[str, str]) -> Search:
        """The search in a query string; `InvalidSearch` names a value that cannot be one of its filter's."""
        values = {}
        for control in page.filter_controls:
            value = (query.get(control.name) or "").strip()[:300]
            if value and control.widget == "date":
                try:
                    dt.date.fromisoformat(value)
                except ValueError:
                    raise InvalidSearch(control.name, "use a date as YYYY-MM-DD") from None
            if value and control.options and value not in control.options:
                raise InvalidSearch(control.name, f"use one of: {', '.join(control.options)}")
            values[control.name] = value
        return cls(text=(query.get("q") or "")[:200], values=values)

    def filters(self, page: PageKind) -> Filters:
        """The declared filters with this search's values, as the API's list applies them."""
        typed: dict[str, Any] = {}
        for control in page.filter_controls:
            value = self.values.get(control.name) or None
            if value is not None and control.widget == "date":
                typed[control.name] = dt.date.fromisoformat(value)
            elif value is not None and control.widget in ("text", "destination") and control.name != "name":
                typed[control.name] = value.upper()
            else:
                typed[control.name] = value
        return Filters(page.kind, typed)

    def query(self) -> dict[str, str]:
        """The search as query parameters (empty ones left out)."""
        return {k: v for k, v in (("q", self.text), *self.values.items()) if v}


def search_page(
    session: Session, page: PageKind, search: Search, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of current records matching the search, in id order: the declared filters as the API's
    list applies them, and every word of the text in one of the kind's searched fields."""
    filters = search.filters(page)
    words = search.text.casefold().split()

    def matches(document: dict[str, Any]) -> bool:
        haystack = " ".join(_flat(document.get(name)) for name in page.search_fields).casefold()
        return all(word in haystack for word in words) and filters.matches_beyond_sql(document)

    beyond = matches if words or filters.needs_documents else None
    return records.current_page(session, page.kind, filters.clauses(), beyond, limit, cursor)


def _flat(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


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
