"""Facts: what is true of a traveller on each leg's dates.

`leg_facts(request, reference)` turns a validated request plus a reference-data snapshot into one
`LegFacts` per leg: a mapping of named, typed facts (the only thing rules can read), the record ids
each fact rests on (for `derived_from`), and the leg's kind. `FACT_TYPES` declares every fact; the
rule loader rejects a rule that reads anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from risk_rules.expr import FactType
from risk_rules.forms import DESTINATION_TRAVEL_PERMIT, AssessmentRequest, Leg, Traveler
from risk_rules.reference import (
    DestinationProfile,
    EmployerDispute,
    ForcedReturn,
    ReferenceSnapshot,
    Situation,
    ThirdCountryProfile,
    TreatyRecord,
)

# Leg kinds: a covered destination, a third country with a transit/return record, or neither.
DESTINATION = "destination"
THIRD_COUNTRY = "third_country"
UNASSESSED = "unassessed"

BILATERAL_KINDS = frozenset({"trade_dispute", "diplomatic_dispute", "sanctions"})

FACTS: dict[str, tuple[FactType, str]] = {
    # the leg
    "leg_kind": ("text", "destination, third_country or unassessed"),
    "destination": ("text", "the leg's country code"),
    "destination_name": ("text", "the leg's country or territory name"),
    "is_transit": ("bool", "the leg is a transit"),
    "stay_days": ("number", "calendar days on the leg (arrive and depart days included)"),
    "region": ("text", "the region given for the leg, or ''"),
    "region_flagged": ("bool", "the region has its own documented risk in the destination profile"),
    "region_note": ("text", "why the region is flagged"),
    "trip_purpose": ("text", "the trip's purpose, or ''"),
    # nationality
    "claims_as_national": ("bool", "one of the traveller's citizenships is the destination's own"),
    "dual_national": ("bool", "the destination's national who also holds another citizenship"),
    "destination_recognises_dual_nationality": ("bool", "the destination recognises dual nationality"),
    "born_in_destination": ("bool", "born in the destination's nationality area (e.g. CN, HK, MO)"),
    "former_national": ("bool", "formerly a citizen of the destination"),
    "entry_on_destination_document": (
        "bool",
        "entering on a destination-issued travel permit or the destination's own passport",
    ),
    "nationality_text": ("text", "which citizenship the destination claims, in words"),
    # family
    "family_member_sought": ("bool", "a family member is sought by the destination's authorities"),
    "sought_relations": ("text", "which relatives are sought, in words"),
    "relative_criticizes_government": ("bool", "a relative publicly criticises the destination's government"),
    "critic_relations": ("text", "which relatives are critics, in words"),
    "relatives_in_destination": ("bool", "relatives live in the destination"),
    # legal exposure
    "personally_sought": ("bool", "the traveller is sought by the destination's authorities"),
    "criminal_investigation": ("bool", "the traveller is under criminal investigation there"),
    "civil_or_commercial_dispute": ("bool", "a civil or commercial dispute there"),
    "tax_dispute": ("bool", "a tax dispute there"),
    # employer
    "employer_name": ("text", "the employer's name, or ''"),
    "employer_dispute_active": ("bool", "the employer is in a dispute with the destination on the leg's dates"),
    "employer_dispute_kinds": ("set", "kinds of the employer's active disputes"),
    "employer_dispute_text": ("text", "the employer's active disputes, in words"),
    # occupation
    "occupation": ("text", "the traveller's occupation, or ''"),
    "sector": ("text", "the employer's sector, or ''"),
    # public profile
    "criticizes_government": ("bool", "publicly criticises the destination's government"),
    "activism": ("set", "kinds of activism"),
    "affiliations": ("set", "affiliations"),
    # situations between a citizenship and the destination, active on the leg's dates
    "extradition_case_active": ("bool", "a home country holds a person the destination wants"),
    "extradition_case_severity": ("number", "the highest severity of those cases, in [0, 1]"),
    "extradition_case_days": ("number", "days from the earliest such case's start to the leg's arrival"),
    "extradition_case_text": ("text", "those cases, in words"),
    "bilateral_dispute_active": ("bool", "a trade, diplomatic or sanctions dispute is active"),
    "bilateral_dispute_severity": ("number", "the highest severity of those disputes, in [0, 1]"),
    "bilateral_dispute_kinds": ("set", "kinds of those disputes"),
    "bilateral_dispute_text": ("text", "those disputes, in words"),
    "compatriot_detentions_active": ("bool", "the destination is detaining the traveller's compatriots"),
    "compatriot_detentions_severity": ("number", "the highest severity of those situations, in [0, 1]"),
    "compatriot_detentions_text": ("text", "those situations, in words"),
    # the destination's laws
    "extraterritorial_law_in_force": ("bool", "a law reaching conduct abroad is in force in the destination"),
    "extraterritorial_law_text": ("text", "that law, in words"),
    # third countries
    "claimed_sought_or_targeted": (
        "bool",
        "a covered destination counts the traveller as its own or was born there, seeks them (personally or"
        " through a family member), or targets them for activism, criticism or affiliation: the travellers"
        " whose legs in a third country with forced returns or a treaty are assessed",
    ),
    "sought_or_targeted": (
        "bool",
        "a covered destination seeks the traveller (personally or through a family member) or targets them for"
        " activism, criticism or affiliation (being its national alone is not enough)",
    ),
    "third_country_forced_returns": ("bool", "the leg's country has forcibly returned people to a destination"),
    "third_country_forced_returns_text": ("text", "those returns, in words"),
    "third_country_extradition_treaty": ("bool", "the leg's country has an extradition treaty in force"),
    "third_country_extradition_treaty_text": ("text", "that treaty, in words"),
}
FACT_TYPES: dict[str, FactType] = {name: kind for name, (kind, _) in FACTS.items()}


# Every fact's value when nothing sets it: false, zero, empty.
_NEUTRAL: dict[str, Any] = {
    name: {"bool": False, "number": 0.0, "text": "", "set": frozenset()}[kind] for name, (kind, _) in FACTS.items()
}
_NEUTRAL["destination_recognises_dual_nationality"] = True


# ------------------------------------------------------------------------------------------------
# Fields a request may leave out. Not given is not "no": a left-out field is unknown, and the facts it
# sets hold a placeholder (their neutral value) that no score may read as a statement. The engine in
# `risk_rules.unknowns` takes each such fact's expectation under the reference population instead.


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A field a request may leave out: the path it is reported under and the facts it sets.

    `descriptive` marks the fields reporting on a case states whatever their value (who the traveller works
    for and as what, why they travelled); the others it states when they explain the case (a dispute, a
    critic in the family, a birth in the destination), so a case that states one is not a random draw."""

    name: str
    field: str
    facts: tuple[str, ...]
    descriptive: bool = False


