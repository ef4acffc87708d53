"""Schemas every kind of dated record derives from its own create form and record: the PATCH form and
the page."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model

from service.reference.schemas import RecordId


def ended_not_before_started(value: dt.date | None, info: ValidationInfo) -> dt.date | None:
    """A create form's `ended_on` check (as a field validator, so that the error names `ended_on`)."""
    started = info.data.get("started_on")
    if value is not None and started is not None and value < started:
        raise ValueError(f"ended_on ({value}) is before started_on ({started})")
    return value


def patch_form(create: type[BaseModel], name: str, doc: str) -> type[BaseModel]:
    """The PATCH form of a create form: every field optional (None: keep the value), the same checks per
    field, none across fields (the merged record is checked again with the create form)."""
    fields: dict[str, Any] = {
        "id": (RecordId | None, Field(default=None, description="May be sent, but must be the record's own id."))
    }
    for field_name, info in create.model_fields.items():
        if field_name == "id":
            continue
        annotation: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[field_name] = (annotation | None, None)
    return create_model(  # type: ignore[call-overload, no-any-return]
        name, __config__=ConfigDict(extra="forbid"), __doc__=doc, __module__=create.__module__, **fields
    )


def page_of(item: type[BaseModel], name: str, doc: str) -> type[BaseModel]:
    """A page of records in id order, with the next page's cursor."""
    return create_model(  # type: ignore[call-overload, no-any-return]
        name,
        __doc__=doc,
        __module__=item.__module__,
        items=(list[item], ...),  # type: ignore[valid-type]
        next_cursor=(
            str | None,
            Field(default=None, description="Pass as `cursor` to get the next page; null on the last page."),
        ),
    )
