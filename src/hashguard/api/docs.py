"""/docs (Swagger UI) and /redoc (ReDoc) from the scripts and styles the ``fastapi-offline``
package ships, so the pages work without internet. Their Content-Security-Policy lets them load
nothing from another host (ReDoc's bundle links Redocly's logo from a CDN, which a browser then
never asks for) and runs no inline script: Swagger UI is started by a file of ours
(``static/swagger-start.js``). Inline styles are allowed: both bundles write their own."""

import html
from pathlib import Path
from typing import Final

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC: Final = "/docs-static"
START: Final = "/docs-start.js"
_FILES: Final = Path(fastapi_offline.__file__).parent / "static"
_START: Final = Path(__file__).parent / "static" / "swagger-start.js"
# ReDoc's search runs in a blob: worker.
_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_SWAGGER: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{static}/swagger-ui.css">
<link rel="icon" href="{static}/favicon.png">
<title>{title} - Swagger UI</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script src="{start}" data-openapi="{openapi}"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc for ``app`` (made with ``docs_url=None, redoc_url=None``)."""
    app.mount(STATIC, StaticFiles(directory=_FILES), name="docs-static")
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = html.escape(request.scope.get("root_path", ""))  # behind a proxy's prefix
        page = HTMLResponse(_SWAGGER.format(static=f"{root}{STATIC}", start=f"{root}{START}",
                                            openapi=f"{root}/openapi.json",
                                            title=html.escape(title)))  # fmt: skip
        page.headers["Content-Security-Policy"] = _POLICY
        return page

    @app.get(START, include_in_schema=False)
    async def swagger_start() -> FileResponse:
        return FileResponse(_START, media_type="text/javascript")

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = _POLICY
        return page
