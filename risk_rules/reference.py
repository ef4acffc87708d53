"""Reference data the rules read: situations, employer disputes, destination and third-country profiles.

The engine sees reference data only through the narrow `ReferenceSnapshot` interface. The bundled
snapshot here is loaded from `risk_rules/data/reference.yaml`; the service implements the same
interface over its database.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
import unicodedata
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from rapidfuzz import fuzz

from risk_rules.errors import ReferenceDataError
from risk_rules.values import IsoDate

SituationKind = Literal[
    "extradition_case", "trade_dispute", "diplomatic_dispute", "sanctions", "detention_of_nationals"
]
DisputeKind = Literal["commercial_dispute", "regulatory_investigation", "political_pressure", "sanctions"]
Severity = Literal["low", "medium", "high"]
Precision = Literal["day", "month", "year", "unknown"]
ReturnKind = Literal["rendition", "refoulement", "pressured_return", "treaty_extradition"]
# A formal extradition under a treaty is recorded, but it is the treaty, not a forced return.
FORCED_RETURN_KINDS = frozenset({"rendition", "refoulement", "pressured_return"})

SEVERITY_WEIGHT: dict[str, float] = {"low": 1 / 3, "medium": 2 / 3, "high": 1.0}


# --------------------------------------------------------------------------------------------
# Records as the engine sees them (plain, immutable dataclasses)


@dataclass(frozen=True, slots=True)
class Citation:
    """A passage a record rests on: a reference source id and quote, or an outside title/url/date."""

    source: str | None = None
    quote: str | None = None
    title: str | None = None
    url: str | None = None
    date: str | None = None


@dataclass(frozen=True, slots=True)
class Situation:
    id: str
    home_country: str
    destination: str
    kind: str
    title: str
    started_on: dt.date
    ended_on: dt.date | None
    severity: str
    sources: tuple[Citation, ...] = ()
    date_note: str | None = None

    def active_during(self, start: dt.date, end: dt.date) -> bool:
        """True when the situation overlaps the closed interval [start, end]."""
        return self.started_on <= end and (self.ended_on is None or self.ended_on >= start)

    @property
    def severity_weight(self) -> float:
        return SEVERITY_WEIGHT[self.severity]

    def describe(self) -> str:
        """Plain-language pointer used in reason sentences."""
        if self.ended_on:
            return f"{self.title} (situation {self.id}, {self.started_on.isoformat()} to {self.ended_on.isoformat()})"
        return f"{self.title} (situation {self.id}, since {self.started_on.isoformat()})"


@dataclass(frozen=True, slots=True)
class EmployerDispute:
    id: str
    name: str
    aliases: tuple[str, ...]
    destination: str
    kind: str
    started_on: dt.date
    ended_on: dt.date | None
    sources: tuple[Citation, ...] = ()
    date_note: str | None = None

    def active_during(self, start: dt.date, end: dt.date) -> bool:
        return self.started_on <= end and (self.ended_on is None or self.ended_on >= start)

    def describe(self) -> str:
        period = f"{self.started_on} to {self.ended_on}" if self.ended_on else f"since {self.started_on}"
        return f"{self.name}: {self.kind.replace('_', ' ')} (employer dispute {self.id}, {period})"


@dataclass(frozen=True, slots=True)
class Law:
    id: str
    name: str
    kind: str
    reaches_conduct_abroad: bool
    effective_on: dt.date | None
    sources: tuple[Citation, ...] = ()


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    aliases: tuple[str, ...]
    note: str
    sources: tuple[Citation, ...] = ()


@dataclass(frozen=True)
class DestinationProfile:
    code: str
    name: str
    nationality_group: frozenset[str]
    situations_from: tuple[str, ...]
    recognises_dual_nationality: bool
    laws: tuple[Law, ...] = ()
    regions: tuple[Region, ...] = ()

    def region_named(self, name: str | None) -> Region | None:
        """The profile's region called `name` (or one of its aliases), ignoring case and accents."""
        if not name:
            return None
        return self._regions_by_name.get(normalise_text(name))

    @cached_property
    def _regions_by_name(self) -> dict[str, Region]:
        return {normalise_text(n): r for r in self.regions for n in (r.name, *r.aliases)}


