"""Builds the FastAPI app around a host: core routers, plugin routers, errors."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI

from daemon import __version__
from daemon.api import audit, devices, docs, errors, events, health, metrics
from daemon.api import panel as panel_api
from daemon.api import scenes as scenes_api
from daemon.api import schedules as schedules_api
from daemon.api import seats as seats_api
from daemon.api import store as store_api
from daemon.api.limits import BodyLimit
from daemon.api.prefixed import App
from daemon.host import Host, Mount
from daemon.panel import site as panel_site

API = "/api/v1"
Lifespan = Callable[[Any], AbstractAsyncContextManager[None]]


def create_app(host: Host, lifespan: Lifespan | None = None) -> FastAPI:
    """`lifespan` opens and closes what the app owns (the daemon's start and stop)."""
    app = App(  # each router asked only for paths its routes can match (prefixed.py)
        title="gridhall",
        version=__version__,
        docs_url=None,  # docs.install: the same page from package files, no CDN
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.host = host
    errors.install(app)
    docs.install(app)
    app.add_middleware(BodyLimit, max_bytes=host.config.api.max_body_kb * 1024)
    app.include_router(health.router, prefix=API)
    for router in (devices.router, events.router, audit.router, store_api.router):
        app.include_router(router, prefix=API)
    app.include_router(scenes_api.router, prefix=API)
    app.include_router(schedules_api.router, prefix=API)
    app.include_router(seats_api.router, prefix=API)
    app.include_router(panel_api.router, prefix=API)
    app.include_router(metrics.router)  # at /metrics, where Prometheus looks
    for plugin_name, router in host.plugins.api_routers(host):
        if isinstance(router, Mount):
            app.include_router(router.router, prefix=router.prefix)
        else:
            short = plugin_name.rsplit(".", 1)[-1]
            app.include_router(router, prefix=f"{API}/{short}")
    panel_site.install(app, host)  # the touch panel at `/` (docs/panel.md)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        # Once: FastAPI keeps the document it built in `app.openapi_schema`.
        if app.openapi_schema is None:
            app.openapi_schema = errors.honest_openapi(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


__all__ = ["create_app", "APIRouter"]
