"""The FastAPI application: `create_app` wires settings, database, engine, errors, middleware and routes.

`travelrisk serve` runs it with uvicorn as a factory (`service.commands.serve:worker_app`), once per worker process.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from risk_rules.forms import AssessmentRequest
from service import middleware, problems
from service.assessments.router import direct_create_route, trip_bounds
from service.assessments.router import router as assessments_router
from service.assessments.writer import AssessmentWriter
from service.dated_records.kinds import EMPLOYER_DISPUTES, SITUATIONS
from service.dated_records.router import router_for
from service.db import WalCheckpointer, create_db_engine, create_session_factory, is_sqlite, write_lock
from service.destinations.router import router as destinations_router
from service.health.router import router as health_router
from service.keys.router import router as keys_router
from service.keys.service import VerifiedKeyCache
from service.logs import configure_logging
from service.model.router import router as model_router
from service.model.service import ScoringEngine
from service.policy.router import router as policy_router
from service.ratelimit import RateLimiter
from service.rescoring.service import Rescorer
from service.reviews.router import router as reviews_router
from service.rosters.router import router as rosters_router
from service.rosters.schemas import RosterResult
from service.rosters.service import RosterWorker
from service.settings import Settings, get_settings
from service.ui.docs import router as docs_router
from service.ui.pages import PACKAGE as UI_PACKAGE
from service.ui.pages import problem_page
from service.ui.router import router as ui_router
from service.webhooks.delivery import Deliverer
from service.webhooks.router import router as webhooks_router

DESCRIPTION = """\
Scores the risk that a traveller is detained or barred from leaving a destination (China, Hong Kong,
Macao) during a planned trip, and explains the score: every factor that fired, the source passage it
rests on, and the reference records it was derived from.

