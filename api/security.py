"""Response headers that protect shoppers and API users, and the API docs served from our own origin.

Every response gets `X-Content-Type-Options: nosniff`, a referrer policy, frame protection and a
Content-Security-Policy: HTML pages may load scripts, styles and images only from this origin (no inline script or
style anywhere, so injected markup cannot run), and everything else (JSON, PDF, PNG, SVG) may load nothing. The
docs pages run Swagger UI and ReDoc from assets shipped in the `fastapi-offline` package: no CDN is contacted, and
they work without internet. ReDoc injects its styles as <style> elements, so the docs (and only they) allow inline
styles; they show the OpenAPI document, never ledger content.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from api.asgi import HttpMiddleware

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; frame-ancestors 'none'"
)
RESOURCE_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
DOCS_PATHS = ("/docs", "/redoc")
_DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders(HttpMiddleware):
    """Adds the headers above to every HTTP response (a route's own Content-Security-Policy, if any, stays)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        docs = scope.get("path", "") in DOCS_PATHS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _value in headers}
                headers += [(name, value) for name, value in _COMMON if name not in names]
                if b"content-security-policy" not in names:
                    html = any(n.lower() == b"content-type" and v.startswith(b"text/html") for n, v in headers)
                    policy = DOCS_CSP if docs else PAGE_CSP if html else RESOURCE_CSP
                    headers.append((b"content-security-policy", policy.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


_SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API docs</title>
<link rel="stylesheet" href="/static/docs/swagger-ui.css"><link rel="icon" href="/static/docs/favicon.png">
</head><body><div id="swagger-ui"></div>
<script src="/static/docs/swagger-ui-bundle.js"></script><script src="/static/swagger-init.js"></script>
</body></html>
"""
_REDOC_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API reference</title><link rel="icon" href="/static/docs/favicon.png">
</head><body><redoc spec-url="/openapi.json"></redoc><script src="/static/docs/redoc.standalone.js"></script>
</body></html>
"""


def install_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc (ReDoc) from packaged assets; call before mounting /static."""
    app.mount("/static/docs", StaticFiles(directory=_DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(_SWAGGER_PAGE.format(title=app.title))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return HTMLResponse(_REDOC_PAGE.format(title=app.title))
