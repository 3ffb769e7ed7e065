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


# For the OpenAPI: what the error answers look like.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "no token or an unknown one"},
    403: {"model": ErrorResponse, "description": "the token's role may not do this"},
}
