"""Alembic migrations of the travelrisk database (`travelrisk db upgrade` applies them)."""
