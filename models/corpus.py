"""Training data: the bundled incident corpus (cases) and the reference population (controls).

Both are written in the contract's request form, so training turns them into feature rows through
exactly the facts and rules that scoring uses.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from risk_rules.errors import TravelriskError
from risk_rules.forms import AssessmentRequest
from risk_rules.reference import InMemoryReference
from risk_rules.sources import normalise_whitespace
from risk_rules.unknowns import PopulationShares

# The spread of short stays around their median, on the log scale (an assumption, on the card).
STAY_LOG_SD = 0.5
# An unstated stay is a 7-day placeholder leg (its length is unknown to the rules: `stay_given=False`).
UNSTATED_STAY_DAYS = 7
DERIVED_RECORD = re.compile(
    r"^(situation:[a-z0-9][a-z0-9-]*|employer_dispute:[a-z0-9][a-z0-9-]*|forced_return:[A-Z]{2}:\d{4}-\d{2}-\d{2})$"
)


class CorpusError(TravelriskError):
    """The incident corpus or population file is invalid."""


class CitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    quote: str = Field(min_length=10)


class NotDerived(BaseModel):
    """A reference record (or `prior:<rule>`, the passages behind a rule's prior) that shares a report, a
    passage or a name with an incident and is nevertheless not built from it, with the written reason why."""

    model_config = ConfigDict(extra="forbid")
    record: str = Field(pattern=DERIVED_RECORD.pattern[:-2] + r"|prior:[a-z][a-z0-9_]*)$")
    why: str = Field(min_length=20)


class Incident(BaseModel):
    """A documented detention, exit ban or forced return, with the trip it happened on."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    person: str
    outcome: Literal["detention", "exit_ban", "forced_return"]
    event: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="The state response or family the incident belongs to; validation holds an event out whole.",
    )
    derived_records: list[str] = Field(
        default=[],
        description="Reference records that exist because of this incident (situation:<id>,"
        " employer_dispute:<id>, forced_return:<country>:<date>); validation holds them out with the event.",
    )
    stay_stated: bool = Field(
        default=False,
        description="Whether the sources state the length of the stay; when not, every leg is a 7-day placeholder"
        " (it dates the leg for the situations active then) and the length of the stay is unknown: the factor"
        " reading it takes its expectation under the reference population.",
    )
    occurred_on: dt.date
    date_precision: Literal["day", "month", "year"]
    date_note: str | None = None
    summary: str
    sources: list[CitationIn] = Field(min_length=1)
    train: bool = True
    train_note: str | None = None
    count: int = Field(default=1, ge=1)
    request: AssessmentRequest
    assumptions: list[str] = []
    records_not_derived: list[NotDerived] = Field(
        default=[],
        description="Reference records that share a report, passage or name with the incident but are not built"
        " from it, each with the reason; any other overlap must be a derived record.",
    )

    @property
    def civil_or_commercial(self) -> bool:
        """The reporting states a civil, commercial or tax dispute of the traveller (or their company)."""
        legal = self.request.traveler.legal_exposure
        return bool(legal and (legal.civil_or_commercial_dispute or legal.tax_dispute))

    @model_validator(mode="after")
    def _date_within_trip(self) -> Incident:
        if not (self.request.trip.start <= self.occurred_on <= self.request.trip.end):
            raise ValueError(f"occurred_on {self.occurred_on} is outside the trip's dates")
        return self

    @model_validator(mode="after")
    def _unstated_stay_is_filled_like_controls(self) -> Incident:
        if self.stay_stated:
            return self
        for leg in self.request.trip.legs:
            days = (leg.depart - leg.arrive).days + 1
            if leg.transit:
                raise ValueError("a transit leg needs stay_stated: true (the sources must state it)")
            if days != UNSTATED_STAY_DAYS:
                raise ValueError(
                    f"a {days}-day leg to {leg.country}: an unstated stay is a {UNSTATED_STAY_DAYS}-day placeholder"
                    " leg (or set stay_stated: true and quote the source)"
                )
        return self

    @field_validator("derived_records")
    @classmethod
    def _record_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not DERIVED_RECORD.match(name):
                raise ValueError(
                    f"'{name}' is not situation:<id>, employer_dispute:<id> or forced_return:<country>:<YYYY-MM-DD>"
                )
        return names


