"""Point lookups over 10,000 grids: the grid plugin's STRtree against a brute-force
shapely loop over the same polygons, in the same run.

The district comes from plugins/grid/generate.py (10 streets x 25 communities x 40
grids, a jittered lattice: every grid a quadrilateral, neighbours sharing vertices).
Points are uniform over the district's bounding box plus every 50th grid's vertices
(edges and corners, where the rule matters). Both sides answer with the same rule,
the smallest code among the grids whose closed polygon holds the point: the loop
walks the grids in code order over prepared polygons and stops at the first that
covers the point, which is the best a loop can do. The answers are compared point by
point before any figure is printed.

Printed: lookups per second and p99 latency for each, and the ratio. Each lookup is
timed on its own with perf_counter_ns, so the figures include the call overhead a
caller pays. The loop gets fewer points (it is slow); rates are per lookup.

Run: .venv/bin/python bench/bench_grid.py [--points N] [--brute-points N]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import shapely
from shapely.geometry import Point, shape

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import record  # noqa: E402

from plugins.grid.generate import TEN_THOUSAND, generate  # noqa: E402
from plugins.grid.geometry import GridIndex  # noqa: E402


def p99(samples_ns: list[int]) -> float:
    return statistics.quantiles(samples_ns, n=100)[98] / 1000  # microseconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=50_000)
    ap.add_argument("--brute-points", type=int, default=500)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate(Path(tmp), TEN_THOUSAND)
        doc = json.loads((Path(tmp) / "grids.geojson").read_text())
        generated = time.perf_counter() - t0
    grids = sorted(
        (f["properties"]["code"], shape(f["geometry"]))
        for f in doc["features"]
        if "type" in f["properties"]
    )
    t0 = time.perf_counter()
    index = GridIndex(grids)
    built = time.perf_counter() - t0

    rnd = random.Random(6)
    minx, miny, maxx, maxy = shapely.total_bounds([g for _, g in grids])
    points = [(rnd.uniform(minx, maxx), rnd.uniform(miny, maxy)) for _ in range(args.points)]
    points += [xy for _, g in grids[::50] for xy in g.exterior.coords[:-1]]
    rnd.shuffle(points)

    geoms = [g for _, g in grids]
    codes: list[str] = [str(c) for c, _ in grids]
    for g in geoms:
        shapely.prepare(g)

    def brute(lon: float, lat: float) -> str | None:
        p = Point(lon, lat)
        for code, g in zip(codes, geoms, strict=True):
            if bool(g.covers(p)):
                return code
        return None

    def timed(
        fn: Callable[[float, float], str | None], pts: list[tuple[float, float]]
    ) -> tuple[list[str | None], list[int]]:
        out: list[str | None] = []
        samples: list[int] = []
        for lon, lat in pts:
            t = time.perf_counter_ns()
            out.append(fn(lon, lat))
            samples.append(time.perf_counter_ns() - t)
        return out, samples

    brute_pts = points[: args.brute_points]
    tree_answers, tree_ns = timed(index.lookup, points)
    brute_answers, brute_ns = timed(brute, brute_pts)
    wrong = sum(a != b for a, b in zip(tree_answers, brute_answers, strict=False))
    if wrong:
        print(f"FAIL: the index and the loop disagree on {wrong} point(s)", file=sys.stderr)
        return 1

    tree_rate = len(tree_ns) / (sum(tree_ns) / 1e9)
    brute_rate = len(brute_ns) / (sum(brute_ns) / 1e9)
    held = sum(a is not None for a in tree_answers)
    print(
        f"bench_grid: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"shapely {shapely.__version__}, {platform.machine()}"
    )
    print(
        f"district: {len(grids):,} basic grids (generated in {generated:.1f} s), "
        f"STRtree built in {built * 1000:.0f} ms"
    )
    print(
        f"points: {len(points):,} for the index ({held:,} inside a grid), "
        f"the first {len(brute_pts):,} for the loop; answers agree"
    )
    print(f"{'':18}{'lookups/s':>12}{'p50 µs':>10}{'p99 µs':>10}")
    for name, rate, ns in (
        ("STRtree", tree_rate, tree_ns),
        ("brute-force loop", brute_rate, brute_ns),
    ):
        print(f"{name:18}{rate:>12,.0f}{statistics.median(ns) / 1000:>10.1f}{p99(ns):>10.1f}")
    print(
        f"ratio: the STRtree answers {tree_rate / brute_rate:,.0f}x as many lookups per "
        f"second; p99 {p99(brute_ns) / p99(tree_ns):,.0f}x lower"
    )
    base = "a brute-force loop over the same prepared polygons, same edge rule"
    record(6, f"point lookups, {len(grids):,} grids", tree_rate, "lookups/s", brute_rate, base=base)
    record(6, "point lookup p99", p99(tree_ns), "us", p99(brute_ns), base=base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
