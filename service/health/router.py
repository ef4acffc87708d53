"""GET /healthz (the process is up) and GET /readyz (database reachable and migrated, model loaded)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.bodies import JsonRoute
from service.db import current_revision, head_revision
from service.model.service import ScoringEngine
from service.problems import openapi_responses, problem_response

router = APIRouter(tags=["health"], route_class=JsonRoute)

READY_EXAMPLE = {"status": "ready", "checks": {"database": "ok", "model": "ok"}}


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> dict[str, str]:
    """Answers 200 while the process runs; it checks nothing else."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database reachable and migrated, model loaded",
    responses={
        200: {"content": {"application/json": {"example": READY_EXAMPLE}}},
        **openapi_responses(503),
    },
)
def readyz(request: Request) -> Any:
    """200 when the service can take assessments; otherwise 503 with the reason for each failed check."""
    checks: dict[str, str] = {}
    reasons: list[str] = []
    engine = request.app.state.engine
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision, head = current_revision(engine), head_revision()
        if revision != head:
            raise LookupError(
                f"database schema is at {revision or 'no revision'}, the service needs {head}:"
                " run `travelrisk db upgrade`"
            )
        checks["database"] = "ok"
    except (SQLAlchemyError, LookupError) as exc:
        reason = str(exc) if isinstance(exc, LookupError) else f"database unreachable ({type(exc).__name__})"
        checks["database"] = reason
        reasons.append(reason)
    scoring: ScoringEngine = request.app.state.scoring
    if scoring.load():
        checks["model"] = "ok"
    else:
        checks["model"] = f"model not loaded ({scoring.failure})"
        reasons.append(checks["model"])
    if reasons:
        return problem_response(
            503,
            "Not ready: " + "; ".join(reasons),
            scope=request.scope,
            headers={"Retry-After": "5"},
            kind="not-ready",
            title="Service unavailable",
            extensions={"checks": checks},
        )
    return {"status": "ready", "checks": checks}