LEFT_OUT: dict[str, LeftOut] = {
    v.name: v
    for v in (
        LeftOut("occupation", "traveler.occupation", ("occupation",), descriptive=True),
        LeftOut("sector", "traveler.employer.sector", ("sector",), descriptive=True),
        LeftOut("employer_name", "traveler.employer.name", ("employer_dispute_active",), descriptive=True),
        LeftOut("purpose", "trip.purpose", ("trip_purpose",), descriptive=True),
        LeftOut("entry_document", "trip.entry_document", ("entry_on_destination_document",)),
        LeftOut("birth_country", "traveler.birth_country", ("born_in_destination",)),
        LeftOut("former_citizenships", "traveler.former_citizenships", ("former_national",)),
        LeftOut("relatives_in_destination", "traveler.relatives_in_destination", ("relatives_in_destination",)),
        LeftOut("family_ties", "traveler.family_ties", ("family_member_sought", "relative_criticizes_government")),
        LeftOut(
            "sought_by_destination_authorities",
            "traveler.legal_exposure.sought_by_destination_authorities",
            ("personally_sought",),
        ),
        LeftOut(
            "criminal_investigation", "traveler.legal_exposure.criminal_investigation", ("criminal_investigation",)
        ),
        LeftOut(
            "civil_or_commercial_dispute",
            "traveler.legal_exposure.civil_or_commercial_dispute",
            ("civil_or_commercial_dispute",),
        ),
        LeftOut("tax_dispute", "traveler.legal_exposure.tax_dispute", ("tax_dispute",)),
        LeftOut(
            "criticizes_destination_government",
            "traveler.public_profile.criticizes_destination_government",
            ("criticizes_government",),
        ),
        LeftOut("activism", "traveler.public_profile.activism", ("activism",)),
        LeftOut("affiliations", "traveler.affiliations", ("affiliations",)),
        # Only the incident corpus leaves a stay out (a report that does not say how long a visit lasted);
        # a request's legs always carry their dates.
        LeftOut("stay", "trip.legs (length of stay)", ("stay_days",)),
    )
}

