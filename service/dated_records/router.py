"""The API of a kind of dated record, made from its declaration: POST and GET on the collection, GET and
PATCH on a record, GET of its history. Analysts write; any role reads.

No `from __future__ import annotations` here: the endpoints' annotations name the kind's own forms and
must be evaluated where they are defined.
"""

import inspect
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from risk_rules.values import IsoDate
from service.auth import ANY_ROLE, require
from service.bodies import JsonRoute
from service.dated_records import service
from service.dated_records.declaration import DatedRecordKind
from service.db import get_session, run_db_work
from service.keys.models import Role
from service.keys.service import Principal
from service.problems import invalid_input
from service.reference import records
from service.reference.schemas import History, RevisionEntry, error_responses, example_response

DbSession = Annotated[Session, Depends(get_session)]
Analyst = Annotated[Principal, Depends(require(Role.analyst))]
Reader = Annotated[Principal, Depends(require(*ANY_ROLE))]


def router_for(kind: DatedRecordKind) -> APIRouter:
    """The router of one kind of dated record (paths under `kind.collection`)."""
    router = APIRouter(prefix=kind.collection, tags=[kind.tag], route_class=JsonRoute)
    label = kind.label
    the = f"The {label}"
    RecordIdPath = Annotated[str, Path(alias=kind.id_param, description=f"The {label}'s id.")]
    CreateBody = Annotated[kind.form, Body(openapi_examples=kind.create_examples)]
    PatchBody = Annotated[kind.patch, Body(openapi_examples=kind.patch_examples)]

    async def create(
        body: CreateBody, principal: Analyst, session: DbSession, request: Request, response: Response
    ) -> dict[str, Any]:
        lock = request.app.state.write_lock
        actor = records.actor_of(principal)
        row = await run_db_work(
            request, records.write, session, lock, lambda: records.create(session, kind, body, actor)
        )
        response.headers["Location"] = f"{kind.collection}/{row.id}"
        return records.as_item(row)

    router.add_api_route(
        "",
        create,
        methods=["POST"],
        name=f"create_{kind.singular}",
        status_code=201,
        summary=f"Record {kind.a_label}",
        description=kind.create_description,
        response_model=kind.item,
        responses={
            **example_response(
                201,
                f"{the} as stored; `Location` names it.",
                kind.item_example,
                headers={"Location": {"description": f"Path of the {label}.", "schema": {"type": "string"}}},
            ),
            **error_responses(400, 401, 403, 409, 413, 415, 422),
        },
    )

    def list_records(**params: Any) -> Any:
        filters = service.Filters(kind, {f.name: params[f.name] for f in kind.filters})
        try:
            items, next_cursor = service.list_page(
                params["session"], filters, params["as_of"], params["limit"], params["cursor"]
            )
        except records.InvalidCursor as exc:
            raise invalid_input([{"loc": ("query", "cursor"), "msg": f"{exc}: pass `next_cursor` unchanged"}]) from exc
        return kind.page.model_validate({"items": items, "next_cursor": next_cursor})

    # The kind's filters are query parameters of their own: FastAPI reads them from this signature.
    list_records.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            _keyword("principal", Reader),
            _keyword("session", DbSession),
            *(_keyword(f.name, f.annotation, None) for f in kind.filters),
            _keyword(
                "as_of",
                Annotated[
                    IsoDate | None,
                    Query(
                        description="Show the data as it had been recorded by the end of this day (UTC): records added"
                        " later are absent, records changed later show their values then."
                    ),
                ],
                None,
            ),
            _keyword("limit", Annotated[int, Query(ge=1, le=100, description="Page size.")], 20),
            _keyword(
                "cursor",
                Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")],
                None,
            ),
        ],
        return_annotation=kind.page,
    )
    router.add_api_route(
        "",
        list_records,
        methods=["GET"],
        name=f"list_{kind.plural}",
        summary=f"{kind.title_plural}, in id order",
        description=f"Every {label}, shared by all tenants. Filters combine with AND; pages follow `next_cursor`.",
        response_model=kind.page,
        responses={
            **example_response(200, f"A page of {kind.title_plural.lower()}.", kind.page_example),
            **error_responses(401, 403, 422),
        },
    )

    def get_record(record_id: RecordIdPath, principal: Reader, session: DbSession) -> dict[str, Any]:
        return records.as_item(records.get(session, kind, record_id))

    router.add_api_route(
        "/{" + kind.id_param + "}",
        get_record,
        methods=["GET"],
        name=f"get_{kind.singular}",
        summary=f"One {label}",
        description=f"{the} as currently recorded, with its revision number.",
        response_model=kind.item,
        responses={
            **example_response(200, f"{the} as currently recorded.", kind.item_example),
            **error_responses(401, 403, 404),
        },
    )

    async def patch_record(
        record_id: RecordIdPath, body: PatchBody, principal: Analyst, session: DbSession, request: Request
    ) -> dict[str, Any]:
        lock = request.app.state.write_lock
        actor = records.actor_of(principal)
        changes = body.model_dump(mode="json", exclude_unset=True)
        row = await run_db_work(
            request,
            records.write,
            session,
            lock,
            lambda: records.patch(session, kind, record_id, changes, actor),
        )
        return records.as_item(row)

    router.add_api_route(
        "/{" + kind.id_param + "}",
        patch_record,
        methods=["PATCH"],
        name=f"patch_{kind.singular}",
        summary=f"Change {kind.a_label}",
        description=kind.patch_description,
        response_model=kind.item,
        responses={
            **example_response(200, f"{the} after the change.", kind.item_example),
            **error_responses(400, 401, 403, 404, 409, 413, 415, 422),
        },
    )

    def record_history(record_id: RecordIdPath, principal: Reader, session: DbSession) -> History:
        items = records.history_items(session, kind, record_id, principal)
        return History(id=record_id, items=[RevisionEntry.model_validate(item) for item in items])

    router.add_api_route(
        "/{" + kind.id_param + "}/history",
        record_history,
        methods=["GET"],
        name=f"{kind.singular}_history",
        summary=f"Every revision of {kind.a_label}",
        description=f"Who changed the {label}, when, and each field's value before and after.",
        response_model=History,
        responses={
            **example_response(200, "The revisions, oldest first.", kind.history_example),
            **error_responses(401, 403, 404),
        },
    )
    return router


def _keyword(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
