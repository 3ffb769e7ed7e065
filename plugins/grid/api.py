"""The grid API under /api/v1/grid/: the tree, a grid, lookup by point, members,
residents, search, and assigning a grid's full-time member.

Reads of the tree and of lookups come from the in-memory registry; rows about people
come from the store and pass through plugins/grid/privacy.py on the way out.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from daemon import bounds
from daemon.api.deps import Operator, Viewer, error_responses
from daemon.errors import BadArguments, NotFound, Refused
from daemon.host import Host
from plugins.grid import live, privacy
from plugins.grid.config import BASIC
from plugins.grid.formats import id_number_problem, phone_problem
from plugins.grid.tables import NAME

Code = Annotated[str, Path(pattern=r"^\d{6,24}$")]
Limit = Annotated[int, Query(ge=1, le=500)]
Reveal = Annotated[bool, Query(description="unmasked personal fields (grid-registrar)")]


class Assignment(BaseModel):
    """A new full-time member for a grid: an existing person, or a new one with a name."""

    model_config = ConfigDict(extra="forbid")
    person: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(max_length=bounds.NAME)] | None = None
    phone: bounds.Short | None = None
    id_number: bounds.Short | None = None
    since: Annotated[str | None, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", max_length=10)] = None


def _rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def build_router(host: Host) -> APIRouter:
    router = APIRouter(tags=[NAME])

    async def query(sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return await host.store.read(lambda conn: _rows(conn.execute(sql, params)))

    async def people(
        what: str, rows: list[dict[str, Any]], who: Any, reveal: bool, key: str
    ) -> list[dict[str, Any]]:
        if privacy.may_reveal(host, who, reveal):
            return await privacy.reveal(host, who, what, rows, key)
        return privacy.mask(rows)

    @router.get("/tree", responses=error_responses(404))
    async def tree(who: Viewer, root: str | None = None) -> list[dict[str, Any]]:
        reg = live.get(host)
        if root is not None and root not in reg.grids:
            raise NotFound(f"no grid {root}")
        return reg.tree(root)

    @router.get("/grids/{code}", responses=error_responses(404))
    async def grid(code: Code, who: Viewer) -> dict[str, Any]:
        reg = live.get(host)
        if code not in reg.grids:
            raise NotFound(f"no grid {code}")

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            geometry = conn.execute("SELECT geometry FROM grid_nodes WHERE code = ?", (code,))
            counts = {
                table: conn.execute(
                    f"SELECT count(*) FROM grid_{table} WHERE grid IN "
                    "(WITH RECURSIVE sub(c) AS (SELECT ? UNION ALL "
                    "SELECT code FROM grid_nodes JOIN sub ON parent = c) SELECT c FROM sub)",
                    (code,),
                ).fetchone()[0]
                for table in ("buildings", "dwellings", "residents", "organisations")
            }
            return {"geometry": json.loads(geometry.fetchone()[0]), "counts": counts}

        found = await host.store.read(read)
        return {
            **reg.grids[code].public(),
            "path": [g.code for g in reg.path(code)],
            "children": reg.children.get(code, []),
            "on_duty": reg.on_duty.get(code),
            **found,
        }

    @router.get("/lookup", responses=error_responses(404))
    async def lookup(
        who: Viewer,
        lon: Annotated[float, Query(ge=-180, le=180)],
        lat: Annotated[float, Query(ge=-90, le=90)],
    ) -> dict[str, Any]:
        reg = live.get(host)
        found = reg.grid_for_point(lon, lat)
        if found is None:
            raise NotFound(f"no grid holds ({lon}, {lat})")
        return {
            **found,
            "holding": reg.index.holding(lon, lat),
            "on_duty": reg.on_duty.get(found["code"]),
        }

    @router.get("/members")
    async def members(
        who: Viewer, grid: str | None = None, reveal: Reveal = False, limit: Limit = 200
    ) -> list[dict[str, Any]]:
        rows = await query(
            "SELECT a.id AS assignment, a.grid, a.role, a.helper_kind, a.since, p.id AS person, "
            "p.name, p.phone, p.id_number FROM grid_assignments a "
            "JOIN grid_people p ON p.id = a.person WHERE a.until IS NULL "
            "AND (?1 IS NULL OR a.grid = ?1) ORDER BY a.grid, a.role, p.name LIMIT ?2",
            (grid, limit),
        )
        return await people("members", rows, who, reveal, "person")

    @router.get("/grids/{code}/history", responses=error_responses(404))
    async def history(code: Code, who: Viewer) -> list[dict[str, Any]]:
        if code not in live.get(host).grids:
            raise NotFound(f"no grid {code}")
        return await query(
            "SELECT a.id, a.person, p.name, a.role, a.helper_kind, a.since, a.until, a.by "
            "FROM grid_assignments a JOIN grid_people p ON p.id = a.person "
            "WHERE a.grid = ? ORDER BY a.since, a.id",
            (code,),
        )

    @router.post("/grids/{code}/member", responses=error_responses(404, 409))
    async def assign(code: Code, body: Assignment, who: Operator) -> dict[str, Any]:
        """Hand a basic grid to a new full-time member; the old assignment is closed."""
        reg = live.get(host)
        if code not in reg.grids:
            raise NotFound(f"no grid {code}")
        if reg.grids[code].level != BASIC:
            raise BadArguments(f"{code} is a {reg.grids[code].level}; members serve basic grids")
        for problem in (
            id_number_problem(body.id_number) if body.id_number else None,
            phone_problem(body.phone or ""),
        ):
            if problem:
                raise BadArguments(problem)
        since = body.since or time.strftime("%Y-%m-%d")

        def write(conn: sqlite3.Connection) -> None:
            if body.name:
                conn.execute(
                    "INSERT INTO grid_people (id, name, id_number, phone) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET name = excluded.name",
                    (body.person, body.name, body.id_number, body.phone),
                )
            elif (
                conn.execute("SELECT 1 FROM grid_people WHERE id = ?", (body.person,)).fetchone()
                is None
            ):
                raise NotFound(f"no person {body.person}; give a name to add them")
            current = conn.execute(
                "SELECT person FROM grid_assignments WHERE grid = ? AND role = 'member' "
                "AND until IS NULL",
                (code,),
            ).fetchone()
            if current is not None and current[0] == body.person:
                raise Refused(f"{body.person} already serves {code}")
            conn.execute(
                "UPDATE grid_assignments SET until = ? WHERE grid = ? AND role = 'member' "
                "AND until IS NULL",
                (since, code),
            )
            conn.execute(
                "INSERT INTO grid_assignments (person, grid, role, since, by) "
                "VALUES (?, ?, 'member', ?, ?)",
                (body.person, code, since, who.name),
            )

        await host.store.write(write)
        reg = await live.reload(host)
        host.publish(NAME, "member_assigned", {"grid": code, "person": body.person, "by": who.name})
        return {"grid": code, "on_duty": reg.on_duty.get(code)}

    @router.get("/residents")
    async def residents(
        who: Viewer,
        grid: str | None = None,
        q: str | None = None,
        reveal: Reveal = False,
        limit: Limit = 100,
    ) -> list[dict[str, Any]]:
        rows = await query(
            "SELECT r.id, r.name, r.id_number, r.phone, r.dwelling, d.address, r.grid "
            "FROM grid_residents r JOIN grid_dwellings d ON d.code = r.dwelling "
            "WHERE (?1 IS NULL OR r.grid = ?1) AND (?2 IS NULL OR r.name LIKE ?2 || '%') "
            "ORDER BY r.id LIMIT ?3",
            (grid, q, limit),
        )
        return await people("residents", rows, who, reveal, "id")

    @router.get("/search")
    async def search(
        who: Viewer, q: Annotated[str, Query(min_length=1)], limit: Limit = 20
    ) -> dict[str, Any]:
        """Grids by code or name, members and residents by name, organisations by name,
        buildings by address; personal fields masked."""
        like = f"%{q}%"
        grids = [
            g.public() for g in live.get(host).grids.values() if q in g.name or g.code.startswith(q)
        ][:limit]
        return {
            "grids": grids,
            "members": privacy.mask(
                await query(
                    "SELECT id AS person, name, phone, id_number FROM grid_people "
                    "WHERE name LIKE ? LIMIT ?",
                    (like, limit),
                )
            ),
            "residents": privacy.mask(
                await query(
                    "SELECT id, name, id_number, phone, dwelling, grid FROM grid_residents "
                    "WHERE name LIKE ? LIMIT ?",
                    (like, limit),
                )
            ),
            "organisations": await query(
                "SELECT id, name, credit_code, address, grid FROM grid_organisations "
                "WHERE name LIKE ? LIMIT ?",
                (like, limit),
            ),
            "buildings": await query(
                "SELECT code, address, grid FROM grid_buildings WHERE address LIKE ? LIMIT ?",
                (like, limit),
            ),
        }

    @router.post("/reload")
    async def reload(who: Operator) -> dict[str, int]:
        """Pick up a `gridhall grid import` made while the daemon ran."""
        reg = await live.reload(host)
        return {"grids": len(reg.grids), "basic": len(reg.index)}

    return router
