"""The workspace's pages under /ui/: sign-in, the review queue, assessments, the model, reference data.

Every page reads through the same service functions as the API, within the officer's tenant; every form
carries the session's CSRF token and is refused without it. A page is one request and one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import partial
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from service.assessments import service as assessments
from service.db import get_session, run_db_work
from service.keys import service as keys
from service.keys.models import Role
from service.problems import Conflict, Forbidden, InvalidInput, Problem, found_or_404, invalid_cursor, invalid_input
from service.reference import records
from service.reviews import service as reviews
from service.reviews.schemas import ReviewIn
from service.ui import reference, sessions, views
from service.ui.pages import READERS, REVIEWERS, SignedIn, check_csrf, render, require_roles

router = APIRouter(prefix="/ui", include_in_schema=False)

DbSession = Annotated[Session, Depends(get_session)]
# A page's cursor travels in its "next" link: a broken one is best restarted from the first page.
PAGE_LINK_INVALID = "The page link is not valid: go back to the first page."
T = TypeVar("T")
R = TypeVar("R")


def _secure(request: Request) -> bool:
    """Whether the browser reached us over HTTPS, directly or through a proxy that says so."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: only a workspace path of this site (no open redirect)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


def _next_url(path: str, query: Mapping[str, str | None], next_cursor: str | None) -> str | None:
    """The link to the next page with the filters that are set; None on the last page."""
    if not next_cursor:
        return None
    kept = {key: value for key, value in query.items() if value}
    return f"{path}?{urlencode({**kept, 'cursor': next_cursor})}"


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def _submit_form(
    request: Request,
    session: Session,
    write: Callable[[], T],
    *,
    refused: tuple[type[Problem], ...],
    again: Callable[[Problem], tuple[str, dict[str, Any]]],
    then: Callable[[T], str],
) -> Response:
    """A posted form's one write: `write` (which commits) runs in the thread pool, then the browser is sent on
    to `then(result)`. A problem of a `refused` kind rolls the transaction back, so nothing of the form is
    stored, and shows the page `again(problem)` names (template, context) with the problem's status; any
    other problem is answered as usual."""
    try:
        result = await run_db_work(request, write)
    except refused as problem:
        template, context = await run_db_work(request, _rolled_back, session, again, problem)
        return render(request, template, context, status=problem.status_code)
    return _see_other(then(result))


def _rolled_back(session: Session, again: Callable[[Problem], R], problem: Problem) -> R:
    """`again(problem)` after the refused write's transaction is rolled back, in a fresh one."""
    session.rollback()
    return again(problem)


# ---------------------------------------------------------------------------------------------
# Signing in and out