def bundled_incidents_path() -> Path:
    return Path(str(resources.files("models") / "data" / "incidents.yaml"))


def bundled_population_path() -> Path:
    return Path(str(resources.files("models") / "data" / "population.yaml"))


def load_incidents(path: Path | None = None) -> list[Incident]:
    """Read and validate an incident file (a YAML or JSON list of incidents)."""
    source = path or bundled_incidents_path()
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CorpusError(f"{source}: cannot read incidents ({exc})") from exc
    if not isinstance(document, list):
        raise CorpusError(f"{source}: expected a list of incidents")
    incidents = []
    for position, item in enumerate(document):
        try:
            incidents.append(Incident.model_validate(item))
        except ValidationError as exc:
            name = item.get("id", f"#{position}") if isinstance(item, dict) else f"#{position}"
            raise CorpusError(f"{source}: incident {name}: {exc}") from exc
    ids = [i.id for i in incidents]
    if len(set(ids)) != len(ids):
        raise CorpusError(f"{source}: duplicate incident ids")
    return incidents


# ------------------------------------------------------------------------------------------------
# The reference population


@dataclass(frozen=True)
class Population:
    document: dict[str, Any]

    @classmethod
    def load(cls, path: Path | None = None) -> Population:
        """Read and check the population file: positive shares, ordered periods, and verbatim evidence."""
        source = path or bundled_population_path()
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
        if problems := population_problems(document):
            raise CorpusError(f"{source}: " + "; ".join(problems))
        return cls(document)

    @property
    def seed(self) -> int:
        return int(self.document["seed"])

    def provenance(self) -> list[dict[str, Any]]:
        """Every proportion with its basis (and the passages of those that rest on reporting), for the card."""
        rows = []
        for key, entry in self.document.items():
            if isinstance(entry, dict) and "basis" in entry:
                value = entry.get("value", entry.get("shares", entry.get("share", entry.get("median"))))
                if key == "dates":
                    value = f"{entry['start']} to {entry['end']}"
                if key == "travel_volume":
                    value = [{k: p[k] for k in ("from", "to", "relative")} for p in entry["periods"]]
                row = {"name": key, "value": value, "basis": entry["basis"], "why": " ".join(entry["why"].split())}
                evidence = [*entry.get("evidence", [])]
                for period in entry.get("periods", []):
                    evidence.extend(period.get("evidence", []))
                if evidence:
                    row["evidence"] = evidence
                rows.append(row)
        return rows

    def shares(self) -> PopulationShares:
        """The distributions of the fields a request may leave out, as the controls are drawn from them."""
        doc = self.document

        def value(key: str) -> float:
            return float(doc[key]["value"])

        return PopulationShares(
            occupation=tuple((k, float(v)) for k, v in doc["occupations"]["shares"].items()),
            sector=tuple((k, float(v)) for k, v in doc["sectors"]["shares"].items()),
            purpose=tuple((k, float(v)) for k, v in doc["purposes"]["shares"].items()),
            born=value("born_in_destination_share"),
            permit_if_claimed_or_born=value("permit_entry_share_given_claimed_or_born"),
            relatives=value("relatives_in_destination_share"),
            relatives_if_born=value("relatives_share_given_born"),
            family_sought=value("family_member_sought_share"),
            relative_critic_if_claimed_or_born=value("relative_critic_share_given_claimed_or_born"),
            personally_sought=value("personally_sought_share"),
            criminal_investigation=value("criminal_investigation_share"),
            civil_or_commercial_dispute=value("civil_or_commercial_dispute_share"),
            tax_dispute=value("tax_dispute_share"),
            criticizes=value("criticizes_government_share"),
            activism=(("democracy", value("activism_share")),),
            affiliations=(("falun_gong", value("affiliation_share")),),
            employer_in_dispute=value("employer_in_dispute_share"),
            stay_days=stay_distribution(doc["stay_days"]),
        )

    def relative_volume(self) -> list[tuple[dt.date, dt.date, float]]:
        """The periods in which trips run at a fraction of the usual volume: (first day, last day, fraction)."""
        entry = self.document.get("travel_volume") or {"periods": []}
        return [
            (dt.date.fromisoformat(p["from"]), dt.date.fromisoformat(p["to"]), float(p["relative"]))
            for p in entry["periods"]
        ]


