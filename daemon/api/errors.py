"""Every error answers `{"error": {"code": ..., "message": ...}}`."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from daemon.errors import GridhallError

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


def error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "refused",
    413: "too_large",
    422: "bad_arguments",
    503: "unavailable",
    504: "timeout",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(GridhallError)
    async def _gridhall(request: Request, exc: GridhallError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = _CODES.get(
            exc.status_code, HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        )
        return error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Logged with its traceback; the caller gets the contract's shape, not HTML.
        log.exception("%s %s failed", request.method, request.url.path)
        return error(500, "internal", f"internal error: {type(exc).__name__}")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if p != "body")
            parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
        return error(422, "bad_request", "; ".join(parts) or "invalid request")


# For the OpenAPI: what each error answer means, by default.
DESCRIBED = {
    400: "the request could not be read: its body is not JSON, or a bad Content-Length",
    401: "no token or an unknown one",
    403: "the token's role may not do this",
    404: "not found",
    409: "refused (the message says why)",
    413: "the request body is over the limit (`[api] max_body_kb`)",
    422: "bad arguments (the message names the field)",
    502: "the device answered with an error of its own",
    503: "unavailable",
    504: "no answer in time",
}


def error_responses(
    *codes: int, described: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status it may answer besides its success, in the
    contract's error shape, `{"error": {"code", "message"}}`; `described` words a
    code for this route (`{404: "no such grid"}`). What every route may answer is added
    to the OpenAPI by `honest_openapi`: 401 and 403 where a token is needed, 422 where
    FastAPI validates, 400 and 413 where there is a body; declare the rest here."""
    words = {**DESCRIBED, **(described or {})}
    return {c: {"model": ErrorResponse, "description": words[c]} for c in codes}


_REF = "#/components/schemas/ErrorResponse"
_VALIDATION = "#/components/schemas/HTTPValidationError"


def honest_openapi(openapi: dict[str, Any]) -> dict[str, Any]:
    """The answers every route may give whatever its own code does, added to the
    generated OpenAPI in place, so clients (and schemathesis) can rely on it:

    - 401 and 403 on every operation that needs a token (`security`), none elsewhere
      (health, Open311's public reads);
    - 422 in the contract's shape where FastAPI declared its own `HTTPValidationError`
      (`_invalid` above answers `{"error": ...}`, never `{"detail": [...]}`);
    - 400 and 413 on every operation with a body (a body that is not JSON, a bad or too
      large Content-Length: `limits.BodyLimit`).

    A route with an error format of its own (Open311) states a response it never
    gives as `None` in its `openapi_extra` (`{"responses": {"422": None}}`: FastAPI
    declares one for every route with parameters); those are dropped here.
    """
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for methods in openapi.get("paths", {}).values():
        for operation in methods.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status in [s for s, r in responses.items() if r is None]:
                del responses[status]
            wanted = []
            if operation.get("security"):
                wanted += [401, 403]
            if "requestBody" in operation:
                wanted += [400, 413]
            invalid = responses.get("422", {}).get("content", {}).get("application/json", {})
            if invalid.get("schema", {}).get("$ref") == _VALIDATION:
                del responses["422"]
                wanted.append(422)
            for code in wanted:
                responses.setdefault(
                    str(code),
                    {
                        "description": DESCRIBED[code],
                        "content": {"application/json": {"schema": {"$ref": _REF}}},
                    },
                )
            operation["responses"] = dict(sorted(responses.items()))
    if not _uses(openapi["paths"], _VALIDATION):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    if _uses(openapi["paths"], _REF) and "ErrorResponse" not in schemas:
        schemas["ErrorResponse"] = ErrorResponse.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        schemas.update(schemas["ErrorResponse"].pop("$defs", {}))
    return openapi


def _uses(value: Any, ref: str) -> bool:
    if isinstance(value, dict):
        return value.get("$ref") == ref or any(_uses(v, ref) for v in value.values())
    if isinstance(value, list):
        return any(_uses(v, ref) for v in value)
    return False
