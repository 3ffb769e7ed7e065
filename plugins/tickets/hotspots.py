"""Hot spots, the "problem box" (问题框) of 未诉先办: one category of problem coming back
to one place, at least `min_count` times within `days` days, so it can be dealt with
before the next call.

The place is a basic grid (`by = "grid"`), or a cluster of points (`by = "distance"`):
reports of one category linked when they lie within `radius_m` of each other, and a
cluster is every report reachable through such links. Duplicates (already counted in
the ticket they were merged into) and invalid reports are left out; a report that was
not this district's still marks a recurring problem at the place.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from plugins.tickets.measures_config import HotspotRule
from plugins.tickets.periods import Period
from plugins.tickets.workflow import DUPLICATE, INVALID

if TYPE_CHECKING:
    import numpy as np


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at `lat` on the WGS 84
    ellipsoid (the usual series, good to centimetres): a district spans a few
    kilometres, so a flat projection at its mean latitude is exact enough."""
    phi = math.radians(lat)
    per_lat = 111_132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    per_lon = 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)
    return per_lon, per_lat


def window(until: dt.date, days: int) -> Period:
    """The `days` local days ending with `until`."""
    return Period("range", until - dt.timedelta(days=days - 1), until)


def _reports(
    conn: sqlite3.Connection, bounds: tuple[float, float], category: str | None, where: str
) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT t.id, t.category, c.name, t.grid, t.lon, t.lat, t.created_at "
        "FROM tickets t LEFT JOIN ticket_categories c ON c.code = t.category "
        f"WHERE t.created_at >= ? AND t.created_at < ? AND t.state NOT IN (?, ?) AND {where} "
        "AND (? IS NULL OR t.category = ?) ORDER BY t.created_at, t.id",
        (*bounds, DUPLICATE, INVALID, category, category),
    ).fetchall()


def _spot(
    category: str, name: str | None, place: dict[str, Any], rows: list[Any]
) -> dict[str, Any]:
    return {
        "category": category,
        "category_name": name,
        "place": place,
        "count": len(rows),
        "first": min(r[6] for r in rows),
        "last": max(r[6] for r in rows),
        "tickets": [r[0] for r in rows],
    }


def by_grid(rows: list[Any], min_count: int) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for r in rows:
        groups[(r[3], r[1])].append(r)
    return [
        _spot(category, members[0][2], {"grid": grid}, members)
        for (grid, category), members in groups.items()
        if len(members) >= min_count
    ]


def _components(n: int, pairs: np.ndarray[Any, Any]) -> list[list[int]]:
    """Connected components of n points linked by `pairs` (2 x m indices)."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs.T:
        ra, rb = root(int(a)), root(int(b))
        if ra != rb:
            parent[ra] = rb
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[root(i)].append(i)
    return list(groups.values())


def by_distance(rows: list[Any], min_count: int, radius_m: float) -> list[dict[str, Any]]:
    # Imported here: the daemon's start stays free of numpy and shapely (about 20 MiB)
    # until someone asks for clusters (tests/test_import_cost.py).
    import numpy as np
    import shapely

    spots: list[dict[str, Any]] = []
    per_category: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        per_category[r[1]].append(r)
    for category, members in per_category.items():
        if len(members) < min_count:
            continue
        kx, ky = metres_per_degree(sum(r[5] for r in members) / len(members))
        xy = np.array([(r[4] * kx, r[5] * ky) for r in members])
        points = shapely.points(xy)
        pairs = shapely.STRtree(points).query(points, predicate="dwithin", distance=radius_m)
        for part in _components(len(members), pairs):
            if len(part) < min_count:
                continue
            cx, cy = xy[part].mean(axis=0)
            spread = float(np.hypot(*(xy[part] - (cx, cy)).T).max())
            place = {
                "lon": round(cx / kx, 7),
                "lat": round(cy / ky, 7),
                "radius_m": round(spread, 1),
                "grids": sorted({members[i][3] for i in part if members[i][3]}),
            }
            spots.append(_spot(category, members[0][2], place, [members[i] for i in part]))
    return spots


def find(
    conn: sqlite3.Connection,
    bounds: tuple[float, float],
    rule: HotspotRule,
    category: str | None = None,
) -> list[dict[str, Any]]:
    """The hot spots among reports created in [start, end), most reports first."""
    if rule.by == "grid":
        spots = by_grid(_reports(conn, bounds, category, "t.grid IS NOT NULL"), rule.min_count)
    else:
        rows = _reports(conn, bounds, category, "t.lon IS NOT NULL AND t.lat IS NOT NULL")
        spots = by_distance(rows, rule.min_count, rule.radius_m)
    spots.sort(key=lambda s: (-s["count"], -s["last"], s["category"]))
    return spots