# Facts computed from other facts: when one of their inputs is unknown, they are recomputed for every
# value the unknown input can take. A rule that reads one of them reads its inputs.
SOUGHT_OR_TARGETED_INPUTS = (
    "personally_sought",
    "criminal_investigation",
    "family_member_sought",
    "criticizes_government",
    "activism",
    "affiliations",
)
DERIVED_FACT_INPUTS: dict[str, tuple[str, ...]] = {
    "sought_or_targeted": SOUGHT_OR_TARGETED_INPUTS,
    "claimed_sought_or_targeted": (*SOUGHT_OR_TARGETED_INPUTS, "born_in_destination", "former_national"),
}
# Internal values (never read by a rule): what the engine needs to condition an unknown on what is known.
CLAIMED_BY_CITIZENSHIP = "_claimed_by_citizenship"
FIRST_PASSPORT_IS_DESTINATIONS = "_first_passport_is_destinations"
EMPLOYER_DISPUTES_ACTIVE_SHARE = "_employer_disputes_active_share"


def derive_targeting(values: dict[str, Any]) -> None:
    """Recompute the two targeting facts from their inputs in `values` (after a substitution)."""
    sought_or_targeted = bool(
        values["personally_sought"]
        or values["criminal_investigation"]
        or values["family_member_sought"]
        or values["criticizes_government"]
        or values["activism"]
        or values["affiliations"]
    )
    values["sought_or_targeted"] = sought_or_targeted
    values["claimed_sought_or_targeted"] = bool(
        values[CLAIMED_BY_CITIZENSHIP]
        or values["born_in_destination"]
        or values["former_national"]
        or sought_or_targeted
    )


@dataclass(slots=True)
class LegFacts:
    """The facts for one leg, with the record ids each fact rests on and the fields left out.

    `unknown` names the `LEFT_OUT` fields the request does not give; the facts they set hold their
    neutral value as a placeholder, never a statement.
    """

    leg: Leg
    kind: str
    values: dict[str, Any]
    records: dict[str, tuple[str, ...]]
    unknown: frozenset[str] = frozenset()


def _days(leg: Leg) -> int:
    return (leg.depart - leg.arrive).days + 1


def _joined(items: list[str]) -> str:
    return "; ".join(items)


_SITUATION_KEYS = {
    prefix: (f"{prefix}_active", f"{prefix}_severity", f"{prefix}_text")
    for prefix in ("extradition_case", "bilateral_dispute", "compatriot_detentions")
}


def _situation_facts(
    prefix: str, situations: list[Situation], values: dict[str, Any], records: dict[str, tuple]
) -> None:
    active, severity, text = _SITUATION_KEYS[prefix]
    if not situations:  # the common case: skip building texts and record ids
        values[active] = False
        values[severity] = 0.0
        values[text] = ""
        return
    ids = tuple(f"situation:{s.id}" for s in situations)
    values[active] = True
    values[severity] = max(s.severity_weight for s in situations)
    values[text] = _joined([s.describe() for s in situations])
    records[active] = records[severity] = records[text] = ids


def _pick_profile(
    leg: Leg, reference: ReferenceSnapshot, claimed_sought_or_targeted: bool
) -> tuple[str, DestinationProfile | None, ThirdCountryProfile | None]:
    """The leg's kind. A third country is assessed only for a traveller a covered destination claims,
    seeks or targets: for anyone else it holds no documented risk of being returned to the destination."""
    profile = reference.destination_profile(leg.country)
    if profile is not None:
        return DESTINATION, profile, None
    third = reference.third_country_profile(leg.country)
    if third is not None and claimed_sought_or_targeted:
        return THIRD_COUNTRY, None, third
    return UNASSESSED, None, third