def stay_distribution(stay: dict[str, Any]) -> tuple[tuple[float, float], ...]:
    """P(a trip's leg lasts d days), d = 1 … 365: a log-normal around the median (sd 0.5 on the log
    scale) rounded to whole days, at least one, and a share of long stays spread evenly over their range."""
    from statistics import NormalDist

    log_median = math.log(float(stay["median"]))
    normal = NormalDist(log_median, STAY_LOG_SD)

    def below(days: float) -> float:
        return normal.cdf(math.log(days)) if days > 0 else 0.0

    long_share = float(stay["long_stay_share"])
    low, high = (int(v) for v in stay["long_stay_days"])
    short = [below(1.5)] + [below(d + 0.5) - below(d - 0.5) for d in range(2, 366)]
    total = sum(short)
    out = []
    for d in range(1, 366):
        p = (1.0 - long_share) * short[d - 1] / total
        if low <= d <= high:
            p += long_share / (high - low + 1)
        if p > 0:
            out.append((float(d), p))
    return tuple(out)


def population_problems(document: Any) -> list[str]:
    """What is wrong with a population document (empty when it is valid).

    Shares must be positive; a proportion whose basis is `reporting` must carry evidence whose quotes
    appear verbatim in the registered reporting, as the rules' and incidents' quotes must.
    """
    from risk_rules.sources import quote_problem

    if not isinstance(document, dict):
        return ["the population must be a mapping"]
    problems: list[str] = []
    for key, entry in document.items():
        if not isinstance(entry, dict) or "basis" not in entry:
            continue
        if entry["basis"] not in ("assumption", "reporting"):
            problems.append(f"{key}: basis must be 'assumption' or 'reporting'")
        shares = entry.get("shares") or entry.get("countries")
        # Shares are weights (drawn in proportion to their sum), so only their signs are checked.
        if isinstance(shares, dict) and not all(float(v) > 0 for v in shares.values()):
            problems.append(f"{key}: every share must be positive")
        evidence = list(entry.get("evidence", []))
        periods = entry.get("periods", [])
        previous_end: dt.date | None = None
        for period in periods:
            try:
                first, last = dt.date.fromisoformat(period["from"]), dt.date.fromisoformat(period["to"])
                fraction = float(period["relative"])
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(f"{key}: a period needs from, to (YYYY-MM-DD) and relative ({exc})")
                continue
            if last < first or (previous_end is not None and first <= previous_end):
                problems.append(f"{key}: periods must be in order and must not overlap ({period['from']})")
            if not 0 < fraction <= 1:
                problems.append(f"{key}: relative volume must be in (0, 1], not {fraction}")
            if not period.get("evidence"):
                problems.append(f"{key}: the period from {period['from']} cites no evidence")
            evidence.extend(period.get("evidence", []))
            previous_end = last
        if entry["basis"] == "reporting" and not evidence:
            problems.append(f"{key}: a proportion from reporting must cite its evidence")
        for citation in evidence:
            if problem := quote_problem(str(citation.get("source")), str(citation.get("quote", ""))):
                problems.append(f"{key}: {problem}")
    return problems


def _arrival(
    rng: np.random.Generator, start: dt.date, span: int, volume: list[tuple[dt.date, dt.date, float]]
) -> dt.date:
    """A day drawn in proportion to travel volume: a day in a reduced period is kept with its fraction."""
    while True:
        day = start + dt.timedelta(days=int(rng.integers(span)))
        fraction = next((f for first, last, f in volume if first <= day <= last), 1.0)
        if fraction >= 1.0 or rng.random() < fraction:
            return day


