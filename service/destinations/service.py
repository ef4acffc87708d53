"""Reading destination and third-country profiles, and analysts' third-country profiles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from risk_rules.reference import ThirdCountryIn
from service.reference.models import DestinationProfileRecord, ThirdCountryRecord


def _item(row: DestinationProfileRecord | ThirdCountryRecord) -> dict[str, Any]:
    return {**row.document, "revision": row.revision, "updated_at": row.updated_at}


def destinations(session: Session) -> list[dict[str, Any]]:
    """Every destination profile, by code."""
    rows = session.scalars(select(DestinationProfileRecord).order_by(DestinationProfileRecord.code))
    return [_item(row) for row in rows]


def third_countries(session: Session) -> list[dict[str, Any]]:
    """Every third-country profile, by code."""
    return [_item(row) for row in session.scalars(select(ThirdCountryRecord).order_by(ThirdCountryRecord.code))]


def destination(session: Session, code: str) -> dict[str, Any] | None:
    """One destination profile, or None when the service does not score that country."""
    row = session.get(DestinationProfileRecord, code)
    return _item(row) if row is not None else None


def third_country(session: Session, code: str) -> dict[str, Any] | None:
    """One third-country profile, or None when there is none."""
    row = session.get(ThirdCountryRecord, code)
    return _item(row) if row is not None else None


def third_country_problems(session: Session, code: str, document: dict[str, Any]) -> list[dict[str, Any]]:
    """What is wrong with a third-country profile sent for `code`, as field errors (empty when nothing).

    The checks of an import (schema, ISO codes, verbatim quotes), and those an analyst's record needs
    on top: the path's code, a country that is not itself a covered destination, entries about covered
    destinations only, and at least one source for every treaty and forced return.
    """
    from service.reference.checks import profile_problems
    from service.reference.records import covered_destinations

    errors = [
        {"loc": ("body", *[p for p in problem.field.split(".") if p]), "msg": problem.message}
        for problem in profile_problems("third_countries", ThirdCountryIn, document)
    ]
    if errors:
        return errors
    if document.get("code") != code:
        errors.append({"loc": ("body", "code"), "msg": f"must be '{code}', the code in the path"})
    covered = covered_destinations(session)
    if code in covered:
        errors.append({"loc": ("body", "code"), "msg": f"'{code}' is a covered destination, not a third country"})
    for key in ("extradition_treaties", "mutual_legal_assistance", "forced_returns"):
        for i, entry in enumerate(document.get(key, [])):
            if entry["destination"] not in covered:
                errors.append(
                    {
                        "loc": ("body", key, i, "destination"),
                        "msg": f"'{entry['destination']}' is not a covered destination (covered: {', '.join(covered)})",
                    }
                )
            if not entry.get("sources"):
                errors.append({"loc": ("body", key, i, "sources"), "msg": "cite at least one source for every entry"})
    return errors


def put_third_country(session: Session, code: str, document: dict[str, Any], actor: str) -> tuple[dict[str, Any], bool]:
    """Create or replace a third-country profile (checked), log the revision and queue re-scoring.

    Returns the stored profile and whether it was created.
    """
    from service.problems import invalid_input
    from service.reference import store
    from service.rescoring.service import enqueue_rescoring

    errors = third_country_problems(session, code, document)
    if errors:
        raise invalid_input(errors)
    record = ThirdCountryIn.model_validate(document)
    created = session.get(ThirdCountryRecord, code) is None
    change = store.upsert(session, store.THIRD_COUNTRY, record, actor)
    if change.revision is not None:
        enqueue_rescoring(session, change)
    return _item(session.get_one(ThirdCountryRecord, code)), created
