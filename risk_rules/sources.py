"""The reference sources the evidence quotes come from, and the verbatim check.

A copy of the five reference documents ships in `risk_rules/data/sources/` so that every quote can be
checked whenever rules or reference data load, not only where the original folder happens to be
present; a test keeps the copy identical to the originals.

Public reporting beyond the five documents (news reports, NGO reports, court and government records)
is registered in `risk_rules/data/reporting.yaml`: each report keeps its address, date, title and
short verbatim excerpts of the stored page. A report id is cited exactly like a source id, and a quote
from it must appear (up to whitespace) inside one of its excerpts; a quote spanning two excerpts is
refused, because the page text between them is not stored.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

_SPACE = re.compile(r"\s+")
# Joins a report's excerpts into one searchable text. It is not whitespace (so normalisation keeps it)
# and cannot occur in a quote, so a quote can never match across two excerpts.
_EXCERPT_SEPARATOR = "\x00"
_REPORT_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


class ReportingError(ValueError):
    """The bundled registry of public reporting is invalid."""


def normalise_whitespace(text: str) -> str:
    """Collapse every run of whitespace to one space: quotes are verbatim up to whitespace."""
    return _SPACE.sub(" ", text).strip()


def bundled_sources_dir() -> Path:
    return Path(str(resources.files("risk_rules") / "data" / "sources"))


def bundled_reporting_path() -> Path:
    return Path(str(resources.files("risk_rules") / "data" / "reporting.yaml"))


@dataclass(frozen=True, slots=True)
class Report:
    """One piece of public reporting: where it is published and the passages stored from it."""

    id: str
    title: str
    publisher: str
    url: str
    date: str
    excerpts: tuple[str, ...]


def _check_date(value: str) -> str | None:
    """None when `value` is YYYY, YYYY-MM or YYYY-MM-DD naming a real (partial) date."""
    if not _PARTIAL_DATE.match(value):
        return f"date '{value}' is not YYYY, YYYY-MM or YYYY-MM-DD"
    parts = [int(p) for p in value.split("-")]
    try:
        dt.date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    except ValueError as exc:
        return f"date '{value}' is not a calendar date ({exc})"
    return None


def report_problems(item: object) -> list[str]:
    """What is wrong with one registry entry (empty when it is valid)."""
    if not isinstance(item, dict):
        return ["a report must be a mapping"]
    problems = []
    expected = {"id", "title", "publisher", "url", "date", "excerpts"}
    if missing := sorted(expected - set(item)):
        problems.append(f"missing field(s): {', '.join(missing)}")
    if extra := sorted(set(item) - expected):
        problems.append(f"unknown field(s): {', '.join(extra)}")
    if not isinstance(item.get("id"), str) or not _REPORT_ID.match(item["id"]):
        problems.append("id must be a lowercase slug")
    for key in ("title", "publisher"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            problems.append(f"{key} must be a nonempty string")
    url = item.get("url")
    # Some pages exist only at an http address; what matters is that the address is a web address.
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+\.[^\s/]+/\S*$", url):
        problems.append("url must be an http(s) address of a page")
    date = item.get("date")
    if not isinstance(date, str):
        problems.append("date must be a quoted string (YYYY, YYYY-MM or YYYY-MM-DD)")
    elif problem := _check_date(date):
        problems.append(problem)
    excerpts = item.get("excerpts")
    if not isinstance(excerpts, list) or not excerpts:
        problems.append("excerpts must be a nonempty list")
    elif not all(isinstance(e, str) and e.strip() for e in excerpts):
        problems.append("every excerpt must be nonempty text")
    return problems


@lru_cache(maxsize=4)
def load_reporting(path: Path | None = None) -> dict[str, Report]:
    """Report id to report, validated (unique ids, web addresses, real dates, nonempty excerpts)."""
    source = path or bundled_reporting_path()
    document = yaml.safe_load(source.read_text(encoding="utf-8")) or []
    if not isinstance(document, list):
        raise ReportingError(f"{source}: expected a list of reports")
    reports: dict[str, Report] = {}
    for position, item in enumerate(document):
        name = item.get("id", f"#{position}") if isinstance(item, dict) else f"#{position}"
        if problems := report_problems(item):
            raise ReportingError(f"{source}: report {name}: {'; '.join(problems)}")
        if name in reports:
            raise ReportingError(f"{source}: duplicate report id '{name}'")
        reports[name] = Report(
            id=name,
            title=item["title"].strip(),
            publisher=item["publisher"].strip(),
            url=item["url"],
            date=item["date"],
            excerpts=tuple(normalise_whitespace(e) for e in item["excerpts"]),
        )
    return reports


@lru_cache(maxsize=4)
def source_texts(directory: Path | None = None) -> dict[str, str]:
    """Source or report id to whitespace-normalised text.

    The reference documents come from `directory` (the bundled copy by default); the registered public
    reports are always the bundled ones, each as its excerpts joined so that no quote can span two.
    """
    folder = directory or bundled_sources_dir()
    texts = {p.stem: normalise_whitespace(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.txt"))}
    for report in load_reporting().values():
        if report.id in texts:
            raise ReportingError(f"report id '{report.id}' is also the id of a reference source")
        texts[report.id] = _EXCERPT_SEPARATOR.join(report.excerpts)
    return texts


# When each reference document was published (the sources' README gives these, some only roughly):
# (year, month, day), with None where the README gives less.
_REFERENCE_DATES: dict[str, tuple[int, int | None, int | None]] = {
    "zhang-beijings-new-hostage-diplomacy": (2019, None, None),  # "early 2019"
    "ccp-master-of-hostage-diplomacy": (2023, 10, None),  # "October 2023"
    "csis-kennedy-beijing-suffers-major-loss": (2021, 9, None),  # "September 2021"
    "merics-chinas-global-law-enforcement-drive": (2017, 1, 18),  # "18 January 2017"
    "brookings-long-arm-of-the-law": (2021, None, None),  # "early 2021"
}


def _last_day(year: int, month: int | None, day: int | None) -> dt.date:
    if day is not None and month is not None:
        return dt.date(year, month, day)
    if month is not None:
        following = dt.date(year + (month == 12), month % 12 + 1, 1)
        return following - dt.timedelta(days=1)
    return dt.date(year, 12, 31)


def published_by(source: str) -> dt.date:
    """The latest day `source` (a reference document or a registered report) can have been published:
    the last day of its stated month or year when the date is given only that precisely. A passage is
    "published before" a cutoff only when this day is before it."""
    if source in _REFERENCE_DATES:
        return _last_day(*_REFERENCE_DATES[source])
    report = load_reporting().get(source)
    if report is None:
        raise KeyError(f"unknown source '{source}'")
    parts = [int(p) for p in report.date.split("-")]
    return _last_day(parts[0], parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None)


def source_title(source: str) -> str | None:
    """A registered report's title with its publisher and date; None for the reference documents."""
    report = load_reporting().get(source)
    if report is None:
        return None
    return f"{report.title} ({report.publisher}, {report.date})"


def quote_problem(source: str, quote: str, directory: Path | None = None) -> str | None:
    """None when `quote` appears verbatim (up to whitespace) in `source`; otherwise what is wrong.

    For a registered report, the quote must lie inside one of its stored excerpts.
    """
    texts = source_texts(directory)
    if source not in texts:
        return f"unknown source '{source}' (known: {', '.join(sorted(texts))})"
    if not quote or not quote.strip():
        return f"empty quote for source '{source}'"
    if _EXCERPT_SEPARATOR in quote:
        return f"quote for source '{source}' contains a NUL character"
    if normalise_whitespace(quote) not in texts[source]:
        return f"quote not found verbatim in '{source}': \"{quote[:80]}…\""
    return None