def _left_out(request: AssessmentRequest, stay_given: bool) -> frozenset[str]:
    """The `LEFT_OUT` fields this request does not give."""
    traveler = request.traveler
    trip = request.trip
    missing = []
    if traveler.occupation is None:
        missing.append("occupation")
    employer = traveler.employer
    if employer is None or employer.sector is None:
        missing.append("sector")
    if employer is None or employer.name is None:
        missing.append("employer_name")
    if trip.purpose is None:
        missing.append("purpose")
    if trip.entry_document is None:
        missing.append("entry_document")
    if traveler.birth_country is None:
        missing.append("birth_country")
    if traveler.former_citizenships is None:
        missing.append("former_citizenships")
    ties = traveler.family_ties
    if ties is None:
        missing.append("family_ties")
    # A tie that lives there states it; otherwise only the field itself does.
    if traveler.relatives_in_destination is None and not any(t.lives_in_destination for t in ties or ()):
        missing.append("relatives_in_destination")
    # A group left out (None) leaves out each of its fields.
    legal, profile = traveler.legal_exposure, traveler.public_profile
    missing += (name for name in _LEGAL_FIELDS if legal is None or getattr(legal, name) is None)
    missing += (name for name in _PROFILE_FIELDS if profile is None or getattr(profile, name) is None)
    if traveler.affiliations is None:
        missing.append("affiliations")
    if not stay_given:
        missing.append("stay")
    return frozenset(missing) if missing else _NOTHING_LEFT_OUT


_NOTHING_LEFT_OUT: frozenset[str] = frozenset()
_LEGAL_FIELDS = (
    "sought_by_destination_authorities",
    "criminal_investigation",
    "civil_or_commercial_dispute",
    "tax_dispute",
)
_PROFILE_FIELDS = ("criticizes_destination_government", "activism")