@router.get("/sign-in")
def sign_in_form(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the query's name
    """The sign-in form, with a fresh token for its own CSRF check (there is no session yet)."""
    token = sessions.new_token()
    response = render(request, "sign_in.html", {"csrf_token": token, "next": _safe_next(next), "error": None})
    response.set_cookie(
        sessions.SIGN_IN_COOKIE,
        token,
        max_age=3600,
        path="/ui/sign-in",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.post("/sign-in")
async def sign_in(request: Request, session: DbSession) -> Response:
    """Opens a session for a valid key. A wrong key shows the form again, saying only that it is not valid."""
    form = await check_csrf(request, request.cookies.get(sessions.SIGN_IN_COOKIE))
    presented = form.get("api_key")
    target = _safe_next(form.get("next") if isinstance(form.get("next"), str) else None)
    principal = None
    if isinstance(presented, str) and presented.strip():
        principal = await run_db_work(request, keys.verify, session, presented.strip())
    if principal is None:
        token = request.cookies.get(sessions.SIGN_IN_COOKIE)
        # The key is not echoed back: the field comes back empty.
        return render(
            request,
            "sign_in.html",
            {"csrf_token": token, "next": target, "error": "That API key is not valid. Check it and try again."},
            status=401,
        )
    lifetime = dt.timedelta(seconds=request.app.state.settings.ui_session_seconds)

    def open_and_commit() -> sessions.NewSession:
        opened = sessions.open_session(session, principal, lifetime)
        session.connection()
        with request.app.state.write_lock:
            session.commit()
        return opened

    opened = await run_db_work(request, open_and_commit)
    response = _see_other(target)
    response.set_cookie(
        sessions.COOKIE,
        opened.token,
        max_age=int(lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(sessions.SIGN_IN_COOKIE, path="/ui/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, signed_in: SignedIn, session: DbSession) -> Response:
    """Ends the session (the row is deleted, the cookie cleared)."""
    await check_csrf(request, signed_in.csrf_token)

    def close() -> None:
        sessions.close_session(session, request.cookies.get(sessions.COOKIE))
        session.connection()
        with request.app.state.write_lock:
            session.commit()

    await run_db_work(request, close)
    response = _see_other("/ui/sign-in")
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


@router.get("/")
@router.get("")
def home(signed_in: SignedIn) -> Response:
    """Each role's starting page."""
    role = signed_in.principal.role
    if role in (Role.reviewer, Role.admin):
        return _see_other("/ui/queue")
    if role == Role.requester:
        return _see_other("/ui/assessments")
    return _see_other("/ui/reference/situations")


# ---------------------------------------------------------------------------------------------
# Queue and assessments


@router.get("/queue")
def queue(
    request: Request,
    signed_in: SignedIn,
    session: DbSession,
    band: Annotated[str, Query(pattern="^(|low|elevated|high|severe)$")] = "",
    destination: Annotated[str, Query(pattern=r"^([A-Z]{2})?$")] = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The tenant's trips waiting for a decision, earliest departure first (the API's queue)."""
    require_roles(signed_in, REVIEWERS, "open the review queue")
    filters = reviews.QueueFilters(band=band or None, destination=destination or None)
    try:
        rows, next_cursor = reviews.queue_page(session, signed_in.principal.tenant_id, filters, 50, cursor)
    except reviews.InvalidCursor as exc:
        raise invalid_cursor(exc, PAGE_LINK_INVALID) from exc
    next_url = _next_url("/ui/queue", {"band": band, "destination": destination}, next_cursor)
    context = {
        "items": views.queue_items(rows),
        "next_url": next_url,
        "band": band,
        "destination": destination,
        "destinations": records.covered_destinations(session),
    }
    return render(request, "queue.html", context)


@router.get("/assessments")
def assessment_list(
    request: Request,
    signed_in: SignedIn,
    session: DbSession,
    reference_q: Annotated[str | None, Query(alias="traveler_reference", max_length=100)] = None,
    band: Annotated[str | None, Query(pattern="^(|low|elevated|high|severe)$")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The tenant's assessments, newest first, filterable by traveller reference and band."""
    require_roles(signed_in, READERS, "read assessments")
    filters = assessments.ListFilters(traveler_reference=reference_q or None, band=band or None)
    try:
        rows, next_cursor = assessments.list_page(session, signed_in.principal.tenant_id, filters, 25, cursor)
    except assessments.InvalidCursor as exc:
        raise invalid_cursor(exc, PAGE_LINK_INVALID) from exc
    next_url = _next_url("/ui/assessments", {"traveler_reference": reference_q, "band": band}, next_cursor)
    return render(
        request,
        "assessments.html",
        {"rows": rows, "next_url": next_url, "traveler_reference": reference_q or "", "band": band or ""},
    )


def _assessment_context(session: Session, signed_in: sessions.OpenSession, assessment_id: str) -> dict[str, Any]:
    row = assessments.owned(session, signed_in.principal.tenant_id, assessment_id)
    body = assessments.revision_body(session, row)
    assert body is not None
    context = views.assessment_view(session, body)
    context["row"] = row
    context["request_document"] = row.request
    context.update(views.review_view(session, signed_in.principal, row, body.get("mitigations") or []))
    return context


@router.get("/assessments/{assessment_id}")
def assessment_page(assessment_id: str, request: Request, signed_in: SignedIn, session: DbSession) -> Response:
    """One assessment: score, waterfall, factors with their records and evidence, legs, mitigations,
    revisions, the review history and (for reviewers other than the requester) the review form."""
    require_roles(signed_in, READERS, "read assessments")
    return render(request, "assessment.html", _assessment_context(session, signed_in, assessment_id))


def review_form_document(form: dict[str, Any]) -> dict[str, Any]:
    """The API's review body from the page's form. Conditions are one per line, and are sent only with
    `approved_with_conditions`: the form pre-fills them from the mitigations, so that another decision
    does not carry them by accident."""
    decision = form.get("decision") if isinstance(form.get("decision"), str) else None
    revision = form.get("revision")
    document: dict[str, Any] = {
        "decision": decision,
        "revision": int(revision) if isinstance(revision, str) and revision.isdigit() else revision,
        "rationale": form.get("rationale") if isinstance(form.get("rationale"), str) else "",
    }
    if decision == "approved_with_conditions":
        text = form.get("conditions") if isinstance(form.get("conditions"), str) else ""
        document["conditions"] = [line.strip() for line in text.splitlines() if line.strip()]
    return document


@router.post("/assessments/{assessment_id}/reviews")
async def record_review(assessment_id: str, request: Request, signed_in: SignedIn, session: DbSession) -> Response:
    """Records a decision through the review service (the API's checks: four eyes, stale revision, open
    state). A refused or invalid decision shows the assessment again, saying why; nothing is stored."""
    require_roles(signed_in, REVIEWERS, "record reviews")
    form = await check_csrf(request, signed_in.csrf_token)
    document = review_form_document(form)

    def decide() -> None:
        try:
            body = ReviewIn.model_validate(document)
        except ValidationError as exc:
            raise invalid_input([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
        session.connection()
        with request.app.state.write_lock:
            reviews.decide(session, signed_in.principal, assessment_id, body)
            session.commit()

    def again(problem: Problem) -> tuple[str, dict[str, Any]]:
        context = _assessment_context(session, signed_in, assessment_id)
        context["review_error"] = str(problem.detail)
        context["review_errors"] = {e["field"]: e["message"] for e in problem.errors or []}
        context["review_values"] = form
        return "assessment.html", context

    return await _submit_form(
        request,
        session,
        decide,
        refused=(InvalidInput, Forbidden, Conflict),
        again=again,
        then=lambda _: f"/ui/assessments/{assessment_id[:64]}#review",
    )


# ---------------------------------------------------------------------------------------------
# The model


@router.get("/model")
def model_page(request: Request, signed_in: SignedIn) -> Response:
    """The active model's card, its coefficients as a forest plot, and its validation figures."""
    assessor = request.app.state.scoring.assessor()
    context = views.model_view(assessor.model_card(), assessor.model.document)
    return render(request, "model.html", context)


# ---------------------------------------------------------------------------------------------
# Reference data


def _page_kind(slug: str) -> reference.PageKind:
    return found_or_404(reference.KINDS.get(slug), f"There is no kind of reference record called '{slug[:40]}'.")


@router.get("/reference/{slug}")
def record_table(
    slug: str,
    request: Request,
    signed_in: SignedIn,
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """A searchable table of one kind of record (words, and the kind's declared filters); with htmx,
    only the table's rows are sent back."""
    page = _page_kind(slug)
    try:
        search = reference.Search.parse(page, request.query_params)
        items, next_cursor = reference.search_page(session, page, search, 50, cursor)
    except reference.InvalidSearch as exc:
        raise InvalidInput(
            f"{exc.field}: {exc}", [{"field": exc.field, "message": str(exc), "location": "query"}]
        ) from exc
    except records.InvalidCursor as exc:
        raise invalid_cursor(exc, PAGE_LINK_INVALID) from exc
    next_url = _next_url(f"/ui/reference/{slug}", search.query(), next_cursor)
    context = {
        "page": page,
        "items": items,
        "next_url": next_url,
        "search": search,
        "destinations": records.covered_destinations(session),
        "can_edit": signed_in.principal.role == Role.analyst,
    }
    if request.headers.get("hx-request") == "true":
        return render(request, "record_rows.html", context)
    return render(request, "records.html", context)


def _form_context(
    page: reference.PageKind,
    session: Session,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    record_id: str | None = None,
) -> dict[str, Any]:
    return {
        "page": page,
        "values": values,
        "citations": reference.citation_rows(values.get("sources")),
        "errors": errors or {},
        "record_id": record_id,
        "sources": reference.SOURCE_TITLES,
        "destinations": records.covered_destinations(session),
    }


@router.get("/reference/{slug}/new")
def new_record_form(slug: str, request: Request, signed_in: SignedIn, session: DbSession) -> Response:
    """An empty form for a new record (analysts)."""
    page = _page_kind(slug)
    require_roles(signed_in, frozenset({Role.analyst}), f"add {page.plural.lower()}")
    return render(request, "record_form.html", _form_context(page, session, {}))


@router.post("/reference/{slug}")
async def create_record(slug: str, request: Request, signed_in: SignedIn, session: DbSession) -> Response:
    """Records a new record through the API's own checks; an invalid form comes back with each error."""
    page = _page_kind(slug)
    require_roles(signed_in, frozenset({Role.analyst}), f"add {page.plural.lower()}")
    form = await check_csrf(request, signed_in.csrf_token)
    document = reference.document_from_form(page, form, for_patch=False)
    actor = records.actor_of(signed_in.principal)

    def create() -> Any:
        checked = records.validate_form(page.kind, document)
        return records.create(session, page.kind, checked, actor)

    def again(problem: Problem) -> tuple[str, dict[str, Any]]:
        return "record_form.html", _form_context(page, session, document, reference.errors_by_field(problem.errors))

    return await _submit_form(
        request,
        session,
        partial(records.write, session, request.app.state.write_lock, create),
        refused=(InvalidInput,),
        again=again,
        then=lambda row: f"/ui/reference/{slug}/{row.id}",
    )


def _record_context(
    page: reference.PageKind,
    session: Session,
    record_id: str,
    *,
    can_edit: bool,
    changes: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One record's page: its form (holding `changes` over the stored record, with `errors`), its history."""
    row = records.get(session, page.kind, record_id)
    context = _form_context(page, session, {**row.document, **(changes or {})}, errors, record_id)
    history = records.history(session, page.kind, record_id)
    context.update({"item": records.as_item(row), "history": list(reversed(history)), "can_edit": can_edit})
    return context


@router.get("/reference/{slug}/{record_id}")
def record_page(slug: str, record_id: str, request: Request, signed_in: SignedIn, session: DbSession) -> Response:
    """One record with its history; analysts also get the form to change it."""
    page = _page_kind(slug)
    context = _record_context(page, session, record_id, can_edit=signed_in.principal.role == Role.analyst)
    return render(request, "record.html", context)


@router.post("/reference/{slug}/{record_id}")
async def update_record(
    slug: str, record_id: str, request: Request, signed_in: SignedIn, session: DbSession
) -> Response:
    """Changes a record as PATCH does (merged, checked whole, a revision logged when something changed)."""
    page = _page_kind(slug)
    require_roles(signed_in, frozenset({Role.analyst}), f"change {page.plural.lower()}")
    form = await check_csrf(request, signed_in.csrf_token)
    changes = reference.document_from_form(page, form, for_patch=True)
    actor = records.actor_of(signed_in.principal)

    def patch() -> Any:
        # The API's PATCH form first, as PATCH checks it; then the merged record as a whole.
        try:
            checked = page.kind.patch.model_validate(changes).model_dump(mode="json", exclude_unset=True)
        except ValidationError as exc:
            raise invalid_input([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
        return records.patch(session, page.kind, record_id, checked, actor)

    def again(problem: Problem) -> tuple[str, dict[str, Any]]:
        errors = reference.errors_by_field(problem.errors)
        return "record.html", _record_context(page, session, record_id, can_edit=True, changes=changes, errors=errors)

    return await _submit_form(
        request,
        session,
        partial(records.write, session, request.app.state.write_lock, patch),
        refused=(InvalidInput,),
        again=again,
        then=lambda _: f"/ui/reference/{slug}/{record_id}",
    )
