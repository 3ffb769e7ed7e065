"""Hot spots (problem boxes) through the API: one category at one place at least N
times in D days, by grid and by distance, each threshold met and missed by one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from plugins.tickets.synthetic import Fate
from plugins.tickets.workflow import DISPATCHED, DUPLICATE
from tests.measures_support import add, get, local, measured
from tests.support import Running

DAY = 86400
G1, G2, G3 = "12011000100101", "12011000100102", "12011000100103"
EARTH_M = 6_371_008.8  # mean radius: an independent check of the plugin's projection


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance between (lon, lat) points."""
    (lon1, lat1), (lon2, lat2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_M * math.asin(math.sqrt(h))


def north(p: tuple[float, float], m: float) -> tuple[float, float]:
    return p[0], p[1] + m / (EARTH_M * math.pi / 180)


def east(p: tuple[float, float], m: float) -> tuple[float, float]:
    return p[0] + m / (EARTH_M * math.pi / 180 * math.cos(math.radians(p[1]))), p[1]


P0 = (117.0, 39.0)
P1, P2 = north(P0, 90), north(P0, 180)  # a chain of 90 m links
Q0 = (117.01, 39.0)
Q1 = east(Q0, 90)
Q2 = east(Q1, 110)  # one link too long for 100 m


def reports() -> list[Fate]:
    at = {"state": DISPATCHED}
    rows = [
        # litter in G1: 3 in the 30 days to 31 March (the last an hour before its end)
        ("city.litter", G1, None, local(2026, 3, 5)),
        ("city.litter", G1, None, local(2026, 3, 20)),
        ("city.litter", G1, None, local(2026, 3, 31, 23)),
        # litter in G2: twice only
        ("city.litter", G2, None, local(2026, 3, 10)),
        ("city.litter", G2, None, local(2026, 3, 11)),
        # stalls in G1: the first a minute before the 30 days began
        ("city.stall", G1, None, local(2026, 3, 1, 23, 59)),
        ("city.stall", G1, None, local(2026, 3, 15)),
        ("city.stall", G1, None, local(2026, 3, 16)),
        # litter in G3: two reports and a duplicate of one of them
        ("city.litter", G3, None, local(2026, 3, 12)),
        ("city.litter", G3, None, local(2026, 3, 13)),
        ("city.litter", G3, DUPLICATE, local(2026, 3, 13, 1)),
    ]
    fates = [
        Fate(i + 1, t, t + 5 * DAY, state or DISPATCHED, category=cat, grid=grid)
        for i, (cat, grid, state, t) in enumerate(rows)
    ]
    points = [P0, P1, P2, Q0, Q1, Q2]
    for k, (lon, lat) in enumerate(points):
        t = local(2026, 3, 20 + k)
        fates.append(Fate(100 + k, t, t + DAY, category="safety.fire", lon=lon, lat=lat, **at))
    return fates


@pytest.fixture
async def hall(ticket_hall: Running) -> Running:
    await add(ticket_hall, reports())
    return ticket_hall


def places(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["category"], s["place"].get("grid", "")): s for s in body["spots"]}


async def test_by_grid(hall: Running) -> None:
    body = await get(hall, "/api/v1/tickets/hotspots?until=2026-03-31")
    assert body["window"]["first"] == "2026-03-02" and body["rule"]["min_count"] == 3
    spots = places(body)
    assert list(spots) == [("city.litter", G1)]
    spot = spots[("city.litter", G1)]
    assert spot["count"] == 3 and spot["tickets"] == [1, 2, 3]
    assert spot["category_name"] == "暴露垃圾"
    assert (spot["first"], spot["last"]) == (local(2026, 3, 5), local(2026, 3, 31, 23))
    # One more day back takes in the stall a minute before; one fewer report in G2.
    longer = places(await get(hall, "/api/v1/tickets/hotspots?until=2026-03-31&days=31"))
    assert ("city.stall", G1) in longer
    fewer = places(await get(hall, "/api/v1/tickets/hotspots?until=2026-03-31&min_count=2"))
    assert set(fewer) == {
        ("city.litter", G1),
        ("city.litter", G2),
        ("city.litter", G3),
        ("city.stall", G1),  # its two inside the 30 days
    }
    assert fewer[("city.litter", G3)]["tickets"] == [9, 10]  # not the duplicate
    # The window ends with `until`: to 30 March, the last litter report is not in yet
    # and the window reaches back to the stall of 1 March.
    earlier = places(await get(hall, "/api/v1/tickets/hotspots?until=2026-03-30"))
    assert list(earlier) == [("city.stall", G1)]


async def test_by_distance(hall: Running) -> None:
    assert metres(P0, P1) < 100 and metres(P1, P2) < 100 and metres(P0, P2) > 100
    assert metres(Q0, Q1) < 100 < metres(Q1, Q2) < 120
    body = await get(hall, "/api/v1/tickets/hotspots?until=2026-03-31&by=distance")
    [spot] = body["spots"]
    assert spot["category"] == "safety.fire" and spot["tickets"] == [100, 101, 102]
    assert metres((spot["place"]["lon"], spot["place"]["lat"]), P1) < 1  # the middle one
    assert 85 < spot["place"]["radius_m"] < 95
    wider = await get(hall, "/api/v1/tickets/hotspots?until=2026-03-31&by=distance&radius_m=120")
    assert sorted(s["tickets"] for s in wider["spots"]) == [[100, 101, 102], [103, 104, 105]]


async def test_the_config_sets_the_rule(tmp_path: Path) -> None:
    extra = "[tickets.measures.hotspots]\nmin_count = 2\ndays = 7\n"
    async with measured(tmp_path, extra) as hall:
        await add(hall, reports())
        body = await get(hall, "/api/v1/tickets/hotspots?until=2026-03-16&category=city.stall")
        assert body["rule"]["days"] == 7
        assert [s["tickets"] for s in body["spots"]] == [[7, 8]]


@pytest.mark.parametrize(
    "query", ["days=0", "min_count=1", "by=street", "radius_m=0", "until=2026-02-30"]
)
async def test_bad_rules_are_422(hall: Running, query: str) -> None:
    r = await hall.client.get(f"/api/v1/tickets/hotspots?{query}", headers=hall.as_role("viewer"))
    assert r.status_code == 422
    assert query.split("=")[0] in r.json()["error"]["message"]
