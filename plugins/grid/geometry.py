"""Boundaries: the point lookup and the tiling checks.

Boundaries are GeoJSON (RFC 7946: longitude, latitude in WGS 84). Areas in reports
are in square metres on a local equirectangular projection around the district,
which is off by well under 1% at a district's size: good enough to tell a sliver
from a missing street.

The lookup rule for a point on a boundary (documented in docs/grid.md): a point
belongs to every basic grid whose *closed* polygon holds it, and of those the one
with the smallest code wins. So a point on an edge shared by 01 and 02 is in 01, a
corner shared by four grids goes to the smallest of the four, and a point on the
district's outer edge is still inside. The rule is total and needs no tolerance,
and it is the same answer however the polygons were ordered in the file.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

METRES_PER_DEGREE_LAT = 110_574.0
METRES_PER_DEGREE_LON_AT_EQUATOR = 111_320.0


def polygon_from_geojson(geometry: object) -> BaseGeometry:
    """A (Multi)Polygon from a GeoJSON geometry object; ValueError if it is not one."""
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise ValueError("geometry must be a GeoJSON Polygon or MultiPolygon")
    try:
        geom = shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"geometry is malformed: {exc}") from exc
    if geom.is_empty:
        raise ValueError("geometry is empty")
    if not geom.is_valid:
        raise ValueError(f"geometry is invalid: {shapely.is_valid_reason(geom)}")
    return geom


def area_m2(geom: BaseGeometry, lat0: float) -> float:
    """Area in square metres, projected around latitude `lat0`."""
    kx = METRES_PER_DEGREE_LON_AT_EQUATOR * math.cos(math.radians(lat0))
    return float(geom.area) * kx * METRES_PER_DEGREE_LAT


class GridIndex:
    """The basic grids in an STRtree: which grid holds a point, without a loop."""

    def __init__(self, grids: Sequence[tuple[str, BaseGeometry]]) -> None:
        # Sorted by code, so the smallest index among the hits is the smallest code.
        ordered = sorted(grids, key=lambda g: g[0])
        self.codes = [code for code, _ in ordered]
        self.geoms = np.array([geom for _, geom in ordered], dtype=object)
        shapely.prepare(self.geoms)
        self.tree = shapely.STRtree(self.geoms)

    def __len__(self) -> int:
        return len(self.codes)

    def lookup(self, lon: float, lat: float) -> str | None:
        """The grid that holds the point, by the smallest-code rule; None outside."""
        hits = self.tree.query(Point(lon, lat), predicate="intersects")
        if len(hits) == 0:
            return None
        return self.codes[int(hits.min())]

    def holding(self, lon: float, lat: float) -> list[str]:
        """Every grid whose closed polygon holds the point, smallest code first."""
        hits = self.tree.query(Point(lon, lat), predicate="intersects")
        return [self.codes[int(i)] for i in sorted(hits)]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the tiling, named so a person can find it on the map."""

    kind: str  # "gap", "overlap", "outside", "orphan"
    codes: tuple[str, ...]
    area_m2: float
    lon: float
    lat: float

    def __str__(self) -> str:
        where = f"near ({self.lon:.6f}, {self.lat:.6f})"
        area = f"{self.area_m2:,.0f} m²"
        if self.kind == "gap":
            return f"gap in {self.codes[0]}: {area} not covered by its children, {where}"
        if self.kind == "overlap":
            return f"overlap between {self.codes[0]} and {self.codes[1]}: {area}, {where}"
        if self.kind == "outside":
            return f"{self.codes[0]} reaches outside its parent {self.codes[1]}: {area}, {where}"
        return f"{self.codes[0]} has no children: nothing covers it"


@dataclass(frozen=True)
class Node:
    code: str
    parent: str | None
    level: str
    geom: BaseGeometry


def _parts(geom: BaseGeometry) -> Iterable[BaseGeometry]:
    parts: Iterable[BaseGeometry] = getattr(geom, "geoms", [geom])
    return parts


def check_tiling(
    nodes: Sequence[Node], covering_levels: Iterable[str], tolerance_m2: float
) -> list[Problem]:
    """Siblings must not overlap, children must stay inside their parent, and the
    children of a node of a `covering_levels` level must cover it. Each gap, overlap
    and spill larger than the tolerance is one Problem, with its area."""
    if not nodes:
        return []
    lat0 = float(np.mean([n.geom.centroid.y for n in nodes[:100]]))
    by_code = {n.code: n for n in nodes}
    children: dict[str, list[Node]] = defaultdict(list)
    for n in nodes:
        if n.parent is not None and n.parent in by_code:
            children[n.parent].append(n)
    covering = set(covering_levels)
    problems: list[Problem] = []

    def add(kind: str, codes: tuple[str, ...], geom: BaseGeometry) -> None:
        for part in _parts(geom):
            area = area_m2(part, lat0)
            if area > tolerance_m2:
                p = part.representative_point()
                problems.append(Problem(kind, codes, area, p.x, p.y))

    for parent_code in sorted(children):
        parent, kids = by_code[parent_code], sorted(children[parent_code], key=lambda n: n.code)
        geoms = np.array([k.geom for k in kids], dtype=object)
        tree = shapely.STRtree(geoms)
        left, right = tree.query(geoms, predicate="intersects")
        for i, j in zip(left.tolist(), right.tolist(), strict=True):
            if i < j:
                shared = shapely.intersection(geoms[i], geoms[j])
                add("overlap", (kids[i].code, kids[j].code), shared)
        union = shapely.union_all(geoms)
        for kid in kids:
            add("outside", (kid.code, parent_code), shapely.difference(kid.geom, parent.geom))
        if parent.level in covering:
            add("gap", (parent_code,), shapely.difference(parent.geom, union))
    for n in nodes:
        if n.level in covering and n.code not in children:
            problems.append(Problem("childless", (n.code,), 0.0, 0.0, 0.0))
    return problems
