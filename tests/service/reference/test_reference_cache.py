"""The scoring engine's reference snapshot follows the revision log: after changes it equals a snapshot
built from scratch (same records, same index entries, same answers, same version), without rebuilding."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from risk_rules.reference import DestinationIn, EmployerDisputeIn, InMemoryReference, SituationIn
from service.db import create_db_engine, create_session_factory
from service.reference import store
from service.reference.models import DESTINATION, EMPLOYER_DISPUTE, SITUATION

NOTE = [{"title": "analyst note", "url": "https://example.org/note", "date": "2026-11-01"}]


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def snapshot(cache: store.ReferenceCache, sessions: sessionmaker[Session]) -> InMemoryReference:
    with sessions() as session:
        return cache.snapshot(session)


def upsert(sessions: sessionmaker[Session], record_type: str, record: Any) -> None:
    with sessions() as session:
        store.upsert(session, record_type, record, "test")
        session.commit()


def situation(situation_id: str, home: str, destination: str = "CN", **changes: Any) -> SituationIn:
    fields: dict[str, Any] = {
        "id": situation_id,
        "home_country": home,
        "destination": destination,
        "kind": "extradition_case",
        "title": f"{home} holds a person {destination} wants",
        "started_on": dt.date(2020, 1, 1),
        # Ended long ago: other tests' upcoming trips of these countries are not touched.
        "ended_on": dt.date(2021, 12, 31),
        "severity": "high",
        "sources": NOTE,
    }
    return SituationIn(**{**fields, **changes})


def dispute(dispute_id: str, name: str, aliases: list[str], destination: str = "CN") -> EmployerDisputeIn:
    return EmployerDisputeIn(
        id=dispute_id,
        name=name,
        aliases=aliases,
        destination=destination,
        kind="commercial_dispute",
        started_on=dt.date(2021, 1, 1),
        ended_on=dt.date(2021, 12, 31),
        sources=NOTE,
    )


def assert_same(updated: InMemoryReference, rebuilt: InMemoryReference) -> None:
    assert updated.version == rebuilt.version
    assert updated.destinations == rebuilt.destinations
    assert updated.third_countries == rebuilt.third_countries
    assert updated.situations == rebuilt.situations
    assert updated.employer_disputes == rebuilt.employer_disputes
    assert updated._by_pair == rebuilt._by_pair
    assert updated._by_employer == rebuilt._by_employer
    assert updated._name_index.keys() == rebuilt._name_index.keys()
    for destination, index in rebuilt._name_index.items():
        assert updated._name_index[destination].entries() == index.entries()


def test_changes_are_applied_to_the_snapshot_as_a_rebuild_would_have_them(sessions: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    ids = [f"cache-{tag}-{n}" for n in range(4)]
    upsert(sessions, SITUATION, situation(ids[1], "IS"))
    upsert(sessions, EMPLOYER_DISPUTE, dispute(ids[1], f"Quokka {tag} Mining Ltd", [f"Quokka {tag} Resources"]))

    cache = store.ReferenceCache()
    before = snapshot(cache, sessions)
    before._name_index  # built, so the update must keep it right too  # noqa: B018
    assert cache.full_rebuilds == 1

    # A new situation sorting before and after existing ones; one moved to another pair of countries.
    upsert(sessions, SITUATION, situation(ids[0], "IS"))
    upsert(sessions, SITUATION, situation(ids[3], "IS", ended_on=dt.date(2021, 6, 30)))
    upsert(sessions, SITUATION, situation(ids[1], "FI", "HK", severity="low"))
    # A dispute renamed (its old names must stop matching), a new one, one moved to another destination.
    upsert(sessions, EMPLOYER_DISPUTE, dispute(ids[1], f"Wombat {tag} Trading", []))
    upsert(sessions, EMPLOYER_DISPUTE, dispute(ids[2], f"Quokka {tag} Mining", [f"QM {tag}"]))
    upsert(sessions, EMPLOYER_DISPUTE, dispute(ids[2], f"Quokka {tag} Mining", [f"QM {tag}"], destination="HK"))
    with sessions() as session:
        profile = session.get_one(store._MODELS[DESTINATION], "MO").document
    upsert(sessions, DESTINATION, DestinationIn.model_validate({**profile, "name": f"Macao {tag}"}))

    updated = snapshot(cache, sessions)
    assert cache.full_rebuilds == 1, "the changes were applied, not rebuilt"
    rebuilt = snapshot(store.ReferenceCache(), sessions)
    assert_same(updated, rebuilt)
    assert updated is not before and before.version != updated.version

    # The same answers to the engine's questions.
    trip = (dt.date(2021, 3, 1), dt.date(2021, 3, 10))
    for reference in (updated, rebuilt):
        assert [s.id for s in reference.situations_active("IS", "CN", *trip) if s.id.startswith("cache-")][-2:] == [
            ids[0],
            ids[3],
        ]
        assert ids[1] in [s.id for s in reference.situations_active("FI", "HK", *trip)]
        assert reference.employer_disputes_active(f"Quokka {tag} Resources", "CN", *trip) == []
        assert [d.id for d in reference.employer_disputes_active(f"Wombat {tag} Trading Ltd", "CN", *trip)] == [ids[1]]
        assert [d.id for d in reference.employer_disputes_active(f"QM {tag}", "HK", *trip)] == [ids[2]]
        assert [d.id for d, _ in reference.employer_near_matches(f"Wombatt {tag} Trading", "CN", *trip)] == [ids[1]]
        assert reference.employer_near_matches(f"Quokka {tag} Minning", "CN", *trip) == []
        assert reference.destination_profile("MO").name == f"Macao {tag}"
    # The snapshot requests were holding is left as it was.
    assert [d.id for d in before.employer_disputes_active(f"Quokka {tag} Resources", "CN", *trip)] == [ids[1]]
    assert snapshot(cache, sessions) is updated


def test_a_change_too_large_to_apply_rebuilds(sessions: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = store.ReferenceCache()
    snapshot(cache, sessions)
    monkeypatch.setattr(store, "INCREMENTAL_LIMIT", 1)
    tag = uuid.uuid4().hex[:6]
    upsert(sessions, SITUATION, situation(f"cache-{tag}-a", "IS"))
    upsert(sessions, SITUATION, situation(f"cache-{tag}-b", "IS"))
    updated = snapshot(cache, sessions)
    assert cache.full_rebuilds == 2
    assert_same(updated, snapshot(store.ReferenceCache(), sessions))
