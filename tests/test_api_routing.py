"""The app's routers step aside for paths their routes cannot match (daemon/api/
prefixed.py): the same routers in a plain FastAPI app and in `App` answer every
request alike, whatever the path (a parameter at a segment's start or in its middle, a
route at the prefix itself, a trailing slash, an unknown path, a wrong method, a root
path), and the daemon's OpenAPI is what FastAPI makes of its routers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from daemon.api.prefixed import App, Prefixed


def answering(router: APIRouter, method: str, path: str, name: str) -> None:
    """A route that answers its name and the path's parameters."""

    async def endpoint(request: Request) -> dict[str, Any]:
        return {"route": name, **request.path_params}

    router.add_api_route(path, endpoint, methods=[method], name=name)


def routers() -> list[tuple[APIRouter, dict[str, Any]]]:
    first, at_prefix, formats = APIRouter(prefix="/things"), APIRouter(), APIRouter()
    nested, inner = APIRouter(), APIRouter()
    for router, method, path, name in [
        (first, "GET", "/{thing_id:int}", "thing"),
        (first, "POST", "/{thing_id}/run", "run"),
        (at_prefix, "POST", "", "create"),
        (at_prefix, "GET", "/overdue", "overdue"),
        (formats, "GET", "/discovery.{fmt}", "discovery"),
        (formats, "GET", "/{rest:path}", "rest"),
        (inner, "GET", "/deep", "deep"),
    ]:
        answering(router, method, path, name)
    nested.include_router(inner, prefix="/inner")
    return [
        (first, {"prefix": "/api/v1"}),
        (at_prefix, {"prefix": "/api/v1/tickets"}),
        (formats, {"prefix": "/open311/v2"}),
        (nested, {"prefix": "/api/v1/nested"}),
    ]


def build(cls: type[FastAPI]) -> FastAPI:
    app = cls()
    for router, kwargs in routers():
        app.include_router(router, **kwargs)
    return app


REQUESTS = [
    ("GET", "/api/v1/things/7"),
    ("GET", "/api/v1/things/x"),  # the int convertor refuses it: 404
    ("POST", "/api/v1/things/x/run"),
    ("GET", "/api/v1/things/x/run"),  # 405
    ("POST", "/api/v1/tickets"),
    ("POST", "/api/v1/tickets/"),  # a redirect to the route without the slash
    ("GET", "/api/v1/tickets/overdue"),
    ("GET", "/api/v1/tickets/overdue/"),
    ("GET", "/api/v1/ticketsoverdue"),
    ("GET", "/open311/v2/discovery.json"),
    ("GET", "/open311/v2/discovery"),
    ("GET", "/open311/v2/anything/else"),
    ("GET", "/api/v1/nested/inner/deep"),
    ("GET", "/api/v1/nowhere"),
    ("GET", "/"),
]


@pytest.mark.parametrize("root_path", ["", "/behind-a-proxy"])
async def test_the_same_answers_as_fastapi(root_path: str) -> None:
    answers = {}
    for cls in (FastAPI, App):
        app = build(cls)
        transport = httpx.ASGITransport(app=app, root_path=root_path)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            found = []
            for method, path in REQUESTS:
                r = await client.request(method, root_path + path, follow_redirects=False)
                found.append((method, path, r.status_code, r.headers.get("location"), r.text))
            answers[cls.__name__] = found
    assert answers["App"] == answers["FastAPI"]
    codes = {(m, p): c for m, p, c, _, _ in answers["App"]}
    assert codes[("POST", "/api/v1/tickets")] == 200
    assert codes[("GET", "/api/v1/things/x/run")] == 405
    assert codes[("POST", "/api/v1/tickets/")] == 307
    assert codes[("GET", "/api/v1/nested/inner/deep")] == 200
    assert codes[("GET", "/api/v1/nowhere")] == 404


def test_a_router_is_asked_only_for_its_own_paths() -> None:
    first, kwargs = routers()[0]
    prefixed = Prefixed(first, **kwargs)
    assert prefixed.literals == ("/api/v1/things/", "/api/v1/things/")
    nested, kwargs = routers()[3]
    # A router that includes another has a route without a path: always asked.
    assert Prefixed(nested, **kwargs).literals is None


def test_the_openapi_is_fastapis() -> None:
    assert build(App).openapi() == build(FastAPI).openapi()
