"""Training data: the bundled incident corpus (cases) and the reference population (controls).

Both are written in the contract's request form, so training turns them into feature rows through
exactly the facts and rules that scoring uses.
"""

from __future__ import annotations

import datetime as dt
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

# An unstated stay is filled the way the reference population fills it: its median (population.yaml).
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
        description="Whether the sources state the length of the stay; when not, every leg is the reference"
        " population's median stay and there is no transit leg, so no factor fires from a convention.",
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
    event: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Incidents from one state response or one family share an event;"
        " validation holds them out together.",
    )
    derived_records: list[str] = Field(
        default=[],
        description="Reference records that exist because of this incident, as kind:id"
        " (situation:<id>, employer_dispute:<id>, third_country:<code>).",
    )

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
                    f"a {days}-day leg to {leg.country}: an unstated stay is the reference population's median,"
                    f" {UNSTATED_STAY_DAYS} days (or set stay_stated: true and quote the source)"
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

    def relative_volume(self) -> list[tuple[dt.date, dt.date, float]]:
        """The periods in which trips run at a fraction of the usual volume: (first day, last day, fraction)."""
        entry = self.document.get("travel_volume") or {"periods": []}
        return [
            (dt.date.fromisoformat(p["from"]), dt.date.fromisoformat(p["to"]), float(p["relative"]))
            for p in entry["periods"]
        ]


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


def _pick(rng: np.random.Generator, shares: dict[str, float]) -> str:
    keys = list(shares)
    weights = np.asarray([shares[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]


def generate_controls(
    population: Population, reference: InMemoryReference, trips: int | None = None, seed: int | None = None
) -> list[AssessmentRequest]:
    """Draw ordinary trips from the reference population with a fixed seed (deterministic)."""
    doc = population.document
    rng = np.random.default_rng(population.seed if seed is None else seed)
    count = int(doc["trips"] if trips is None else trips)
    start = dt.date.fromisoformat(doc["dates"]["start"])
    span = (dt.date.fromisoformat(doc["dates"]["end"]) - start).days
    disputed = [d.name for d in reference.employer_disputes] or ["(none)"]
    volume = population.relative_volume()

    def chance(key: str) -> bool:
        return bool(rng.random() < float(doc[key]["value"]))

    out: list[AssessmentRequest] = []
    for _ in range(count):
        destination = _pick(rng, doc["destinations"]["shares"])
        home = _pick(rng, doc["citizenships"]["shares"])
        citizenships = [home]
        if chance("prc_national_share"):
            citizenships = ["CN"]
        elif chance("dual_national_share"):
            citizenships = [home, "CN"]
        born = chance("born_in_destination_share")
        traveler: dict[str, Any] = {
            "citizenships": citizenships,
            "occupation": _pick(rng, doc["occupations"]["shares"]),
            "employer": {"sector": _pick(rng, doc["sectors"]["shares"])},
            "relatives_in_destination": bool(chance("relatives_in_destination_share") or (born and rng.random() < 0.5)),
            "legal_exposure": {
                "sought_by_destination_authorities": chance("personally_sought_share"),
                "criminal_investigation": chance("criminal_investigation_share"),
                "civil_or_commercial_dispute": chance("civil_or_commercial_dispute_share"),
                "tax_dispute": chance("tax_dispute_share"),
            },
            "public_profile": {
                "criticizes_destination_government": chance("criticizes_government_share"),
                "activism": ["democracy"] if chance("activism_share") else [],
            },
            "affiliations": ["falun_gong"] if chance("affiliation_share") else [],
        }
        if born:
            traveler["birth_country"] = "CN"
            if "CN" not in citizenships:
                traveler["former_citizenships"] = ["CN"]
        ties = []
        if chance("family_member_sought_share"):
            ties.append({"relation": "parent", "sought_by_destination_authorities": True})
        if ("CN" in citizenships or born) and chance("relative_critic_share_given_claimed_or_born"):
            ties.append({"relation": "sibling", "criticizes_destination_government": True})
        if ties:
            traveler["family_ties"] = ties
        if chance("employer_in_dispute_share"):
            traveler["employer"]["name"] = disputed[int(rng.integers(len(disputed)))]
        arrive = _arrival(rng, start, span, volume)
        stay = doc["stay_days"]
        if rng.random() < float(stay["long_stay_share"]):
            low, high = stay["long_stay_days"]
            days = int(rng.integers(low, high + 1))
        else:
            days = max(1, int(round(rng.lognormal(np.log(stay["median"]), 0.5))))
        legs = []
        if rng.random() < float(doc["transit"]["share"]):
            via = _pick(rng, doc["transit"]["countries"])
            legs.append({"country": via, "arrive": arrive.isoformat(), "depart": arrive.isoformat(), "transit": True})
        legs.append(
            {
                "country": destination,
                "arrive": arrive.isoformat(),
                "depart": (arrive + dt.timedelta(days=days - 1)).isoformat(),
            }
        )
        claimed = "CN" in citizenships or born
        entry = "destination_travel_permit" if claimed and chance("permit_entry_share_given_claimed_or_born") else home
        trip = {"purpose": _pick(rng, doc["purposes"]["shares"]), "legs": legs, "entry_document": entry}
        out.append(AssessmentRequest.model_validate({"traveler": traveler, "trip": trip}))
    return out