@dataclass(frozen=True, slots=True)
class TreatyRecord:
    destination: str
    in_force_on: dt.date | None
    sources: tuple[Citation, ...] = ()


@dataclass(frozen=True, slots=True)
class ForcedReturn:
    destination: str
    occurred_on: dt.date
    description: str
    kind: str
    sources: tuple[Citation, ...] = ()


@dataclass(frozen=True, slots=True)
class ThirdCountryProfile:
    code: str
    name: str
    extradition_treaties: tuple[TreatyRecord, ...] = ()
    forced_returns: tuple[ForcedReturn, ...] = ()

    def treaty_with(self, destination: str, on: dt.date) -> TreatyRecord | None:
        """An extradition treaty with `destination` known to be in force on `on`.

        A treaty whose date the sources do not give counts as in force: the sources list it as such.
        """
        for treaty in self.extradition_treaties:
            if treaty.destination == destination and (treaty.in_force_on is None or treaty.in_force_on <= on):
                return treaty
        return None

    def forced_returns_to(self, destination: str, before: dt.date) -> list[ForcedReturn]:
        """Returns outside a treaty's safeguards (renditions, refoulement, pressured returns) by `before`."""
        return [
            r
            for r in self.forced_returns
            if r.destination == destination and r.occurred_on <= before and r.kind in FORCED_RETURN_KINDS
        ]


class ReferenceSnapshot(Protocol):
    """What the engine may ask of reference data. Implemented over YAML here and over the database."""

    @property
    def version(self) -> str: ...

    def covered_destinations(self) -> list[str]: ...

    def covered_profiles(self) -> tuple[DestinationProfile, ...]:
        """The profiles of the covered destinations, in code order."""
        ...

    def claimed_nationalities(self) -> frozenset[str]:
        """Every nationality a covered destination claims as its own (their nationality groups together)."""
        ...

    def destination_profile(self, code: str) -> DestinationProfile | None: ...

    def third_country_profile(self, code: str) -> ThirdCountryProfile | None: ...

    def situations_active(self, home: str, destination: str, start: dt.date, end: dt.date) -> list[Situation]: ...

    def employer_disputes_active(
        self, employer_name: str, destination: str, start: dt.date, end: dt.date
    ) -> list[EmployerDispute]: ...

    def employer_near_matches(
        self, employer_name: str, destination: str, start: dt.date, end: dt.date
    ) -> list[tuple[EmployerDispute, float]]: ...

    def employer_disputes_active_share(self, destinations: Sequence[str], start: dt.date, end: dt.date) -> float:
        """The share of recorded employer disputes that concern one of `destinations` and are active
        between `start` and `end`: how likely an employer the request does not name is in one, given
        that the reference population's employers in a dispute are the recorded ones."""
        ...


# --------------------------------------------------------------------------------------------
# Employer-name normalisation

_LEGAL_SUFFIXES = (
    "limited",
    "ltd",
    "inc",
    "incorporated",
    "llc",
    "corp",
    "corporation",
    "co",
    "company",
    "gmbh",
    "ag",
    "sa",
    "plc",
    "pty",
    "kk",
    "group",
    "holdings",
    "holding",
    "nv",
    "bv",
    "lp",
    "llp",
    "srl",
    "spa",
)
_NON_WORD = re.compile(r"[^\w\s]")
_SPACE = re.compile(r"\s+")


