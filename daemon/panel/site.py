"""Serving the panel: the page at `/`, its files under `/panel/<build>/`.

`<build>` is a digest of every file served, so the files can be cached for good
(`immutable`) while the page itself is revalidated on every load (`no-cache`, with
its ETag): a daemon upgraded with new files gives a new page naming new URLs, and a
panel left running for months never mixes old modules with new ones.

Every answer carries a strict Content-Security-Policy: the page runs only scripts
and styles of its own origin and talks to no other host, so an injected string
cannot run and a hall's closed network is never asked for anything outside it.
`GET /` needs no token: the page holds nothing until a token is typed into it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from daemon.panel.views import STATIC, PanelView, collect

if TYPE_CHECKING:
    from daemon.host import Host

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
IMMUTABLE = "public, max-age=31536000, immutable"


def build_id(folders: list[Path]) -> str:
    """A digest of every file under `folders` (names and contents)."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class _Files(StaticFiles):
    """Static files with the panel's headers: cached for good, under the policy."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(HEADERS)
        response.headers["Cache-Control"] = IMMUTABLE
        return response


@dataclass
class Site:
    build: str
    base: str  # "/panel/<build>"
    index: str  # the page, with its files' URLs

    def module_url(self, plugin: str | None, view: PanelView) -> str:
        if plugin is None:
            return f"{self.base}/views/{view.module}"
        return f"{self.base}/plugins/{view.id}/{view.module}"


def install(app: FastAPI, host: Host) -> Site:
    """Mount the page and its files on `app`; `app.state.panel` (the `Site`) says where
    they are, `app.state.panel_views` holds every view."""
    views = collect(host)
    plugin_views = [v for p, v in views if p is not None]
    build = build_id([STATIC, *(v.folder for v in plugin_views)])
    base = f"/panel/{build}"
    site = Site(build, base, (STATIC / "index.html").read_text().replace("{{base}}", base))
    etag = f'"{build}"'

    @app.get("/", include_in_schema=False)
    async def page(request: Request) -> Response:
        headers = {**HEADERS, "Cache-Control": "no-cache", "ETag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return HTMLResponse(site.index, headers=headers)

    # A plugin's folder first: the core's mount would otherwise take its paths.
    for view in plugin_views:
        app.mount(f"{base}/plugins/{view.id}", _Files(directory=view.folder), name=view.id)
    app.mount(base, _Files(directory=STATIC), name="panel")
    app.state.panel = site
    app.state.panel_views = views
    return site
