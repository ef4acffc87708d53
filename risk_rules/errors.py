"""Typed errors of the scoring engine. The service maps them to problem details in one place."""

from __future__ import annotations


class TravelriskError(Exception):
    """Base class of the engine's errors."""


class RuleSetError(TravelriskError):
    """A rule file is invalid: the rule set refuses to load."""

    def __init__(self, file: str, rule: str | None, message: str) -> None:
        self.file = file
        self.rule = rule
        self.message = message
        where = f"{file}" + (f", rule '{rule}'" if rule else "")
        super().__init__(f"{where}: {message}")


class ReferenceDataError(TravelriskError):
    """The reference data set is invalid."""


class ModelArtifactError(TravelriskError):
    """A model artifact is missing, unreadable or inconsistent with the rule set."""
