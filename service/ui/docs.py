"""The interactive API documentation, served with the package's own copies of Swagger UI and ReDoc.

Nothing is loaded from a CDN, so `/docs` works offline, and no inline script is needed: the pages start
the viewers from a small script of ours that reads the document's URL from a data attribute.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.ui.pages import templates

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui(request: Request) -> Response:
    """Swagger UI over /openapi.json."""
    return templates.TemplateResponse(request, "docs.html", {"openapi_url": request.app.openapi_url})


@router.get("/redoc")
def redoc(request: Request) -> Response:
    """ReDoc over /openapi.json."""
    return templates.TemplateResponse(request, "redoc.html", {"openapi_url": request.app.openapi_url})