def leg_facts(request: AssessmentRequest, reference: ReferenceSnapshot, *, stay_given: bool = True) -> list[LegFacts]:
    """Derive the facts for every leg of the request's trip, using each leg's own dates.

    Fields the request leaves out are listed in each leg's `unknown`; the facts they set hold their
    neutral value. `stay_given=False` (the incident corpus, for a report that does not say how long a
    visit lasted) leaves the length of every stay unknown too.
    """
    traveler = request.traveler
    trip = request.trip
    citizenships = traveler.citizenships
    unknown = _left_out(request, stay_given)
    former = set(traveler.former_citizenships or ())
    profile = traveler.public_profile
    legal = traveler.legal_exposure
    ties = traveler.family_ties or ()
    sought_relations = sorted({t.relation.value for t in ties if t.sought_by_destination_authorities})
    critic_relations = sorted({t.relation.value for t in ties if t.criticizes_destination_government})
    relatives_there = bool(traveler.relatives_in_destination) or any(t.lives_in_destination for t in ties)
    employer_name = traveler.employer.name if traveler.employer and traveler.employer.name else ""
    sector = traveler.employer.sector.value if traveler.employer and traveler.employer.sector else ""
    activism = frozenset(a.value for a in profile.activism) if profile and profile.activism else frozenset()
    affiliations = frozenset(a.value for a in traveler.affiliations or ())
    common: dict[str, Any] = {
        "trip_purpose": trip.purpose.value if trip.purpose else "",
        "family_member_sought": bool(sought_relations),
        "sought_relations": ", ".join(sought_relations),
        "relative_criticizes_government": bool(critic_relations),
        "critic_relations": ", ".join(critic_relations),
        "relatives_in_destination": relatives_there,
        "personally_sought": bool(legal and legal.sought_by_destination_authorities),
        "criminal_investigation": bool(legal and legal.criminal_investigation),
        "civil_or_commercial_dispute": bool(legal and legal.civil_or_commercial_dispute),
        "tax_dispute": bool(legal and legal.tax_dispute),
        "employer_name": employer_name,
        "occupation": traveler.occupation.value if traveler.occupation else "",
        "sector": sector,
        "criticizes_government": bool(profile and profile.criticizes_destination_government),
        "activism": activism,
        "affiliations": affiliations,
    }
    # Third-country legs matter for travellers whom a covered destination claims or seeks.
    covered = reference.covered_profiles()
    claimable = reference.claimed_nationalities()  # every covered destination's nationality group, together
    claimed_by_citizenship = not claimable.isdisjoint(citizenships)
    born_claimed = traveler.birth_country in claimable
    former_claimed = not claimable.isdisjoint(former)
    common[CLAIMED_BY_CITIZENSHIP] = claimed_by_citizenship
    common[EMPLOYER_DISPUTES_ACTIVE_SHARE] = 0.0  # set per leg when the employer is left out
    if "entry_document" in unknown and claimable.issuperset(citizenships):
        # Every passport the traveller holds is the destination's own: whatever the request leaves out,
        # the traveller enters on a document the destination issues.
        unknown = unknown - {"entry_document"}
    common[FIRST_PASSPORT_IS_DESTINATIONS] = citizenships[0] in claimable
    common["born_in_destination"] = born_claimed
    common["former_national"] = former_claimed
    # Third-country legs are assessed for the people the sources show destinations reaching abroad:
    # their own nationals and people born there, the people they seek and their relatives, and critics,
    # activists and members of targeted groups. Whether a leg is assessed rests on what the request
    # states: a left-out field does not make a transit an assessed leg.
    derive_targeting(common)
    claimed_sought_or_targeted = common["claimed_sought_or_targeted"]

    out: list[LegFacts] = []
    entry = trip.entry_document
    for leg in trip.legs:
        kind, dest, third = _pick_profile(leg, reference, claimed_sought_or_targeted)
        # Neutral values first: a leg sets only what applies to it (and an unassessed leg, which no
        # rule reads, stops there).
        values: dict[str, Any] = {**_NEUTRAL, **common}
        records: dict[str, tuple[str, ...]] = {}
        values["leg_kind"] = kind
        values["destination"] = leg.country
        values["is_transit"] = leg.transit
        values["stay_days"] = float(_days(leg))
        values["region"] = leg.region or ""
        values["destination_name"] = dest.name if dest else (third.name if third else leg.country)
        if dest is not None:
            _destination_facts(traveler, leg, entry, dest, reference, employer_name, values, records)
            if "employer_name" in unknown:
                values[EMPLOYER_DISPUTES_ACTIVE_SHARE] = reference.employer_disputes_active_share(
                    dest.situations_from, leg.arrive, leg.depart
                )
        elif kind == THIRD_COUNTRY and third is not None:
            _third_country_facts(leg, third, covered, values, records)
        out.append(LegFacts(leg=leg, kind=kind, values=values, records=records, unknown=unknown))
    return out


