"""Helpers shared by the tests of the reference-data API (situations, employer disputes, destinations):
valid bodies of each kind of dated record, problem checks, paging, back-dating."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.reference.models import ReferenceRevision

QUOTE = {
    "source": "csis-kennedy-beijing-suffers-major-loss",
    "quote": "In previous cases involving the arrest of its nationals by Canada, China had followed the exact same"
    " MO, taking hostages in response.",
}
PUBLICATION = {"title": "Analyst note on the case", "url": "https://example.org/notes/1", "date": "2026-11"}
KROLL = {
    "source": "ccp-master-of-hostage-diplomacy",
    "quote": "In each case, the CCP’s objective has been to gain leverage and exert influence over these companies.",
}


def situation(**overrides: Any) -> dict[str, Any]:
    """A valid situation body (home country AR, which no assessment test uses), with `overrides`."""
    body: dict[str, Any] = {
        "home_country": "AR",
        "destination": "CN",
        "kind": "diplomatic_dispute",
        "title": f"Test situation {uuid.uuid4().hex[:8]}",
        "started_on": "2030-01-01",
        "ended_on": "2030-06-30",
        "severity": "high",
        "sources": [copy.deepcopy(QUOTE)],
    }
    body.update(overrides)
    return body


def token() -> str:
    """A made-up word, so that test organisations match nothing else in the shared database."""
    return "Q" + uuid.uuid4().hex[:10]


def dispute(**overrides: Any) -> dict[str, Any]:
    """A valid employer-dispute body for an organisation of a made-up name, with `overrides`."""
    name = token()
    body: dict[str, Any] = {
        "name": f"{name} Holdings Ltd.",
        "aliases": [f"{name} Trading Co."],
        "destination": "CN",
        "kind": "commercial_dispute",
        "started_on": "2030-01-01",
        "ended_on": "2030-12-31",
        "sources": [copy.deepcopy(KROLL)],
    }
    body.update(overrides)
    return body


def revision_count(sessions: sessionmaker[Session]) -> int:
    """How many reference-data revisions the database holds (a write adds at least one)."""
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(ReferenceRevision)) or 0


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is a problem of `status`; with `field`, one of its errors names that field."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    if field is not None:
        fields = [e["field"] for e in body["errors"]]
        assert field in fields, fields
        assert field in body["detail"]
    return body


def pages(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> Iterator[dict[str, Any]]:
    """Every page of a list, following `next_cursor`."""
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        yield page
        cursor = page["next_cursor"]
        if cursor is None:
            return


def backdate(sessions: sessionmaker[Session], record_type: str, model: Any, record_id: str, days: int) -> None:
    """Move a record and every revision of it `days` into the past, as if it had been recorded then."""
    with sessions() as session:
        row = session.get_one(model, record_id)
        row.created_at -= dt.timedelta(days=days)
        row.updated_at -= dt.timedelta(days=days)
        # In Python rather than SQL: SQLite stores timestamps as text, with no date arithmetic.
        for revision in session.scalars(
            select(ReferenceRevision).where(
                ReferenceRevision.record_type == record_type, ReferenceRevision.record_id == record_id
            )
        ):
            revision.changed_at = revision.changed_at - dt.timedelta(days=days)
        session.commit()
