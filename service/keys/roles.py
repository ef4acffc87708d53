"""The roles a key can have, without the database stack (the CLI's option type imports it)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a key may do (see the contract's roles)."""

    requester = "requester"
    reviewer = "reviewer"
    analyst = "analyst"
    admin = "admin"
