"""Tenants: created with their first key, named by short identifiers."""

from __future__ import annotations

from typing import Any

import pytest

from service.db import create_db_engine, create_session_factory, session_scope
from service.tenants import service as tenants


@pytest.mark.parametrize("name", ["acme", "Acme-Travel_2", "a.b", "x" * 100])
def test_valid_names(name: str) -> None:
    assert tenants.valid_tenant_name(name)


@pytest.mark.parametrize("name", ["", "-acme", "a b", "ä", "x" * 101, "a/b", "a\nb"])
def test_invalid_names(name: str) -> None:
    assert not tenants.valid_tenant_name(name)


def test_get_or_create_is_idempotent(settings: Any) -> None:
    engine = create_db_engine(settings)
    factory = create_session_factory(engine)
    with session_scope(factory) as session:
        first = tenants.get_or_create(session, "tenant-once")
    with session_scope(factory) as session:
        again = tenants.get_or_create(session, "tenant-once")
        assert again.id == first.id
        with pytest.raises(ValueError, match="invalid tenant name"):
            tenants.get_or_create(session, "no spaces")
    engine.dispose()
