"""The contract's request and response forms.

One set of Pydantic models shared by the HTTP API, the CLI and training, so that every path parses
exactly what the API accepts. The scoring engine itself works on plain dataclasses built from these.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from risk_rules.values import IsoDate, SingleLine

# Caps keep a single request bounded: enough for any real traveller and itinerary.
MAX_LEGS = 50
MAX_CITIZENSHIPS = 10
MAX_FAMILY_TIES = 50
MAX_LIST = 20
MAX_TEXT = 200


@lru_cache(maxsize=1)
def iso_country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, from pycountry's maintained copy of the standard."""
    return frozenset(country.alpha_2 for country in pycountry.countries)


def _country_code(value: str) -> str:
    if value not in iso_country_codes():
        raise ValueError(
            f"'{value}' is not an ISO 3166-1 alpha-2 country code (two upper-case letters, e.g. CA, CN, HK)"
        )
    return value


CountryCode = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_country_code)]


class Occupation(StrEnum):
    diplomat = "diplomat"
    former_diplomat = "former_diplomat"
    government_official = "government_official"
    journalist = "journalist"
    academic = "academic"
    think_tank_analyst = "think_tank_analyst"
    ngo_worker = "ngo_worker"
    business_executive = "business_executive"
    due_diligence_investigator = "due_diligence_investigator"
    finance_professional = "finance_professional"
    engineer = "engineer"
    teacher = "teacher"
    student = "student"
    religious_worker = "religious_worker"
    tour_operator = "tour_operator"
    retired = "retired"
    other = "other"


class Sector(StrEnum):
    think_tank = "think_tank"
    due_diligence_consulting = "due_diligence_consulting"
    finance = "finance"
    mining_resources = "mining_resources"
    technology = "technology"
    media = "media"
    ngo = "ngo"
    government = "government"
    academia = "academia"
    manufacturing = "manufacturing"
    education = "education"
    other = "other"


class Activism(StrEnum):
    human_rights = "human_rights"
    democracy = "democracy"
    religious_freedom = "religious_freedom"
    ethnic_minority_rights = "ethnic_minority_rights"
    hong_kong = "hong_kong"
    taiwan = "taiwan"
    tibet = "tibet"
    labor = "labor"
    other = "other"


class Affiliation(StrEnum):
    falun_gong = "falun_gong"
    uyghur_diaspora_organization = "uyghur_diaspora_organization"
    tibetan_diaspora_organization = "tibetan_diaspora_organization"
    pro_democracy_organization = "pro_democracy_organization"
    other = "other"


class Relation(StrEnum):
    parent = "parent"
    child = "child"
    sibling = "sibling"
    spouse = "spouse"
    other = "other"


class Purpose(StrEnum):
    business = "business"
    family_visit = "family_visit"
    tourism = "tourism"
    conference = "conference"
    research = "research"
    journalism = "journalism"
    official = "official"
    study = "study"
    transit = "transit"
    other = "other"


DESTINATION_TRAVEL_PERMIT = "destination_travel_permit"


class _Form(BaseModel):
    # Unknown fields are rejected so that a misspelt field is reported instead of silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


# Not given is not "no": every field a traveller's request may leave out is None when it is left out, and
# the score treats it as unknown (its expectation under the reference population, `risk_rules.unknowns`).
# An explicit `false` or `[]` is a statement; an omitted field or `null` is not.
NOT_GIVEN = "Omitted or null: not given, scored as unknown (its expectation under the reference population)."


class Employer(_Form):
    name: Annotated[str, Field(min_length=1, max_length=MAX_TEXT), SingleLine] | None = Field(
        default=None, description=NOT_GIVEN
    )
    sector: Sector | None = Field(default=None, description=NOT_GIVEN)


class PublicProfile(_Form):
    criticizes_destination_government: bool | None = Field(default=None, description=NOT_GIVEN)
    activism: Annotated[list[Activism], Field(max_length=MAX_LIST)] | None = Field(default=None, description=NOT_GIVEN)