class _Choice:
    """Draws keys in proportion to their shares (weights, normalised), one uniform number a draw."""

    def __init__(self, shares: dict[str, float]) -> None:
        self.keys = list(shares)
        weights = np.asarray([float(shares[k]) for k in self.keys])
        self.cumulative = np.cumsum(weights / weights.sum())

    def __call__(self, rng: np.random.Generator) -> str:
        index = int(np.searchsorted(self.cumulative, rng.random(), side="right"))
        return self.keys[min(index, len(self.keys) - 1)]


# The names the reference population's employers go by when they are in no recorded dispute: a stated
# employer, so that the employer-dispute factor is judged (no) rather than unknown.
CONTROL_EMPLOYER = "Reference population employer"


def generate_controls(
    population: Population, reference: InMemoryReference, trips: int | None = None, seed: int | None = None
) -> list[AssessmentRequest]:
    """Draw ordinary trips from the reference population with a fixed seed (deterministic).

    Every field a request may leave out is stated for a control: its value is drawn from the shares
    `Population.shares` gives, the same shares a left-out field's expectation is taken under."""
    doc = population.document
    shares = population.shares()
    rng = np.random.default_rng(population.seed if seed is None else seed)
    count = int(doc["trips"] if trips is None else trips)
    start = dt.date.fromisoformat(doc["dates"]["start"])
    span = (dt.date.fromisoformat(doc["dates"]["end"]) - start).days
    disputed = [d.name for d in reference.employer_disputes] or [CONTROL_EMPLOYER]
    volume = population.relative_volume()
    claimed_group: set[str] = set()
    for code in reference.covered_destinations():
        profile = reference.destination_profile(code)
        if profile is not None:
            claimed_group |= profile.nationality_group
    destinations = _Choice(doc["destinations"]["shares"])
    homes = _Choice(doc["citizenships"]["shares"])
    occupations = _Choice(dict(shares.occupation))
    sectors = _Choice(dict(shares.sector))
    purposes = _Choice(dict(shares.purpose))
    vias = _Choice(doc["transit"]["countries"])
    stays = _Choice({str(int(d)): p for d, p in shares.stay_days})
    activism = shares.activism[0] if shares.activism else ("democracy", 0.0)
    affiliation = shares.affiliations[0] if shares.affiliations else ("falun_gong", 0.0)

    def chance(p: float) -> bool:
        return bool(rng.random() < p)

    out: list[AssessmentRequest] = []
    for _ in range(count):
        destination = destinations(rng)
        home = homes(rng)
        citizenships = [home]
        if chance(float(doc["prc_national_share"]["value"])):
            citizenships = ["CN"]
        elif chance(float(doc["dual_national_share"]["value"])):
            citizenships = [home, "CN"]
        claimed = any(c in claimed_group for c in citizenships)
        born = chance(shares.born)
        traveler: dict[str, Any] = {
            "citizenships": citizenships,
            "birth_country": "CN" if born else citizenships[0],
            "former_citizenships": ["CN"] if born and not claimed else [],
            "occupation": occupations(rng),
            "employer": {"name": CONTROL_EMPLOYER, "sector": sectors(rng)},
            "relatives_in_destination": chance(shares.relatives) or (born and chance(shares.relatives_if_born)),
            "legal_exposure": {
                "sought_by_destination_authorities": chance(shares.personally_sought),
                "criminal_investigation": chance(shares.criminal_investigation),
                "civil_or_commercial_dispute": chance(shares.civil_or_commercial_dispute),
                "tax_dispute": chance(shares.tax_dispute),
            },
            "public_profile": {
                "criticizes_destination_government": chance(shares.criticizes),
                "activism": [activism[0]] if chance(activism[1]) else [],
            },
            "affiliations": [affiliation[0]] if chance(affiliation[1]) else [],
        }
        ties = []
        if chance(shares.family_sought):
            ties.append({"relation": "parent", "sought_by_destination_authorities": True})
        if (claimed or born) and chance(shares.relative_critic_if_claimed_or_born):
            ties.append({"relation": "sibling", "criticizes_destination_government": True})
        traveler["family_ties"] = ties
        if chance(shares.employer_in_dispute):
            traveler["employer"]["name"] = disputed[int(rng.integers(len(disputed)))]
        arrive = _arrival(rng, start, span, volume)
        days = int(stays(rng))
        legs = []
        if rng.random() < float(doc["transit"]["share"]):
            legs.append(
                {"country": vias(rng), "arrive": arrive.isoformat(), "depart": arrive.isoformat(), "transit": True}
            )
        legs.append(
            {
                "country": destination,
                "arrive": arrive.isoformat(),
                "depart": (arrive + dt.timedelta(days=days - 1)).isoformat(),
            }
        )
        entry = "destination_travel_permit" if (claimed or born) and chance(shares.permit_if_claimed_or_born) else None
        trip = {"purpose": purposes(rng), "legs": legs, "entry_document": entry or citizenships[0]}
        out.append(AssessmentRequest.model_validate({"traveler": traveler, "trip": trip}))
    return out


