"""Roster checks: many trips at once, scored in the background."""