class FamilyTie(_Form):
    relation: Relation
    sought_by_destination_authorities: bool = False
    lives_in_destination: bool = False
    criticizes_destination_government: bool = Field(
        default=False,
        description="The relative publicly criticises the destination's government (a commentator, a student"
        " speaking out abroad): the destination has held critics' relatives to silence them.",
    )


class LegalExposure(_Form):
    civil_or_commercial_dispute: bool | None = Field(default=None, description=NOT_GIVEN)
    tax_dispute: bool | None = Field(default=None, description=NOT_GIVEN)
    criminal_investigation: bool | None = Field(default=None, description=NOT_GIVEN)
    sought_by_destination_authorities: bool | None = Field(default=None, description=NOT_GIVEN)


class Traveler(_Form):
    reference: Annotated[str, Field(min_length=1, max_length=100), SingleLine] | None = Field(
        default=None, description="The client's own pseudonymous id for the traveller; no names needed."
    )
    citizenships: Annotated[list[CountryCode], Field(min_length=1, max_length=MAX_CITIZENSHIPS)]
    birth_country: CountryCode | None = Field(default=None, description=NOT_GIVEN)
    former_citizenships: Annotated[list[CountryCode], Field(max_length=MAX_CITIZENSHIPS)] | None = Field(
        default=None, description="[] states there are none. " + NOT_GIVEN
    )
    occupation: Occupation | None = Field(default=None, description=NOT_GIVEN)
    employer: Employer | None = Field(default=None, description="Its name and sector; each " + NOT_GIVEN)
    public_profile: PublicProfile | None = Field(default=None, description="Each of its fields: " + NOT_GIVEN)
    affiliations: Annotated[list[Affiliation], Field(max_length=MAX_LIST)] | None = Field(
        default=None, description="[] states there are none. " + NOT_GIVEN
    )
    family_ties: Annotated[list[FamilyTie], Field(max_length=MAX_FAMILY_TIES)] | None = Field(
        default=None,
        description="The ties that matter ([] states there are none); a tie's flags default to false. " + NOT_GIVEN,
    )
    relatives_in_destination: bool | None = Field(default=None, description=NOT_GIVEN)
    legal_exposure: LegalExposure | None = Field(default=None, description="Each of its fields: " + NOT_GIVEN)


class Leg(_Form):
    country: CountryCode
    region: Annotated[str, Field(min_length=1, max_length=MAX_TEXT), SingleLine] | None = None
    arrive: IsoDate
    depart: IsoDate
    transit: bool = False

    @field_validator("depart")
    @classmethod
    def _depart_not_before_arrive(cls, depart: dt.date, info: ValidationInfo) -> dt.date:
        # A field validator (not a model validator) so that the error's path ends in `depart`.
        arrive = info.data.get("arrive")
        if arrive is not None and depart < arrive:
            raise ValueError(
                f"depart ({depart.isoformat()}) is before arrive ({arrive.isoformat()}):"
                " depart must be on or after arrive"
            )
        return depart


EntryDocument = Literal["destination_travel_permit"] | CountryCode


class Trip(_Form):
    purpose: Purpose | None = Field(default=None, description=NOT_GIVEN)
    legs: Annotated[list[Leg], Field(min_length=1, max_length=MAX_LEGS)]
    entry_document: EntryDocument | None = Field(
        default=None,
        description="The passport used (a country code), or destination_travel_permit for a document the"
        " destination issues to people it treats as its own (such as a Home Return Permit). " + NOT_GIVEN,
    )

    @property
    def start(self) -> dt.date:
        return min(leg.arrive for leg in self.legs)

    @property
    def end(self) -> dt.date:
        return max(leg.depart for leg in self.legs)


class AssessmentRequest(_Form):
    """A planned trip to score: the traveller and the itinerary."""

    traveler: Traveler
    trip: Trip


# ---------------------------------------------------------------------------------------------
# Response


class Band(StrEnum):
    low = "low"
    elevated = "elevated"
    high = "high"
    severe = "severe"


class Status(StrEnum):
    scored = "scored"
    out_of_scope = "out_of_scope"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Score(_Out):
    probability: float = Field(description="Modelled probability of detention or exit ban during the trip.")
    interval: tuple[float, float] = Field(
        description="95% posterior interval of the probability (from the model's posterior draws)."
    )
    band: Band
    log_odds: float
    not_given_log_odds: float = Field(
        default=0.0,
        description="What the factors that could not be judged for a field left out add to the log-odds at their"
        " expectation (on the leg where they add most): the part of the score that is neither the baseline nor"
        " a listed factor.",
    )