# ------------------------------------------------------------------------------------------------
# Records built from cases: every overlap declared


# Words that make a capitalised run of words a place, a nationality or an institution, not a person.
_NOT_A_NAME = frozenset(
    [
        "Afghan",
        "Afghanistan",
        "American",
        "Americans",
        "Australia",
        "Australian",
        "Beijing",
        "Britain",
        "British",
        "Cambodia",
        "Canada",
        "Canadian",
        "Canadians",
        "Caucasian",
        "China",
        "Chinese",
        "Communist",
        "Crown",
        "Egypt",
        "Egyptian",
        "European",
        "Falun",
        "Gong",
        "Germany",
        "Group",
        "Hong",
        "Kong",
        "House",
        "Human",
        "Japan",
        "Japanese",
        "Kazakhstan",
        "Korea",
        "Korean",
        "Kyrgyzstan",
        "Macau",
        "Macao",
        "Malaysia",
        "Muslims",
        "National",
        "Party",
        "People",
        "Republic",
        "Rights",
        "Saudi",
        "Security",
        "Shanghai",
        "South",
        "State",
        "States",
        "Taiwan",
        "Taiwanese",
        "Thai",
        "Thailand",
        "The",
        "Tibet",
        "Tibetan",
        "UAE",
        "Uighur",
        "Uighurs",
        "United",
        "Uyghur",
        "Uyghurs",
        "Uzbekistan",
        "Watch",
        "Xinjiang",
        "Asylum",
        "Red",
        "Army",
        "Sky",
        "Net",
        "Fox",
        "Hunt",
        "Ministry",
        "Office",
        "Patent",
        "Trademark",
        "University",
        "Bank",
        "Company",
        "Corporation",
        "Holdings",
        "Foreign",
        "Affairs",
        "Times",
        "New",
        "York",
        "Post",
        "Morning",
        "Radio",
        "Free",
        "Asia",
        "Prime",
        "Minister",
        "Minister",
        "President",
        "Embassy",
        "Consulate",
        "Court",
        "Supreme",
        "Intermediate",
        "Police",
        "Public",
        "Bureau",
        "Department",
        "Mr",
        "Mrs",
        "Ms",
        "Dr",
    ]
)
_NAME_RUN = re.compile(r"[A-Z][\w’'\-]+(?:\s+[A-Z][\w’'\-]+)+")
_SAME_PASSAGE_CHARS = 40


def _person_names(person: str) -> list[str]:
    """The names in an incident's `person` (runs of capitalised words that are not places or groups)."""
    names = []
    for run in _NAME_RUN.findall(person):
        words = [w for w in run.split() if w not in _NOT_A_NAME]
        if len(words) >= 2:
            names.append(" ".join(words))
    return names


def _names_in(names: list[str], text: str) -> list[str]:
    """The names (or, for a name of a long last word, that word alone) that `text` mentions."""
    found = []
    for name in names:
        last = name.split()[-1]
        patterns = [re.escape(name)] + ([re.escape(last)] if len(last) >= 5 else [])
        if any(re.search(rf"\b{p}\b", text) for p in patterns):
            found.append(name)
    return found


