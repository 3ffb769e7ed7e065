"""Shared dependencies: the host, and Bearer-token auth with roles.

Use as `Annotated` dependencies: `host: HostDep`, `who: Annotated[Principal,
Depends(require("operator"))]`. Plugins use the same ones for their routers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from daemon.auth import Principal
from daemon.host import Host

_bearer = HTTPBearer(auto_error=False, description="A token from `gridhall token create`.")


async def get_host(request: Request) -> Host:
    # async, though it awaits nothing: FastAPI runs a plain `def` dependency in its
    # thread pool, a thread hop (and a GIL hand-over) on every request for one lookup.
    host: Host = request.app.state.host
    return host


HostDep = Annotated[Host, Depends(get_host)]


def require(role: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through tokens whose role has the rights of `role`."""

    async def check(
        host: HostDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                401, "a Bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        principal = await host.tokens.lookup(credentials.credentials)
        if principal is None:
            raise HTTPException(
                401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"}
            )
        if not host.roles.grants(principal.role, role):
            raise HTTPException(403, f"role {principal.role!r} may not do this; it needs {role!r}")
        return principal

    check.__name__ = f"require_{role}"
    return check


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Facility = Annotated[Principal, Depends(require("facility"))]
Admin = Annotated[Principal, Depends(require("admin"))]
