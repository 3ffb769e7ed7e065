"""A test district, at Junliangcheng's scale or larger, in the files the CLI imports.

Junliangcheng street (Dongli district, Tianjin) has 108 basic grids (94 residential,
8 rural, 6 industrial-park), 1,568 buildings, 32,239 dwellings, 60,083 people and
741 legal entities: the default here. The grids are the cells of a jittered lattice
whose vertices neighbours share, so they tile with no gap and no overlap, and every
community, street and district is the exact union of its cells. Everything is
deterministic from `seed`. `--grids 10000`-style shapes make the bench's district.

Buildings carry only a point (their grid is found by the lookup on import), half the
organisations only an address (tied through the building there): the import's two
ways of tying a place to a grid are both exercised.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugins.grid.exporter import write_features
from plugins.grid.formats import id_number_check
from plugins.grid.rows import COLUMNS, HELPER_KINDS

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


@dataclass(frozen=True)
class Shape:
    streets: int = 1
    communities: int = 12  # per street
    grids: int = 9  # per community
    buildings: int = 1_568
    dwellings: int = 32_239
    residents: int = 60_083
    organisations: int = 741
    county: str = "120110"
    sequence_width: int = 2
    seed: int = 6
    cell_deg: float = 0.005  # about 430 m x 550 m at Tianjin's latitude

    @property
    def basic_grids(self) -> int:
        return self.streets * self.communities * self.grids


JUNLIANGCHENG = Shape()
TEN_THOUSAND = Shape(
    streets=10, communities=25, grids=40, buildings=0, dwellings=0, residents=0, organisations=0
)


def factor(n: int) -> tuple[int, int]:
    """rows, cols with rows * cols == n, as square as n allows."""
    rows = int(math.isqrt(n))
    while n % rows:
        rows -= 1
    return rows, n // rows


def grid_type(i: int, total: int) -> tuple[str, str | None]:
    """Junliangcheng's mix, 94 : 8 : 6, and at scale one exclusive grid in 97."""
    if total > 108 and i % 97 == 96:
        return "exclusive", ("school", "hospital")[i // 97 % 2]
    share = i % 108
    return ("residential" if share < 94 else "rural" if share < 102 else "park"), None


def id_number(county: str, i: int) -> str:
    born = dt.date(1940, 1, 1) + dt.timedelta(days=i // 999)
    first17 = f"{county}{born:%Y%m%d}{i % 999 + 1:03d}"
    return first17 + id_number_check(first17)


def generate(out: Path, shape: Shape = JUNLIANGCHENG) -> dict[str, int]:
    # shapely (numpy under it) only when generating: `gridhall run` registers this
    # module's CLI and must not pay for it.
    import shapely
    from shapely.geometry import Polygon, mapping

    out.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(shape.seed)
    sr, sc = factor(shape.streets)
    cr, cc = factor(shape.communities)
    gr, gc = factor(shape.grids)
    rows, cols = sr * cr * gr, sc * cc * gc
    d = shape.cell_deg
    x0, y0 = 117.38, 39.05
    vx = [
        [x0 + c * d + (rnd.uniform(-0.2, 0.2) * d) for c in range(cols + 1)]
        for _ in range(rows + 1)
    ]
    vy = [
        [y0 + r * d + (rnd.uniform(-0.2, 0.2) * d) for _ in range(cols + 1)]
        for r in range(rows + 1)
    ]

    def corner(r: int, c: int) -> tuple[float, float]:
        return round(vx[r][c], 7), round(vy[r][c], 7)

    w = shape.sequence_width
    cells: dict[str, Polygon] = {}
    centres: dict[str, tuple[int, int]] = {}
    for r in range(rows):
        for c in range(cols):
            street = (r // (cr * gr)) * sc + c // (cc * gc) + 1
            rr, cx = r % (cr * gr), c % (cc * gc)
            community = (rr // gr) * cc + cx // gc + 1
            seq = (rr % gr) * gc + cx % gc + 1
            code = f"{shape.county}{street:03d}{community:03d}{seq:0{w}d}"
            cells[code] = Polygon(
                [corner(r, c), corner(r, c + 1), corner(r + 1, c + 1), corner(r + 1, c)]
            )
            centres[code] = (r, c)
    features: list[tuple[dict[str, Any], Any]] = []

    def union(prefix: str) -> Any:
        return mapping(shapely.union_all([p for k, p in cells.items() if k.startswith(prefix)]))

    features.append(({"code": shape.county, "name": "东丽区"}, union(shape.county)))
    for s in range(1, shape.streets + 1):
        scode = f"{shape.county}{s:03d}"
        name = "军粮城街道" if s == 1 else f"第{s}街道"
        features.append(({"code": scode, "name": name}, union(scode)))
        for m in range(1, shape.communities + 1):
            features.append(
                ({"code": f"{scode}{m:03d}", "name": f"{name}第{m}社区"}, union(f"{scode}{m:03d}"))
            )
    codes = sorted(cells)
    for i, code in enumerate(codes):
        kind, unit = grid_type(i, len(codes))
        props = {
            "code": code,
            "name": f"第{code[9:12]}社区第{code[12:]}网格",
            "type": kind,
            "unit": unit,
        }
        features.append((props, mapping(cells[code])))
    with (out / "grids.geojson").open("w", encoding="utf-8") as f:
        write_features(f, features)
    counts = {"grids": len(features)}
    if shape.buildings == 0:
        return counts

    def point_in(code: str) -> tuple[float, float]:
        """A point well inside the cell: bilinear in its middle, away from edges."""
        r, c = centres[code]
        u, v = rnd.uniform(0.3, 0.7), rnd.uniform(0.3, 0.7)
        pts = [corner(r, c), corner(r, c + 1), corner(r + 1, c + 1), corner(r + 1, c)]
        x = (1 - v) * ((1 - u) * pts[0][0] + u * pts[1][0]) + v * (
            (1 - u) * pts[3][0] + u * pts[2][0]
        )
        y = (1 - v) * ((1 - u) * pts[0][1] + u * pts[1][1]) + v * (
            (1 - u) * pts[3][1] + u * pts[2][1]
        )
        return round(x, 7), round(y, 7)

    lived = [
        c for i, c in enumerate(codes) if grid_type(i, len(codes))[0] in ("residential", "rural")
    ]
    buildings = []
    for i in range(shape.buildings):
        grid = lived[i % len(lived)]
        lon, lat = point_in(grid)
        buildings.append((f"B{i + 1:05d}", f"{grid[9:12]}社区{i + 1}号楼", lon, lat, ""))
    dwellings = [
        (f"{b[0]}-{i // len(buildings) + 1:03d}", b[0], f"{b[1]}{i // len(buildings) + 1}室")
        for i in range(shape.dwellings)
        for b in (buildings[i % len(buildings)],)
    ]
    residents = [
        (
            f"R{i + 1:06d}",
            rnd.choice(SURNAMES) + rnd.choice(GIVEN) + rnd.choice(GIVEN),
            id_number(shape.county, i),
            f"13{i:09d}",
            dwellings[i % len(dwellings)][0],
        )
        for i in range(shape.residents)
    ]
    organisations: list[tuple[Any, ...]] = []
    for i in range(shape.organisations):
        credit = f"9112011{i:011d}"[:18]
        if i % 2 == 0:  # tied by the address of a building
            organisations.append(
                (
                    f"O{i + 1:04d}",
                    f"单位{i + 1}",
                    credit,
                    buildings[i % len(buildings)][1],
                    "",
                    "",
                    "",
                )
            )
        else:  # tied by its point
            lon, lat = point_in(codes[i % len(codes)])
            organisations.append(
                (f"O{i + 1:04d}", f"单位{i + 1}", credit, f"工业路{i + 1}号", lon, lat, "")
            )
    members = []
    for i, grid in enumerate(codes):
        members.append(
            (
                f"M{grid}",
                f"网格员{i + 1}",
                id_number("120111", i),
                f"139{i:08d}",
                grid,
                "member",
                "",
                "2023-01-01",
            )
        )
        members.append(
            (f"C{grid}", f"网格长{i + 1}", "", f"137{i:08d}", grid, "chief", "", "2023-01-01")
        )
        kind = HELPER_KINDS[i % len(HELPER_KINDS)]
        members.append((f"H{grid}", f"{kind}{i + 1}", "", "", grid, "helper", kind, "2023-01-01"))
    for name, data in (
        ("members", members),
        ("buildings", buildings),
        ("dwellings", dwellings),
        ("residents", residents),
        ("organisations", organisations),
    ):
        with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS[name])
            writer.writerows(data)
        counts[name] = len(data)
    return counts
