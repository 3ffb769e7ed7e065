"""What a running daemon keeps in memory: the tree, the point index, who is on duty.

The hooks other plugins call (`gridhall_grid_for_point`, `gridhall_grid_member_on_duty`)
are synchronous and sit in their hot paths (routing every ticket), so they answer from
here, never from the store. It is rebuilt at start, after a change through the API,
and on `POST /api/v1/grid/reload` after a CLI import into a running daemon's store.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plugins.grid.config import BASIC

if TYPE_CHECKING:
    from plugins.grid.geometry import GridIndex


@dataclass(frozen=True)
class GridInfo:
    code: str
    parent: str | None
    level: str
    name: str
    type: str | None
    unit: str | None

    def public(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "parent": self.parent,
            "level": self.level,
            "name": self.name,
            "type": self.type,
            "unit": self.unit,
        }


class NoGrids:
    """The index of an empty registry: it holds nothing."""

    def __len__(self) -> int:
        return 0

    def lookup(self, lon: float, lat: float) -> str | None:
        return None

    def holding(self, lon: float, lat: float) -> list[str]:
        return []


@dataclass
class Registry:
    grids: dict[str, GridInfo] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    # shapely (and numpy under it) load only once there are boundaries to index: a
    # daemon with no grids imported does not pay their memory.
    index: GridIndex | NoGrids = field(default_factory=lambda: NoGrids())
    on_duty: dict[str, dict[str, Any]] = field(default_factory=dict)  # grid -> member

    def path(self, code: str) -> list[GridInfo]:
        """The grid and its ancestors, district first."""
        out = []
        current: str | None = code
        while current is not None and current in self.grids:
            out.append(self.grids[current])
            current = self.grids[current].parent
        return out[::-1]

    def grid_for_point(self, lon: float, lat: float) -> dict[str, Any] | None:
        code = self.index.lookup(lon, lat)
        if code is None:
            return None
        return {**self.grids[code].public(), "path": [g.code for g in self.path(code)]}

    def tree(self, root: str | None) -> list[dict[str, Any]]:
        def node(code: str) -> dict[str, Any]:
            return {
                **self.grids[code].public(),
                "children": [node(c) for c in self.children.get(code, [])],
            }

        roots = [root] if root else sorted(c for c, g in self.grids.items() if g.parent is None)
        return [node(c) for c in roots]


def load(conn: sqlite3.Connection) -> Registry:
    """Build the registry in one read, in the store's thread."""
    reg = Registry()
    basic = []
    rows = conn.execute(
        "SELECT code, parent, level, name, type, unit, geometry FROM grid_nodes ORDER BY code"
    )
    for code, parent, level, name, type_, unit, geometry in rows:
        reg.grids[code] = GridInfo(code, parent, level, name, type_, unit)
        if parent is not None:
            reg.children.setdefault(parent, []).append(code)
        if level == BASIC:
            basic.append((code, json.loads(geometry)))
    if basic:
        from plugins.grid.geometry import GridIndex, polygon_from_geojson

        reg.index = GridIndex([(code, polygon_from_geojson(g)) for code, g in basic])
    reg.on_duty = {
        grid: {"person": person, "name": name, "grid": grid, "since": since}
        for grid, person, name, since in conn.execute(
            "SELECT a.grid, a.person, p.name, a.since FROM grid_assignments a "
            "JOIN grid_people p ON p.id = a.person "
            "WHERE a.role = 'member' AND a.until IS NULL"
        )
    }
    return reg