def _same_passage(a: str, b: str) -> bool:
    """Two quotes of one source overlap: one holds the other, or they share a long run of text."""
    from difflib import SequenceMatcher

    a, b = normalise_whitespace(a), normalise_whitespace(b)
    if a in b or b in a:
        return True
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size >= _SAME_PASSAGE_CHARS


def _reference_records(document: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]], str]]:
    """Each reference record as (its name as incidents name it, its citations, the text of its notes)."""
    out = []

    def cites(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(c["source"], c.get("quote", "")) for c in items or [] if c.get("source")]

    for s in document.get("situations", []):
        notes = " ".join(str(s.get(k) or "") for k in ("title", "date_note", "severity_note"))
        out.append((f"situation:{s['id']}", cites(s.get("sources")), notes))
    for d in document.get("employer_disputes", []):
        notes = " ".join(str(d.get(k) or "") for k in ("name", "date_note", "note"))
        out.append((f"employer_dispute:{d['id']}", cites(d.get("sources")), notes))
    for t in document.get("third_countries", []):
        for r in t.get("forced_returns", []) or []:
            notes = " ".join(str(r.get(k) or "") for k in ("description", "date_note"))
            out.append((f"forced_return:{t['code']}:{r['occurred_on']}", cites(r.get("sources")), notes))
    return out


def derived_record_problems(
    incidents: list[Incident], ruleset: Any, reference_document: dict[str, Any] | None = None
) -> list[str]:
    """Undeclared overlaps between the corpus and what is built from documents it also rests on.

    A reference record that cites a report an incident cites, quotes a passage an incident quotes, or whose
    title or notes name the incident's person, is derived from that incident: it must be among the
    incident's `derived_records` or carry a reason in its `records_not_derived`. A prior's passage that an
    incident also quotes rests on that incident's event: the passage must name the event among its cases.
    """
    from risk_rules.reference import bundled_reference_path
    from risk_rules.sources import load_reporting

    if reference_document is None:
        reference_document = yaml.safe_load(bundled_reference_path().read_text(encoding="utf-8"))
    reports = set(load_reporting())
    records = _reference_records(reference_document)
    problems = []
    for incident in incidents:
        if not incident.train:
            continue
        quoted: dict[str, list[str]] = {}
        for c in incident.sources:
            quoted.setdefault(c.source, []).append(c.quote)
        declared = set(incident.derived_records) | {n.record for n in incident.records_not_derived}
        names = _person_names(incident.person)
        for record, citations, notes in records:
            why = []
            for source, quote in citations:
                if source in quoted and source in reports:
                    why.append(f"both cite the report {source}")
                elif source in quoted and any(_same_passage(quote, q) for q in quoted[source]):
                    why.append(f"both quote one passage of {source}")
            if mentioned := _names_in(names, notes):
                why.append(f"its notes name {', '.join(mentioned)}")
            if why and record not in declared:
                problems.append(
                    f"{record} overlaps incident {incident.id} ({'; '.join(sorted(set(why)))}): list it in the"
                    " incident's derived_records, or in records_not_derived with the reason it is independent"
                )
        for rule in ruleset.rules:
            if f"prior:{rule.id}" in declared:
                continue
            for passage in rule.prior.evidence:
                if incident.event in passage.cases:
                    continue
                if any(_same_passage(passage.quote, q) for q in quoted.get(passage.source, ())):
                    problems.append(
                        f"rule {rule.id}: a prior passage of {passage.source} is quoted by incident {incident.id}:"
                        f" name its event '{incident.event}' among the passage's cases"
                    )
    return problems


def check_derived_records(incidents: list[Incident], ruleset: Any) -> None:
    """Refuse a corpus whose overlaps with the reference records or the priors are not declared."""
    if problems := derived_record_problems(incidents, ruleset):
        raise CorpusError("undeclared derived records:\n- " + "\n- ".join(problems))