def _destination_facts(
    traveler: Traveler,
    leg: Leg,
    entry: str | None,
    dest: DestinationProfile,
    reference: ReferenceSnapshot,
    employer_name: str,
    values: dict[str, Any],
    records: dict[str, tuple[str, ...]],
) -> None:
    citizenships = traveler.citizenships
    group = dest.nationality_group
    claimed = [c for c in citizenships if c in group]
    values["claims_as_national"] = bool(claimed)
    values["dual_national"] = bool(claimed) and len(claimed) < len(citizenships)
    values["destination_recognises_dual_nationality"] = dest.recognises_dual_nationality
    values["born_in_destination"] = traveler.birth_country in group
    values["former_national"] = not group.isdisjoint(traveler.former_citizenships or ())
    values["entry_on_destination_document"] = (
        entry == DESTINATION_TRAVEL_PERMIT
        or (entry is not None and entry in group)
        or (entry is None and all(c in group for c in citizenships))
    )
    if claimed:
        values["nationality_text"] = f"{', '.join(claimed)} citizenship counted as {dest.name} nationality"
    if leg.region and dest.regions:
        region = dest.region_named(leg.region)
        if region is not None:
            values["region_flagged"] = True
            values["region_note"] = region.note

    # Employer disputes and situations are looked up against the destination and the
    # jurisdictions whose disputes reach it (Beijing is the party to disputes over HK and MO).
    disputes: list[EmployerDispute] = []
    situations: list[Situation] = []
    for code in dest.situations_from:
        if employer_name:
            disputes.extend(reference.employer_disputes_active(employer_name, code, leg.arrive, leg.depart))
        for home in citizenships:
            if home not in group:
                situations.extend(reference.situations_active(home, code, leg.arrive, leg.depart))
    if disputes:
        dispute_ids = tuple(f"employer_dispute:{d.id}" for d in disputes)
        values["employer_dispute_active"] = True
        values["employer_dispute_kinds"] = frozenset(d.kind for d in disputes)
        values["employer_dispute_text"] = _joined([d.describe() for d in disputes])
        for name in ("employer_dispute_active", "employer_dispute_kinds", "employer_dispute_text"):
            records[name] = dispute_ids
    if situations:
        extradition = [s for s in situations if s.kind == "extradition_case"]
        bilateral = [s for s in situations if s.kind in BILATERAL_KINDS]
        detentions = [s for s in situations if s.kind == "detention_of_nationals"]
        _situation_facts("extradition_case", extradition, values, records)
        _situation_facts("bilateral_dispute", bilateral, values, records)
        _situation_facts("compatriot_detentions", detentions, values, records)
        if extradition:
            values["extradition_case_days"] = float(max(0, max((leg.arrive - s.started_on).days for s in extradition)))
            records["extradition_case_days"] = records["extradition_case_active"]
        if bilateral:
            values["bilateral_dispute_kinds"] = frozenset(s.kind for s in bilateral)
            records["bilateral_dispute_kinds"] = records["bilateral_dispute_active"]

    laws = [
        law
        for law in dest.laws
        if law.reaches_conduct_abroad and (law.effective_on is None or law.effective_on <= leg.depart)
    ]
    if laws:
        values["extraterritorial_law_in_force"] = True
        values["extraterritorial_law_text"] = _joined([law.name for law in laws])
        records["extraterritorial_law_in_force"] = tuple(f"law:{law.id}" for law in laws)


def _third_country_facts(
    leg: Leg,
    third: ThirdCountryProfile,
    covered: Sequence[DestinationProfile],
    values: dict[str, Any],
    records: dict[str, tuple[str, ...]],
) -> None:
    returns: list[ForcedReturn] = []
    treaties: list[TreatyRecord] = []
    for p in covered:
        returns.extend(third.forced_returns_to(p.code, leg.arrive))
        treaty = third.treaty_with(p.code, leg.arrive)
        if treaty is not None and treaty not in treaties:
            treaties.append(treaty)
    values["third_country_forced_returns"] = bool(returns)
    values["third_country_forced_returns_text"] = _joined(
        [f"{r.description} ({r.occurred_on.isoformat()})" for r in returns[:3]]
    )
    values["third_country_extradition_treaty"] = bool(treaties)
    values["third_country_extradition_treaty_text"] = _joined(
        [
            f"{third.name}–{t.destination} extradition treaty"
            + (f" in force since {t.in_force_on.isoformat()}" if t.in_force_on else "")
            for t in treaties
        ]
    )
    records["third_country_forced_returns"] = (f"third_country:{third.code}",)
    records["third_country_extradition_treaty"] = (f"third_country:{third.code}",)


def possible_employer_matches(
    request: AssessmentRequest, legs: list[LegFacts], reference: ReferenceSnapshot
) -> list[dict[str, Any]]:
    """Disputes whose organisation name is close to the employer's but not equal, for a reviewer.

    These never fire the employer-dispute factor; they are reported on the assessment with their
    similarity (0–100) so that a reviewer can decide whether a typo or a subsidiary is meant.
    """
    employer = request.traveler.employer
    if employer is None or not employer.name:
        return []
    found: dict[str, dict[str, Any]] = {}
    for facts in legs:
        if facts.kind != DESTINATION:
            continue
        profile = reference.destination_profile(facts.leg.country)
        for code in profile.situations_from if profile else ():
            for dispute, score in reference.employer_near_matches(
                employer.name, code, facts.leg.arrive, facts.leg.depart
            ):
                if dispute.id not in found or found[dispute.id]["similarity"] < score:
                    found[dispute.id] = {"dispute_id": dispute.id, "name": dispute.name, "similarity": score}
    return sorted(found.values(), key=lambda m: (-m["similarity"], m["dispute_id"]))
