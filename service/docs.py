"""The interactive documentation pages (/docs and /redoc), each with a Content-Security-Policy that admits
exactly what the page loads.

FastAPI's own pages are used as they are; what this adds is the policy: the page's inline scripts are
allowed by their SHA-256 hash (computed from the page itself, so an upgrade of FastAPI that changes them
keeps working), its bundles only from the CDN they are published on, and no page may be framed.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse

CDN = "https://cdn.jsdelivr.net"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def content_security_policy(html: str, *, fonts: bool = False) -> str:
    """The policy for one documentation page: its inline scripts by hash, bundles from the CDN."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    style_hosts = f"{CDN} https://fonts.googleapis.com" if fonts else CDN
    directives = [
        "default-src 'none'",
        f"script-src {CDN} {hashes}".rstrip(),
        # The renderers set inline styles on the elements they build.
        f"style-src {style_hosts} 'unsafe-inline'",
        "img-src 'self' data: https://fastapi.tiangolo.com",
        "font-src https://fonts.gstatic.com" if fonts else "font-src 'none'",
        "connect-src 'self'",
        # ReDoc renders in a web worker started from a blob.
        "worker-src blob:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
    return "; ".join(directives)


def _page(response: HTMLResponse, *, fonts: bool = False) -> HTMLResponse:
    html = bytes(response.body).decode()
    return HTMLResponse(html, headers={"Content-Security-Policy": content_security_policy(html, fonts=fonts)})


def install(app: FastAPI) -> None:
    """Serve /docs (Swagger UI) and /redoc (ReDoc) with their policies; create the app with
    `docs_url=None, redoc_url=None` so that FastAPI does not add its own."""
    title = app.title
    openapi_url = app.openapi_url or "/openapi.json"

    async def swagger_ui(_: Request) -> HTMLResponse:
        return _page(get_swagger_ui_html(openapi_url=openapi_url, title=f"{title} - Swagger UI"))

    async def redoc(_: Request) -> HTMLResponse:
        return _page(get_redoc_html(openapi_url=openapi_url, title=f"{title} - ReDoc"), fonts=True)

    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
