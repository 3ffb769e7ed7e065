"""Grid codes, the point lookup on edges and corners, and the tiling checks."""

from __future__ import annotations

import random

import pytest
import shapely
from shapely.geometry import Point, shape

from plugins.grid import codes
from plugins.grid.formats import id_number_problem, mask_id_number, mask_phone
from plugins.grid.generate import Shape, generate
from plugins.grid.geometry import GridIndex, Node, area_m2, check_tiling
from tests.grid_support import COMMUNITY, at, box, two_by_two

G1, G2, G3, G4 = (COMMUNITY + s for s in ("01", "02", "03", "04"))


# -- codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code,width,level",
    [
        ("120110", 2, "district"),
        ("120110001", 2, "street"),
        ("120110001001", 2, "community"),
        ("12011000100101", 2, "grid"),
        ("120110001001001", 3, "grid"),  # Beijing's 3-digit sequence
    ],
)
def test_a_code_says_its_level(code: str, width: int, level: str) -> None:
    assert codes.problems(code, width, depth=4) == []
    assert codes.level_of(code, width) == level


def test_a_code_says_its_parent() -> None:
    assert codes.parent_of("12011000100101", 2) == "120110001001"
    assert codes.parent_of("120110001001", 2) == "120110001"
    assert codes.parent_of("120110", 2) is None
    assert codes.street_kind("120110105") == "town"


@pytest.mark.parametrize(
    "code,why",
    [
        ("1201100010010A", "digits only"),
        ("1201100010011", "has 13 digits"),
        ("99011000100101", "not a GB/T 2260 province"),
        ("12011030000101", "not in 001-299"),
        ("12011000100000", "the community itself"),
        ("12011000100001", "the street itself"),
        ("12011000100101001", "has 17 digits"),  # a compound, but depth is 4
    ],
)
def test_bad_codes_are_refused(code: str, why: str) -> None:
    assert why in " ".join(codes.problems(code, 2, depth=4))


def test_depth_five_allows_compounds() -> None:
    assert codes.problems("12011000100101001", 2, depth=5) == []
    assert codes.level_of("12011000100101001", 2) == "compound"


def test_id_numbers_and_masks() -> None:
    assert id_number_problem("11010519491231002X") is None  # GB 11643's own example
    assert "check character" in (id_number_problem("110105194912310021") or "")
    assert mask_id_number("11010519491231002X") == "1101**********002X"
    assert mask_phone("13912345678") == "139****5678"


# -- lookup on edges and corners ------------------------------------------------------


@pytest.fixture(params=[0, 1, 2], ids=["sorted", "shuffled", "reversed"])
def index(request: pytest.FixtureRequest) -> GridIndex:
    """The four grids of two_by_two(), given in several orders: the rule must not
    depend on the order of the file."""
    grids = [
        (f["properties"]["code"], shape(f["geometry"]))
        for f in two_by_two()
        if f["properties"].get("type")
    ]
    if request.param == 1:
        random.Random(3).shuffle(grids)
    elif request.param == 2:
        grids.reverse()
    return GridIndex(grids)


@pytest.mark.parametrize(
    "point,grid",
    [
        ((0.5, 0.5), G1),  # inside
        ((1.5, 1.5), G4),
        ((1, 0.5), G1),  # edge 01|02 -> 01
        ((0.5, 1), G1),  # edge 01|03 -> 01
        ((1.5, 1), G2),  # edge 02|04 -> 02
        ((1, 1.5), G3),  # edge 03|04 -> 03
        ((1, 1), G1),  # the corner of all four -> 01
        ((2, 1), G2),  # outer edge, at a corner of 02 and 04 -> 02
        ((2, 1.5), G4),  # outer edge of 04 alone: still inside
        ((0, 0), G1),  # the district's own corner
        ((2, 2), G4),
        ((2.0001, 1.5), None),  # just outside
        ((-1, -1), None),
    ],
)
def test_edges_and_corners_go_to_the_smallest_code(
    index: GridIndex, point: tuple[float, float], grid: str | None
) -> None:
    assert index.lookup(*at(*point)) == grid


def test_holding_lists_every_grid_on_a_corner(index: GridIndex) -> None:
    assert index.holding(*at(1, 1)) == [G1, G2, G3, G4]
    assert index.holding(*at(1, 0.5)) == [G1, G2]


def test_the_rule_holds_on_a_generated_district(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Random points, vertices and edge midpoints of a jittered lattice: the index
    answers what a brute-force loop with the same rule answers."""
    import json

    generate(tmp_path, Shape(streets=1, communities=4, grids=9, buildings=0))
    doc = json.loads((tmp_path / "grids.geojson").read_text())
    grids = [
        (f["properties"]["code"], shape(f["geometry"]))
        for f in doc["features"]
        if "type" in f["properties"]
    ]
    index = GridIndex(grids)
    rnd = random.Random(5)
    minx, miny, maxx, maxy = shapely.union_all([g for _, g in grids]).bounds
    points = [(rnd.uniform(minx, maxx), rnd.uniform(miny, maxy)) for _ in range(500)]
    for _, g in grids:  # every vertex and every edge midpoint
        ring = list(g.exterior.coords)
        points += ring
        points += [
            ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in zip(ring, ring[1:], strict=False)
        ]
    for x, y in points:
        covering = sorted(code for code, g in grids if g.covers(Point(x, y)))
        assert index.lookup(x, y) == (covering[0] if covering else None), (x, y)


# -- tiling ----------------------------------------------------------------------------


def node(code: str, level: str, geometry: dict[str, object], parent: str | None) -> Node:
    return Node(code, parent, level, shape(geometry))


def test_a_good_tiling_has_no_problems() -> None:
    nodes = [
        node(
            f["properties"]["code"],
            codes.level_of(f["properties"]["code"], 2) or "",
            f["geometry"],
            codes.parent_of(f["properties"]["code"], 2),
        )
        for f in two_by_two()
    ]
    assert check_tiling(nodes, ["district", "street", "community"], 1.0) == []


def test_gaps_and_overlaps_are_named_with_their_area() -> None:
    c = COMMUNITY
    nodes = [
        node(c, "community", box(0, 0, 3, 1), None),
        node(c + "01", "grid", box(0, 0, 1.1, 1), c),  # overlaps 02 by 0.1 x 1
        node(c + "02", "grid", box(1, 0, 2, 1), c),
        node(c + "03", "grid", box(2.25, 0, 3, 1), c),  # leaves 0.25 x 1 uncovered
    ]
    problems = check_tiling(nodes, ["community"], 1.0)
    by_kind = {p.kind: p for p in problems}
    assert set(by_kind) == {"overlap", "gap"}, problems
    cell = area_m2(shape(box(0, 0, 1, 1)), 39.0)
    assert by_kind["overlap"].codes == (c + "01", c + "02")
    assert by_kind["overlap"].area_m2 == pytest.approx(0.1 * cell, rel=0.01)
    assert by_kind["gap"].codes == (c,)
    assert by_kind["gap"].area_m2 == pytest.approx(0.25 * cell, rel=0.01)
    assert "overlap between 12011000100101 and 12011000100102" in str(by_kind["overlap"])
    assert "m²" in str(by_kind["gap"])


def test_a_child_outside_its_parent_is_named() -> None:
    c = COMMUNITY
    nodes = [
        node(c, "community", box(0, 0, 1, 1), None),
        node(c + "01", "grid", box(0, 0, 1.5, 1), c),
    ]
    [problem] = check_tiling(nodes, ["community"], 1.0)
    assert problem.kind == "outside" and problem.codes == (c + "01", c)