class BandThresholdsOut(_Out):
    elevated: float
    high: float
    severe: float


class Baseline(_Out):
    probability: float = Field(description="The same itinerary for a traveller with no factors.")
    band_thresholds: BandThresholdsOut | None = Field(
        default=None,
        description="The probabilities at which this itinerary enters each band: fixed multiples of its"
        " no-factor odds (elevated 3×, high 10×, severe 50×), whatever its number of legs.",
    )


class NotGiven(_Out):
    """A field the request leaves out that a factor could not be judged without."""

    field: str = Field(description="The request field, as a path (e.g. traveler.occupation).")
    factors: list[str] = Field(description="The factors whose value depends on it.")
    probability_range: tuple[float, float] = Field(
        description="The trip probabilities its possible values give, the other left-out fields at their"
        " expectation; the score itself takes its expectation under the reference population."
    )


class Evidence(_Out):
    source: str
    quote: str


class FactorOut(_Out):
    id: str
    title: str
    value: float = Field(description="The factor's value in [0, 1] (1 for a factor that simply fires).")
    coefficient: float = Field(description="The model's log-odds per unit of value.")
    contribution: float = Field(description="coefficient × value, in log-odds.")
    odds_multiplier: float
    leg: str = Field(description="The leg's country where the factor contributes most.")
    reason: str
    evidence: list[Evidence]
    derived_from: list[str]


class LegOut(_Out):
    country: str
    arrive: dt.date
    depart: dt.date
    assessed: bool
    probability: float | None = None


class Review(_Out):
    required: bool
    state: Literal[
        "not_required",
        "pending",
        "awaiting_second_review",
        "approved",
        "approved_with_conditions",
        "rejected",
        "escalated",
    ] = Field(description="Scoring gives `pending` or `not_required`; review decisions and re-scores move it on.")
    policy_version: int | None = Field(
        default=None, description="The tenant policy version the scoring was judged under (0: the default)."
    )
    since: dt.datetime | None = Field(default=None, description="Since when the review has been in this state.")


class Versions(_Out):
    model: str
    rules: str
    reference_data: str


class PossibleEmployerMatch(_Out):
    """A recorded dispute whose organisation name is close to the employer's, but not equal to it."""

    dispute_id: str
    name: str
    similarity: float = Field(description="Name similarity, 0 to 100.")


class AssessmentResult(_Out):
    """The scoring core's output: the contract's response body without the stored id and time."""

    status: Status
    score: Score | None
    baseline: Baseline | None
    factors: list[FactorOut]
    not_given: list[NotGiven] = Field(
        default=[],
        description="Fields left out that a factor could not be judged without, with the factors and the range"
        " of probabilities they could have produced; the score takes each one's expectation.",
    )
    legs: list[LegOut]
    mitigations: list[str]
    review: Review
    versions: Versions
    covered_destinations: list[str] = Field(
        default_factory=list, description="Destinations the service has a risk profile for."
    )
    possible_employer_matches: list[PossibleEmployerMatch] = Field(
        default=[],
        description="Employer-dispute records with a close but not equal name: not a factor, for a reviewer.",
    )


class RevisionInfo(_Out):
    """One scoring of a stored assessment: 1 is the original, later ones follow reference-data changes."""

    revision: int
    created_at: dt.datetime
    reason: str
    versions: Versions


class AssessmentResponse(AssessmentResult):
    """The contract's response body for POST and GET /v1/assessments."""

    id: str
    created_at: dt.datetime
    revision: int = Field(default=1, description="Which scoring this is: 1 is the original.")
    revised_at: dt.datetime | None = Field(default=None, description="When this re-scoring was made.")
    revision_reason: str | None = Field(
        default=None, description="The reference-data change that caused this re-scoring."
    )
    revisions: list[RevisionInfo] = Field(
        default=[], description="Every scoring of the assessment, oldest first (on GET of one assessment)."
    )
