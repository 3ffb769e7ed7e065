"""`GET /api/v1/audit`: the newest audit rows (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from daemon import audit
from daemon.api.deps import Admin, HostDep

router = APIRouter(tags=["audit"])


@router.get("/audit")
async def recent_audit(
    host: HostDep,
    who: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    target: Annotated[str | None, Query(max_length=64)] = None,
) -> list[dict[str, Any]]:
    return await audit.recent(host.store, limit, target)