@lru_cache(maxsize=4096)
def normalise_text(value: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a name."""
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # Dots inside abbreviations (S.A., K.K.) join rather than split the letters.
    stripped = stripped.replace(".", "")
    return _SPACE.sub(" ", _NON_WORD.sub(" ", stripped.casefold())).strip()


@lru_cache(maxsize=4096)
def normalise_organisation(name: str) -> str:
    """Organisation name with legal-form suffixes removed, for equality matching."""
    words = normalise_text(name).split()
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


NEAR_MATCH_CUTOFF = 85.0


class OrganisationNameIndex:
    """Blocking index of normalised organisation names for near-match look-ups.

    Comparing an employer with every recorded name costs a millisecond at 10,000 disputes; instead
    each name is filed under the first two letters of its first word, the last two letters of its
    first word, and its first word itself. A single typo in a word of four letters or more leaves one
    of the first two keys intact, and a longer form of a name ("rio tinto iron ore") contains its first
    word as a token.
    """

    def __init__(self, entries: Iterable[tuple[str, EmployerDispute]]) -> None:
        self._by_key: dict[str, list[tuple[str, EmployerDispute]]] = defaultdict(list)
        for name, dispute in entries:
            for key in self._keys(name):
                self._by_key[key].append((name, dispute))

    def replaced(
        self, removed: Iterable[tuple[str, EmployerDispute]], added: Iterable[tuple[str, EmployerDispute]]
    ) -> OrganisationNameIndex:
        """A copy without the `removed` entries and with the `added` ones; only their keys' lists are copied."""
        index = OrganisationNameIndex(())
        index._by_key = by_key = defaultdict(list, self._by_key)
        for name, dispute in removed:
            for key in self._keys(name):
                kept = [e for e in by_key.get(key, ()) if not (e[0] == name and e[1].id == dispute.id)]
                if kept:
                    by_key[key] = kept
                else:
                    by_key.pop(key, None)
        for name, dispute in added:
            for key in self._keys(name):
                by_key[key] = [*by_key.get(key, ()), (name, dispute)]
        return index

    def entries(self) -> set[tuple[str, str, str]]:
        """Every (key, name, dispute id) filed: what two indexes must share to answer alike."""
        return {(key, name, dispute.id) for key, items in self._by_key.items() for name, dispute in items}

    @staticmethod
    def _keys(name: str) -> set[str]:
        first = name.split(" ", 1)[0]
        return {"p:" + first[:2], "s:" + first[-2:], "w:" + first}

    def candidates(self, name: str) -> list[tuple[str, EmployerDispute]]:
        keys = self._keys(name) | {"w:" + word for word in name.split()}
        seen: dict[tuple[str, str], tuple[str, EmployerDispute]] = {}
        for key in keys:
            for entry in self._by_key.get(key, ()):
                seen.setdefault((entry[0], entry[1].id), entry)
        return list(seen.values())


def name_similarity(a: str, b: str) -> float:
    """Similarity in [0, 100] of two normalised organisation names.

    The larger of the edit-distance ratio (typos: "acmee" ~ "acme") and 0.9 × the token-set ratio
    (a subsidiary or longer form that contains the whole name: "rio tinto iron ore" ~ "rio tinto").
    """
    return max(fuzz.ratio(a, b), 0.9 * fuzz.token_set_ratio(a, b))


def near_matches(
    employer_name: str, candidates: Iterable[tuple[str, EmployerDispute]], start: dt.date, end: dt.date
) -> list[tuple[EmployerDispute, float]]:
    """Disputes active in [start, end] whose name is close to, but not equal to, the employer's."""
    key = normalise_organisation(employer_name)
    best: dict[str, tuple[EmployerDispute, float]] = {}
    exact: set[str] = set()  # a dispute matched exactly (by any alias) fires the factor instead
    for name, dispute in candidates:
        if name == key:
            exact.add(dispute.id)
            continue
        if not dispute.active_during(start, end):
            continue
        score = round(name_similarity(key, name), 1)
        if score >= NEAR_MATCH_CUTOFF and score > best.get(dispute.id, (dispute, 0.0))[1]:
            best[dispute.id] = (dispute, score)
    return sorted((m for i, m in best.items() if i not in exact), key=lambda m: (-m[1], m[0].id))


# --------------------------------------------------------------------------------------------
# The bundled snapshot: a YAML file validated by Pydantic, turned into dataclasses


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CitationIn(_In):
    source: str | None = None
    quote: str | None = None
    title: str | None = None
    url: str | None = None
    date: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CitationIn:
        if self.source and not self.quote:
            raise ValueError("a citation of a reference source needs its quote")
        if not self.source and not self.title:
            raise ValueError("a citation needs a reference source id and quote, or a title")
        return self

    def to_record(self) -> Citation:
        return Citation(self.source, self.quote, self.title, self.url, self.date)


class _Dated(_In):
    started_on: IsoDate
    start_precision: Precision = "day"
    ended_on: IsoDate | None = None
    end_precision: Precision | None = None
    date_note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Dated:
        if self.ended_on is not None and self.ended_on < self.started_on:
            raise ValueError("ended_on is before started_on")
        return self


class SituationIn(_Dated):
    id: str
    home_country: str
    destination: str
    kind: SituationKind
    title: str = Field(min_length=1)
    severity: Severity
    severity_note: str | None = None
    sources: list[CitationIn] = []

    @model_validator(mode="after")
    def _home_not_destination(self) -> SituationIn:
        if self.home_country == self.destination:
            raise ValueError("home_country equals destination")
        return self


class EmployerDisputeIn(_Dated):
    id: str
    name: str = Field(min_length=1)
    aliases: list[str] = []
    destination: str
    kind: DisputeKind
    sources: list[CitationIn] = []


class LawIn(_In):
    id: str
    name: str
    kind: Literal["exit_ban", "extraterritorial", "counter_terrorism", "national_security"]
    reaches_conduct_abroad: bool = False
    effective_on: IsoDate | None = None
    in_force_by: IsoDate | None = Field(
        default=None, description="Where the sources give no start date: the date by which they attest the law."
    )
    date_note: str | None = None
    sources: list[CitationIn] = []

    @model_validator(mode="after")
    def _dated(self) -> LawIn:
        if self.effective_on is None and self.in_force_by is None:
            raise ValueError("a law needs effective_on or, where the sources give no date, in_force_by")
        return self


class RegionIn(_In):
    name: str
    aliases: list[str] = []
    note: str
    sources: list[CitationIn] = []


class DestinationIn(_In):
    code: str
    name: str
    nationality_group: list[str]
    situations_from: list[str]
    recognises_dual_nationality: bool
    dual_nationality_sources: list[CitationIn] = []
    laws: list[LawIn] = []
    regions: list[RegionIn] = []
    sources: list[CitationIn] = []


class TreatyIn(_In):
    destination: str
    in_force_on: IsoDate | None = None
    date_precision: Precision = "unknown"
    date_note: str | None = None
    sources: list[CitationIn] = []


class ForcedReturnIn(_In):
    destination: str
    occurred_on: IsoDate
    date_precision: Precision = "day"
    kind: ReturnKind
    description: str
    sources: list[CitationIn] = []


class ThirdCountryIn(_In):
    code: str
    name: str
    extradition_treaties: list[TreatyIn] = []
    mutual_legal_assistance: list[TreatyIn] = []
    forced_returns: list[ForcedReturnIn] = []


class ReferenceSetIn(_In):
    """The whole reference set as one document (the bundled file, and export/import)."""

    destinations: list[DestinationIn]
    third_countries: list[ThirdCountryIn] = []
    situations: list[SituationIn] = []
    employer_disputes: list[EmployerDisputeIn] = []

    @model_validator(mode="after")
    def _unique_ids(self) -> ReferenceSetIn:
        for label, ids in (
            ("situation", [s.id for s in self.situations]),
            ("employer dispute", [d.id for d in self.employer_disputes]),
            ("destination", [d.code for d in self.destinations]),
            ("third country", [t.code for t in self.third_countries]),
        ):
            seen: set[str] = set()
            for item in ids:
                if item in seen:
                    raise ValueError(f"duplicate {label} id '{item}'")
                seen.add(item)
        return self


def _cites(items: Iterable[CitationIn]) -> tuple[Citation, ...]:
    return tuple(c.to_record() for c in items)


def situation_record(s: SituationIn) -> Situation:
    return Situation(
        s.id,
        s.home_country,
        s.destination,
        s.kind,
        s.title,
        s.started_on,
        s.ended_on,
        s.severity,
        _cites(s.sources),
        s.date_note,
    )


def employer_dispute_record(d: EmployerDisputeIn) -> EmployerDispute:
    return EmployerDispute(
        d.id,
        d.name,
        tuple(d.aliases),
        d.destination,
        d.kind,
        d.started_on,
        d.ended_on,
        _cites(d.sources),
        d.date_note,
    )


def destination_record(d: DestinationIn) -> DestinationProfile:
    return DestinationProfile(
        code=d.code,
        name=d.name,
        nationality_group=frozenset(d.nationality_group),
        situations_from=tuple(d.situations_from),
        recognises_dual_nationality=d.recognises_dual_nationality,
        laws=tuple(
            Law(
                law.id,
                law.name,
                law.kind,
                law.reaches_conduct_abroad,
                law.effective_on or law.in_force_by,
                _cites(law.sources),
            )
            for law in d.laws
        ),
        regions=tuple(Region(r.name, tuple(r.aliases), r.note, _cites(r.sources)) for r in d.regions),
    )


def third_country_record(t: ThirdCountryIn) -> ThirdCountryProfile:
    return ThirdCountryProfile(
        code=t.code,
        name=t.name,
        extradition_treaties=tuple(
            TreatyRecord(x.destination, x.in_force_on, _cites(x.sources)) for x in t.extradition_treaties
        ),
        forced_returns=tuple(
            ForcedReturn(x.destination, x.occurred_on, x.description, x.kind, _cites(x.sources))
            for x in t.forced_returns
        ),
    )


@dataclass
class InMemoryReference:
    """A `ReferenceSnapshot` over records held in memory, indexed for the engine's look-ups."""

    destinations: dict[str, DestinationProfile]
    third_countries: dict[str, ThirdCountryProfile]
    situations: list[Situation]
    employer_disputes: list[EmployerDispute]
    version: str
    _by_pair: dict[tuple[str, str], list[Situation]] = field(default_factory=dict, init=False, repr=False)
    _by_employer: dict[tuple[str, str], list[EmployerDispute]] = field(default_factory=dict, init=False, repr=False)
    _active_share: dict[tuple, float] = field(default_factory=dict, init=False, repr=False)
    _near_candidates: dict[tuple, list] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        by_pair: dict[tuple[str, str], list[Situation]] = defaultdict(list)
        for s in self.situations:
            by_pair[(s.home_country, s.destination)].append(s)
        self._by_pair = dict(by_pair)
        by_employer: dict[tuple[str, str], list[EmployerDispute]] = defaultdict(list)
        for d in self.employer_disputes:
            for key in _employer_keys(d):
                if d not in by_employer[key]:
                    by_employer[key].append(d)
        self._by_employer = dict(by_employer)

    def with_records(
        self,
        version: str,
        *,
        situations: Iterable[Situation] = (),
        employer_disputes: Iterable[EmployerDispute] = (),
        destinations: Iterable[DestinationProfile] = (),
        third_countries: Iterable[ThirdCountryProfile] = (),
    ) -> InMemoryReference:
        """A new snapshot with these records added or replaced (matched by id or code), at `version`.

        Only the index entries of the records that changed are touched: a change to one record among
        tens of thousands costs a few copied dicts, not a rebuild. This snapshot is left as it was, so
        requests still holding it read consistent data. Records are kept in id order (as a snapshot read
        from the database in id order has them), so the result equals a snapshot built from scratch.
        """
        new = copy.copy(self)
        new.version = version
        new.__dict__.pop("_name_index", None)
        # Look-ups cached on this snapshot answer for its records only: the new one starts its own.
        new._active_share = {}
        new._near_candidates = {}
        new.__dict__.pop("_covered_profiles", None)
        new.__dict__.pop("_claimed_nationalities", None)
        new.destinations = {**self.destinations, **{d.code: d for d in destinations}}
        new.third_countries = {**self.third_countries, **{t.code: t for t in third_countries}}
        situations = list(situations)
        if situations:
            new.situations = list(self.situations)
            new._by_pair = dict(self._by_pair)
            for situation in situations:
                old = _put_in_id_order(new.situations, situation)
                if old is not None:
                    _drop_from(new._by_pair, (old.home_country, old.destination), old.id)
                key = (situation.home_country, situation.destination)
                new._by_pair[key] = _in_id_order([*new._by_pair.get(key, ())], situation)
        disputes = list(employer_disputes)
        if disputes:
            new.employer_disputes = list(self.employer_disputes)
            new._by_employer = dict(self._by_employer)
            removed: list[EmployerDispute] = []
            for dispute in disputes:
                old = _put_in_id_order(new.employer_disputes, dispute)
                if old is not None:
                    removed.append(old)
                    for key in _employer_keys(old):
                        _drop_from(new._by_employer, key, old.id)
                for key in _employer_keys(dispute):
                    new._by_employer[key] = _in_id_order([*new._by_employer.get(key, ())], dispute)
            if "_name_index" in self.__dict__:
                new.__dict__["_name_index"] = self._replaced_name_index(removed, disputes)
        elif "_name_index" in self.__dict__:
            new.__dict__["_name_index"] = self.__dict__["_name_index"]
        return new

    def _replaced_name_index(
        self, removed: list[EmployerDispute], added: list[EmployerDispute]
    ) -> dict[str, OrganisationNameIndex]:
        indexes = dict(self._name_index)
        changes: dict[str, tuple[list[tuple[str, EmployerDispute]], list[tuple[str, EmployerDispute]]]] = defaultdict(
            lambda: ([], [])
        )
        for dispute in removed:
            changes[dispute.destination][0].extend((name, dispute) for name, _ in _employer_keys(dispute))
        for dispute in added:
            changes[dispute.destination][1].extend((name, dispute) for name, _ in _employer_keys(dispute))
        for destination, (gone, new_entries) in changes.items():
            index = indexes.get(destination, OrganisationNameIndex(()))
            indexes[destination] = index.replaced(gone, new_entries)
        return indexes

    def warm(self) -> None:
        """Build the indexes that are otherwise built on first use (the employer-name index)."""
        self._name_index  # noqa: B018 - a cached property, computed here

    def covered_destinations(self) -> list[str]:
        return sorted(self.destinations)

    def covered_profiles(self) -> tuple[DestinationProfile, ...]:
        return self._covered_profiles

    @cached_property
    def _covered_profiles(self) -> tuple[DestinationProfile, ...]:
        return tuple(self.destinations[code] for code in sorted(self.destinations))

    def claimed_nationalities(self) -> frozenset[str]:
        return self._claimed_nationalities

    @cached_property
    def _claimed_nationalities(self) -> frozenset[str]:
        return frozenset().union(*(p.nationality_group for p in self.destinations.values()))

    def destination_profile(self, code: str) -> DestinationProfile | None:
        return self.destinations.get(code)

    def third_country_profile(self, code: str) -> ThirdCountryProfile | None:
        return self.third_countries.get(code)

    def situations_active(self, home: str, destination: str, start: dt.date, end: dt.date) -> list[Situation]:
        return [s for s in self._by_pair.get((home, destination), ()) if s.active_during(start, end)]

    def employer_disputes_active(
        self, employer_name: str, destination: str, start: dt.date, end: dt.date
    ) -> list[EmployerDispute]:
        key = (normalise_organisation(employer_name), destination)
        return [d for d in self._by_employer.get(key, ()) if d.active_during(start, end)]

    def employer_disputes_active_share(self, destinations: Sequence[str], start: dt.date, end: dt.date) -> float:
        key = (tuple(destinations), start, end)
        share = self._active_share.get(key)
        if share is None:
            if not self.employer_disputes:
                share = 0.0
            else:
                wanted = set(destinations)
                active = sum(
                    1 for d in self.employer_disputes if d.destination in wanted and d.active_during(start, end)
                )
                share = active / len(self.employer_disputes)
            if len(self._active_share) > 50_000:  # bounded: trips' dates are many, the answer is cheap
                self._active_share.clear()
            self._active_share[key] = share
        return share

    def employer_near_matches(
        self, employer_name: str, destination: str, start: dt.date, end: dt.date
    ) -> list[tuple[EmployerDispute, float]]:
        index = self._name_index.get(destination)
        if index is None:
            return []
        key = (normalise_organisation(employer_name), destination)
        candidates = self._near_candidates.get(key)
        if candidates is None:
            # The names close to this one do not depend on the trip's dates: matched once, filtered per trip.
            candidates = index.candidates(key[0])
            if len(self._near_candidates) >= 50_000:
                self._near_candidates.clear()
            self._near_candidates[key] = candidates
        return near_matches(employer_name, candidates, start, end)

    @cached_property
    def _name_index(self) -> dict[str, OrganisationNameIndex]:
        """A name index per destination, for near-match reporting."""
        entries: dict[str, list[tuple[str, EmployerDispute]]] = defaultdict(list)
        for (name, destination), disputes in self._by_employer.items():
            entries[destination].extend((name, d) for d in disputes)
        return {destination: OrganisationNameIndex(items) for destination, items in entries.items()}


def _employer_keys(dispute: EmployerDispute) -> list[tuple[str, str]]:
    """The (normalised name, destination) keys a dispute is filed under: its name and each alias."""
    keys = {(normalise_organisation(name), dispute.destination) for name in {dispute.name, *dispute.aliases}}
    return sorted(keys)


_R = TypeVar("_R", Situation, EmployerDispute)


def _put_in_id_order(records: list[_R], record: _R) -> _R | None:
    """Put `record` into the id-ordered `records`, replacing the one with its id; that one is returned."""
    position = bisect_left(records, record.id, key=_record_id)
    if position < len(records) and records[position].id == record.id:
        old = records[position]
        records[position] = record
        return old
    records.insert(position, record)
    return None


def _in_id_order(records: list[_R], record: _R) -> list[_R]:
    position = bisect_left(records, record.id, key=_record_id)
    if not (position < len(records) and records[position].id == record.id):
        records.insert(position, record)
    return records


def _drop_from(index: dict[Any, list[_R]], key: Any, record_id: str) -> None:
    kept = [r for r in index.get(key, ()) if r.id != record_id]
    if kept:
        index[key] = kept
    else:
        index.pop(key, None)


def _record_id(record: Situation | EmployerDispute) -> str:
    return record.id


def reference_from_document(
    document: dict[str, Any], origin: str = "reference data", version: str | None = None
) -> InMemoryReference:
    """Validate a reference-set document and build an in-memory snapshot from it.

    The version defaults to a hash of the content; a store that versions its data passes its own.
    """
    try:
        parsed = ReferenceSetIn.model_validate(document)
    except ValidationError as exc:
        raise ReferenceDataError(f"{origin}: {exc}") from exc
    if version is None:
        canonical = json.dumps(parsed.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        version = "ref-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]
    return InMemoryReference(
        destinations={d.code: destination_record(d) for d in parsed.destinations},
        third_countries={t.code: third_country_record(t) for t in parsed.third_countries},
        situations=[situation_record(s) for s in parsed.situations],
        employer_disputes=[employer_dispute_record(d) for d in parsed.employer_disputes],
        version=version,
    )


def bundled_reference_path() -> Path:
    return Path(str(resources.files("risk_rules") / "data" / "reference.yaml"))


_BUNDLED: InMemoryReference | None = None


def load_bundled_reference(path: Path | None = None) -> InMemoryReference:
    """The reference set shipped with the package (cached when read from the default path)."""
    global _BUNDLED
    if path is None and _BUNDLED is not None:
        return _BUNDLED
    source = path or bundled_reference_path()
    with open(source, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    snapshot = reference_from_document(document, origin=str(source))
    if path is None:
        _BUNDLED = snapshot
    return snapshot
