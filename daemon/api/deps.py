"""Shared dependencies: the host, and Bearer-token auth with roles.

Use as `Annotated` dependencies: `host: HostDep`, `who: Annotated[Principal,
Depends(require("operator"))]`. Plugins use the same ones for their routers, and
`error_responses(404, 409)` for the `responses=` of a route (what it may answer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.openapi.models import HTTPBearer as BearerModel
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from daemon.api.errors import error_responses
from daemon.auth import Principal
from daemon.host import Host


async def get_host(request: Request) -> Host:
    # async, though it awaits nothing: FastAPI runs a plain `def` dependency in its
    # thread pool, a thread hop (and a GIL hand-over) on every request for one lookup.
    host: Host = request.app.state.host
    return host


HostDep = Annotated[Host, Depends(get_host)]


class _Bearer(SecurityBase):
    """The Bearer token and the role's check as one dependency: FastAPI solves each
    dependency in a pass of its own (about 15 us each here), and the check with two of
    its own (the host, HTTPBearer) cost every authenticated request 30 us more than
    this. A SecurityBase, so the OpenAPI names the scheme as HTTPBearer did."""

    def __init__(self, role: str) -> None:
        self.model = BearerModel(description="A token from `gridhall token create`.")
        self.scheme_name = "HTTPBearer"
        self.role = role

    async def __call__(self, request: HTTPConnection) -> Principal:
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        if not token or scheme.lower() != "bearer":
            raise HTTPException(
                401, "a Bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        host: Host = request.app.state.host
        principal = await host.tokens.lookup(token)
        if principal is None:
            raise HTTPException(
                401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"}
            )
        if not host.roles.grants(principal.role, self.role):
            raise HTTPException(
                403, f"role {principal.role!r} may not do this; it needs {self.role!r}"
            )
        return principal


def require(role: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through tokens whose role has the rights of `role`."""
    return _Bearer(role)


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Facility = Annotated[Principal, Depends(require("facility"))]
Admin = Annotated[Principal, Depends(require("admin"))]

__all__ = [
    "Admin",
    "Facility",
    "HostDep",
    "Operator",
    "Viewer",
    "error_responses",  # `responses=` of a route: the errors it may answer (errors.py)
    "get_host",
    "require",
]
