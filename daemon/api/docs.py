"""`/docs`: Swagger UI from files in a package, not a CDN, since a hall's network is
closed. fastapi-offline ships the files; its app factory builds a plain FastAPI, and
ours is `prefixed.App`, so the page is put together here from its static folder."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC = Path(fastapi_offline.__file__).parent / "static"
FILES = "/docs-files"


def install(app: FastAPI, url: str = "/docs") -> None:
    app.mount(FILES, StaticFiles(directory=STATIC), name="docs-files")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(url, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{FILES}/swagger-ui-bundle.js",
            swagger_css_url=f"{FILES}/swagger-ui.css",
            swagger_favicon_url=f"{FILES}/favicon.png",
        )
