"""GeoReport v2's errors: `[{"code", "description"}]` (XML: `<errors><error>`), with
the HTTP status the spec gives: 404 for what does not exist (a service_code, a
request, a token, a jurisdiction_id), 403 for a missing or wrong api_key, 400 for
anything else the request got wrong.

Every route of the Open311 router is an `Open311Route`, which turns whatever its
handler raises into that shape in the format asked for; the app's own handlers (the
`{"error": ...}` of /api/v1) never see these routes' errors. How the app's errors map:

| raised | status | why |
|---|---|---|
| `Open311Error` | its own | the spec's cases, named in the description |
| a request's validation (FastAPI's 422) | 400 | the spec has no 422: "400 for any other error" |
| `NotFound` | 404 | |
| `Forbidden` | 403 | |
| any other `GridhallError` (422, 503 `calendar_unknown`) | 400 | the spec's general error |
| anything unexpected | 500 | logged with its traceback; a bug is not the client's error |

The description of a `GridhallError` starts with our own code (`calendar_unknown: ...`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from daemon.errors import Forbidden, GridhallError, NotFound
from plugins.tickets.open311.document import FORMATS, answer

log = logging.getLogger(__name__)


class Open311Error(Exception):
    def __init__(self, status: int, *descriptions: str) -> None:
        super().__init__("; ".join(descriptions))
        self.status = status
        self.descriptions = list(descriptions)


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "query", "path"))


def described(exc: Exception) -> tuple[int, list[str]]:
    """The status and descriptions an exception is answered with."""
    if isinstance(exc, Open311Error):
        return exc.status, exc.descriptions
    if isinstance(exc, RequestValidationError | ValidationError):
        found = [f"{_field(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        return 400, [d.removeprefix(": ") for d in found] or ["invalid request"]
    if isinstance(exc, HTTPException):
        return exc.status_code, [str(exc.detail)]
    if isinstance(exc, NotFound | Forbidden):
        return exc.status, [exc.message]
    if isinstance(exc, GridhallError):
        return 400, [f"{exc.code}: {exc.message}"]
    log.error("open311: a request failed", exc_info=exc)
    return 500, [f"internal error: {type(exc).__name__}"]


# For the OpenAPI: what the routes answer, in both formats. The XML is described as
# text: its elements mirror the JSON (document.py).
_XML = {"text/xml": {"schema": {"type": "string"}}}
_ERRORS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
        "required": ["code", "description"],
    },
}
_WHY = {
    400: "anything else the request got wrong (GeoReport v2's general error)",
    403: "a missing or invalid api_key",
    404: "no such service_code, request, token or jurisdiction_id, or a format other "
    "than .json and .xml",
}
LIST = {"type": "array", "items": {"type": "object"}}
OBJECT = {"type": "object"}


def responses(
    ok: dict[int, str], body: dict[str, Any], *errors: int
) -> dict[int | str, dict[str, Any]]:
    """`responses=` of an Open311 route: its successes (`ok`: status -> description)
    with `body` as their JSON, and its `errors` in the spec's format; both formats
    each. It never answers FastAPI's 422 (a request's validation is a 400 here), so
    that one is stated as `None` in the route's `openapi_extra` (`NO_422`), which the
    app's OpenAPI drops (daemon.api.errors.honest_openapi)."""
    answers: dict[int | str, dict[str, Any]] = {
        status: {"description": text, "content": {"application/json": {"schema": body}, **_XML}}
        for status, text in ok.items()
    }
    for status in errors:
        answers[status] = {
            "description": _WHY[status],
            "content": {"application/json": {"schema": _ERRORS}, **_XML},
        }
    return answers


NO_422: dict[str, Any] = {"responses": {"422": None}}


def error_answer(fmt: str, exc: Exception) -> Response:
    status, descriptions = described(exc)
    body = [{"code": status, "description": d} for d in descriptions]
    return answer(fmt if fmt in FORMATS else "json", "errors", body, status)


class Open311Route(APIRoute):
    """A route whose every failure is answered in GeoReport v2's error format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every failure, in the spec's shape
                return error_answer(str(request.path_params.get("fmt", "json")), exc)

        return run
