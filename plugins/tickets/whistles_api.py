"""Whistles under /api/v1/tickets/whistles (吹哨报到; docs/tickets.md, "Whistles").

The command center's desk (dispatcher) blows and closes; a department's handler
reports in; everyone reads. Whistle ids are integers in the path, so `types` and
`assessment` never fall into them.
"""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from daemon import bounds
from daemon.api.deps import Viewer, error_responses, require
from daemon.auth import Principal
from daemon.errors import NotFound
from daemon.host import Host
from plugins.tickets import whistle_measures, whistle_types, whistles
from plugins.tickets.config import Level
from plugins.tickets.measures_api import PeriodDep
from plugins.tickets.whistles import BlowArgs, CheckInArgs, CloseArgs

Dispatcher = Annotated[Principal, Depends(require("dispatcher"))]
Handler = Annotated[Principal, Depends(require("handler"))]
WhistleId = Annotated[int, Path(ge=1, le=bounds.INT64)]
State = Literal["open", "answered", "escalated", "closed"]


def build_router(host: Host) -> APIRouter:
    router = APIRouter(prefix="/whistles", tags=["tickets: whistles"])

    @router.get("/types")
    async def types(who: Viewer, all: bool = False) -> list[dict[str, Any]]:
        """The whistle types of each level with their deadlines and the departments
        they call (`?all=true`: retired ones too)."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cur = conn.execute(
                "SELECT * FROM ticket_whistle_types "
                f"{'' if all else 'WHERE active = 1'} ORDER BY "
                "CASE level WHEN 'community' THEN 0 WHEN 'street' THEN 1 ELSE 2 END, code"
            )
            cur.row_factory = sqlite3.Row
            return [whistle_types.view(r) for r in cur.fetchall()]

        return await host.store.read(read)

    @router.post("", status_code=201)
    async def blow(body: BlowArgs, who: Dispatcher) -> dict[str, Any]:
        """Blow a whistle (on a ticket, or alone): 201 with it and its calls."""
        return await whistles.blow(host, body, actor=who.name)

    @router.get("")
    async def list_whistles(
        who: Viewer,
        state: State | None = None,
        level: Level | None = None,
        ticket: Annotated[int | None, Query(ge=1, le=bounds.INT64)] = None,
        department: Annotated[str | None, Query(description="called by the whistle")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        before: Annotated[
            int | None, Query(ge=0, le=bounds.INT64, description="continue below this id")
        ] = None,
    ) -> dict[str, Any]:
        clauses: list[str] = ["1"]
        params: list[Any] = []
        for column, value in (("w.state", state), ("w.level", level), ("w.ticket", ticket)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if department is not None:
            clauses.append(
                "w.id IN (SELECT whistle FROM ticket_whistle_calls WHERE department = ?)"
            )
            params.append(department)
        if before is not None:
            clauses.append("w.id < ?")
            params.append(before)
        where = " AND ".join(clauses)
        found = await host.store.read(lambda conn: whistles.many(conn, where, params, limit))
        return {"whistles": found, "next": found[-1]["id"] if len(found) == limit else None}

    @router.get("/assessment")
    async def assessment(who: Viewer, period: PeriodDep) -> dict[str, Any]:
        """One whistle, one assessment (一哨一考核): per department, the calls due in
        the period, reported in, reported in on time, and their rates."""
        bounds = period.bounds(host.calendar.tz)
        found = await host.store.read(lambda conn: whistle_measures.assess(conn, bounds))
        return {"period": period.to_dict(host.calendar.tz), **found}

    @router.get("/{whistle_id:int}", responses=error_responses(404))
    async def one(whistle_id: WhistleId, who: Viewer) -> dict[str, Any]:
        found = await host.store.read(lambda conn: whistles.one(conn, whistle_id))
        if found is None:
            raise NotFound(f"no whistle {whistle_id}")
        return found

    @router.post("/{whistle_id:int}/report-in", responses=error_responses(404, 409))
    async def report_in(whistle_id: WhistleId, body: CheckInArgs, who: Handler) -> dict[str, Any]:
        """A department reports in (报到); once all have, the whistle is `answered`."""
        return await whistles.report_in(host, whistle_id, body, actor=who.name)

    @router.post("/{whistle_id:int}/close", responses=error_responses(404, 409))
    async def close(
        whistle_id: WhistleId, who: Dispatcher, body: CloseArgs | None = None
    ) -> dict[str, Any]:
        """End a whistle (the problem is solved); calls not reported in stay so."""
        return await whistles.close(host, whistle_id, body or CloseArgs(), actor=who.name)

    return router
