"""Schemas of the keys resource."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from service.keys.models import Role


class KeyCreate(BaseModel):
    """A key to create in the caller's tenant."""

    model_config = ConfigDict(extra="forbid")

    role: Role = Field(
        description="`requester`, `reviewer` or `admin`. `analyst` is refused (403): analyst keys change the"
        " reference data of every tenant and are created by the deployment's operator with the CLI."
    )
    holder: str | None = Field(
        default=None,
        description="The staff member the key is issued to: an opaque identifier of 1-64 printable characters"
        " (no names needed). Required for `reviewer` keys; reviews are attributed to it.",
        examples=["staff-0042"],
    )


class KeyInfo(BaseModel):
    """A key as listed: never its secret."""

    id: str = Field(description="The key's public id (the part after `trk_`).")
    role: Role
    holder: str | None = Field(default=None, description="The staff member the key is issued to.")
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class CreatedKey(KeyInfo):
    """A new key; `key` is shown only in this response."""

    key: str = Field(description="The bearer key. Store it now: only its hash is kept.")


class KeyList(BaseModel):
    items: list[KeyInfo]