Every `/v1` call needs `Authorization: Bearer <key>` (create one with
`travelrisk keys create --tenant NAME --role ROLE`). Errors are RFC 9457 problem details
(`application/problem+json`) with a field path for every invalid field.
"""

TAGS = [
    {"name": "assessments", "description": "Score a trip; read stored assessments (your tenant's only)."},
    {
        "name": "rosters",
        "description": "Many trips at once (JSON or CSV), scored in the background; each trip becomes an ordinary"
        " assessment.",
    },
    {
        "name": "reviews",
        "description": "Review decisions on assessments whose band the tenant's policy sends to review (roles"
        " `reviewer` and `admin` decide; four eyes; never changed or deleted), and the review queue.",
    },
    {
        "name": "policy",
        "description": "The tenant's review policy: bands that need review, approvals for severe trips, stricter"
        " thresholds; every change is a new version (role `admin` changes it, any role reads it).",
    },
    {"name": "model", "description": "The active model and the factors it weighs."},
    {
        "name": "situations",
        "description": "Situations between a home country and a destination (an extradition case, a trade or"
        " diplomatic dispute, sanctions, detentions of nationals), with the dates they were active: shared by"
        " all tenants, written by role `analyst`, read by any role, every change kept as a revision.",
    },
    {
        "name": "employer disputes",
        "description": "Organisations in a dispute with a destination, matched against travellers' employers:"
        " shared by all tenants, written by role `analyst`, read by any role, every change kept as a revision.",
    },
    {
        "name": "destinations",
        "description": "The destinations the service scores and their profiles, and the third countries it knows"
        " treaties and forced returns of (any role).",
    },
    {"name": "keys", "description": "API keys of your tenant (role `admin`)."},
    {
        "name": "webhooks",
        "description": "Endpoints of your tenant that receive signed events (role `admin`), and their delivery logs.",
    },
    {"name": "health", "description": "Liveness and readiness probes (no key needed)."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """A configured application; `settings` defaults to the environment's."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    engine = create_db_engine(settings)
    session_factory = create_session_factory(engine)
    scoring = ScoringEngine(settings, session_factory)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Load the model before taking traffic; a failure leaves the service up but not ready.
        await run_in_threadpool(scoring.load)
        await run_in_threadpool(scoring.warm_reference)
        # Everything loaded so far (model, rules, reference data, modules) lives as long as the
        # process: moving it out of the collector's generations keeps every later collection small.
        gc.collect()
        gc.freeze()
        checkpointer = WalCheckpointer(engine, settings.sqlite_checkpoint_seconds) if is_sqlite(engine) else None
        if checkpointer is not None:
            checkpointer.start()
        # Re-scoring runs beside the requests; it also finishes jobs an earlier process left unfinished.
        rescorer = Rescorer(session_factory, scoring, app.state.write_lock)
        rescorer.start()
        app.state.rescorer = rescorer
        # Webhook deliveries likewise, including those an earlier process left claimed or due.
        deliverer = Deliverer(session_factory, app.state.write_lock, settings)
        deliverer.start()
        app.state.deliverer = deliverer
        # Rosters are worked through beside the requests; unfinished ones of an earlier process resume.
        roster_worker = RosterWorker(
            session_factory,
            scoring,
            app.state.write_lock,
            chunk_size=settings.roster_chunk_size,
            trip_bounds=lambda: trip_bounds(settings),
        )
        roster_worker.start()
        app.state.roster_worker = roster_worker
        app.state.assessment_writer.start()
        try:
            yield
        finally:
            # Requests already submitted are scored, committed and answered before the engine goes.
            app.state.assessment_writer.stop()
            app.state.roster_worker.stop()
            deliverer.stop()
            rescorer.stop()
            if checkpointer is not None:
                checkpointer.stop()
            engine.dispose()

    app = FastAPI(
        title="travelrisk",
        version="1",
        summary="Detention and exit-ban risk for a planned trip, and why.",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # Served by `service.ui.docs` from the package's own assets instead of a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.scoring = scoring
    app.state.key_cache = VerifiedKeyCache(settings.key_cache_seconds)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_key, settings.rate_limit_failed_auth_per_address)
    app.state.write_lock = write_lock(engine)
    app.state.assessment_writer = AssessmentWriter(
        session_factory, scoring, app.state.write_lock, max_batch=settings.assessment_batch_max
    )

    problems.install(app, problem_page=problem_page)
    middleware.install(
        app, body_limit=settings.max_body_bytes, path_limits={"/v1/rosters": settings.roster_max_body_bytes}
    )
    routers = (
        assessments_router,
        rosters_router,
        reviews_router,
        policy_router,
        router_for(SITUATIONS),
        router_for(EMPLOYER_DISPUTES),
        destinations_router,
        model_router,
        keys_router,
        webhooks_router,
        health_router,
        ui_router,
        docs_router,
    )
    for router in routers:
        app.include_router(router)
    # Matched first: the hot path, served without FastAPI's request handling (see `direct_create_route`).
    app.router.routes.insert(0, direct_create_route())
    app.mount("/ui/static", StaticFiles(directory=UI_PACKAGE / "static"), name="ui-static")
    # What `Allow` lists on 405 and OPTIONS: every method of every route at a path.
    app.state.route_methods = problems.method_index([*app.routes, *(r for router in routers for r in router.routes)])

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problem_openapi(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def operation_id(route: APIRoute) -> str:
    """An operation's id in the OpenAPI document: the route's name (its handler's name unless the route
    sets `name=`), e.g. `create_assessment`.

    FastAPI's default appends the path and method (`create_assessment_v1_assessments_post`), which
    generated clients turn into their function names; ids must stay stable, since renaming one renames
    the integrators' functions.
    """
    return route.name


def problem_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """Document every error as problem details: add the schema and replace FastAPI's default 422.

    Also publishes the schemas that operations reading or writing their bodies themselves refer to: the
    assessment request (POST /v1/assessments, POST /v1/rosters) and a roster's result line.
    """
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (AssessmentRequest, RosterResult):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, schema in model_schema.pop("$defs", {}).items():
            schemas.setdefault(name, schema)
        schemas.setdefault(model.__name__, model_schema)
    problem_schema = problems.ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["ProblemDetails"] = problem_schema
    for path in document.get("paths", {}).values():
        for operation in path.values():
            if operation.get("security"):
                # Every call with a key counts against its rate limit (see service/ratelimit.py), and
                # needs the database to check the key.
                responses = operation.setdefault("responses", {})
                for status, entry in problems.openapi_responses(429, 503).items():
                    responses.setdefault(str(status), entry)
            response = operation.get("responses", {}).get("422")
            if response is not None:
                response["description"] = "Invalid input; `errors` lists every invalid field."
                response["content"] = {
                    problems.PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
                }
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    _const_as_enum(schemas)
    return document


def _const_as_enum(node: Any) -> None:
    """Rewrite `{"const": x}` as the equivalent one-value `{"enum": [x]}`, in place.

    Client generators handle `enum` everywhere, but some not a `const` inside `anyOf`: openapi-python-client
    0.29 makes the entry document's `"destination_travel_permit" | country code` refuse every country code.
    """
    if isinstance(node, dict):
        if "const" in node and "enum" not in node:
            node["enum"] = [node.pop("const")]
        for value in node.values():
            _const_as_enum(value)
    elif isinstance(node, list):
        for value in node:
            _const_as_enum(value)
