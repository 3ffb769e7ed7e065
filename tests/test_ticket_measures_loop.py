"""The measures over tickets the real ticket core made: reports filed and driven round
the loop through the ticket API (with a rework, a reopen, a merge, an invalid report, a
late close and a slow response), on a clock moved by hand, then counted through
/measures, /measures/ranking and /hotspots as docs/tickets-measures.md defines, the
rollup checked against the direct query.

tests/test_ticket_measures.py checks the definitions on rows written straight to the
store; this checks that the core leaves its rows as the measures read them (first
dispatch and accept kept, `on_time` set at close and cleared by a reopen, deadlines
moved by a reopen, merges and invalid reports out of the due cohort).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.clock import ManualClock
from tests.support import Running
from tests.ticket_support import (
    G1,
    G2,
    import_district,
    local,
    report,
    tickets_at,
    tickets_config,
)
from tests.timebank_support import transition

MONDAY = "2026-01-05T09:00"  # a working Monday: a simple case is due at 11:00
LOOP = ("register", "dispatch", "accept", "report")


@pytest.fixture
async def hall(tmp_path: Path) -> AsyncIterator[Running]:
    config = tickets_config(tmp_path)
    await import_district(tmp_path, config)
    async with tickets_at(config, ManualClock(local(MONDAY))) as h:
        yield h


async def filed(hall: Running, **fields: Any) -> int:
    r = await report(hall, **fields)  # city.litter at a point of G1 unless told
    assert r.status_code == 201, r.text
    ticket: int = r.json()["id"]
    return ticket


async def walk(hall: Running, ticket: int, *steps: str | tuple[str, dict[str, Any]]) -> None:
    for s in steps:
        name, args = (s, {}) if isinstance(s, str) else s
        await transition(hall, ticket, name, **args)


async def get(hall: Running, url: str) -> Any:
    r = await hall.client.get(url, headers=hall.as_role("viewer"))
    assert r.status_code == 200, (url, r.text)
    return r.json()


def counts(unit: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in unit["counts"].items() if v}


async def run_the_month(hall: Running) -> dict[str, int]:
    """January's tickets, each driven its own way; their ids by name."""
    t = {name: await filed(hall) for name in ("on_time", "late", "reopened", "dup", "slow")}
    t["invalid"] = await filed(hall)
    t["rework"] = await filed(hall, category="city.parking")  # coordination: police
    t["g2"] = await filed(hall, grid=G2, lon=None, lat=None)  # member M2

    # Monday 09:00: everything that happens at once.
    await walk(hall, t["on_time"], *LOOP, "verify", ("evaluate", {"satisfaction": "satisfied"}))
    await walk(
        hall,
        t["rework"],
        *LOOP,
        ("rework", {"reason": "the cars are still there"}),
        "report",
        "verify",
        ("evaluate", {"satisfaction": "basic"}),
    )
    await walk(hall, t["reopened"], *LOOP, "verify")
    await walk(hall, t["dup"], ("merge", {"into": t["on_time"]}))
    await walk(hall, t["slow"], "register", "dispatch")
    await walk(hall, t["invalid"], "register", ("invalidate", {"reason": "staged photo"}))
    await walk(hall, t["late"], *LOOP)
    await walk(hall, t["g2"], *LOOP, "verify")
    # Past the 11:00 deadline: closed late, and its reporter unhappy.
    await hall.host.clock.move_to(local("2026-01-05T11:30"))
    await walk(hall, t["late"], "verify", ("evaluate", {"satisfaction": "unsatisfied"}))
    # Tuesday: sent to another handler at 09:30 and accepted at 10:00, 25 hours after
    # its first dispatch: too slow to count as a response.
    await hall.host.clock.move_to(local("2026-01-06T09:30"))
    await walk(hall, t["slow"], ("dispatch", {"handler": "M2"}))
    await hall.host.clock.move_to(local("2026-01-06T10:00"))
    await walk(hall, t["slow"], "accept")
    # Monday's close on time reopened: open again, due two hours from now (Tuesday).
    await walk(hall, t["reopened"], ("reopen", {"reason": "back again"}))
    return t


async def test_the_loop_is_counted_as_the_measures_define(hall: Running) -> None:
    await run_the_month(hall)
    month = await get(hall, "/api/v1/tickets/measures?month=2026-01")
    assert month["source"] == "rollup"
    district = month["district"]
    # Registered: all but the duplicate (merged before registration). Due: all but
    # the duplicate and the invalid report. The reopened one is due again (11:00) and
    # open; the slow one is handling; the rest closed, one late, one after a rework.
    assert counts(district) == {
        "registered": 7,
        "due": 6,
        "responded": 5,
        "disposed": 4,
        "closed": 4,
        "on_time": 3,
        "reworks": 1,
        "reopens": 1,
        "evaluated": 3,
        "satisfied": 1,
        "basic": 1,
        "unsatisfied": 1,
    }
    rates = {
        k: (r["percent"], r["numerator"], r["denominator"]) for k, r in district["rates"].items()
    }
    assert rates == {
        "response": (83.33, 5, 6),
        "disposal": (66.67, 4, 6),
        "closure": (66.67, 4, 6),
        "on_time": (50.0, 3, 6),
        "satisfaction": (66.67, 2, 3),  # basic counts as satisfied
    }
    departments = {u["key"]: counts(u) for u in month["department"]}
    assert departments["police"] == {
        "registered": 1, "due": 1, "responded": 1, "disposed": 1, "closed": 1,
        "on_time": 1, "reworks": 1, "evaluated": 1, "basic": 1,
    }  # fmt: skip
    assert departments["sanitation"]["due"] == 5
    members = {u["key"]: u["counts"]["due"] for u in month["member"]}
    assert members == {"M1": 5, "M2": 1}
    assert [(u["key"], u["counts"]["due"]) for u in month["street"]] == [(G1[:9], 6)]

    # The rollup the triggers kept answers exactly as the tickets counted directly.
    direct = await get(hall, "/api/v1/tickets/measures?month=2026-01&direct=true")
    assert direct["source"] == "direct"
    assert {**direct, "source": "rollup"} == month
    # Monday alone: the coordination case is due next week, the reopened one Tuesday.
    for day, due in (("2026-01-05", 4), ("2026-01-06", 1)):
        one = await get(hall, f"/api/v1/tickets/measures?day={day}")
        assert one["district"]["counts"]["due"] == due
        direct = await get(hall, f"/api/v1/tickets/measures?day={day}&direct=true")
        assert {**direct, "source": "rollup"} == one


async def test_ranking_and_hot_spots_of_the_loop(hall: Running) -> None:
    t = await run_the_month(hall)
    ranking = await get(hall, "/api/v1/tickets/measures/ranking?month=2026-01&by=department")
    units = {u["key"]: u for u in ranking["units"]}
    sanitation = units["sanitation"]
    # Due 5 (min_due): response 4/5, disposal 3/5, on time 2/5, satisfaction 1/2.
    assert (sanitation["due"], sanitation["reworks"]) == (5, 0)
    assert sanitation["score"] == pytest.approx(0.2 * 80 + 0.2 * 60 + 0.3 * 40 + 0.3 * 50)
    assert (sanitation["class"], sanitation["rank"]) == ("govern", 1)
    assert units["police"]["rank"] is None and units["police"]["reason"]
    assert units["police"]["reworks"] == 1  # counted against the handler's department

    # Litter keeps coming back to G1: four reports there (the duplicate is counted in
    # the ticket it was merged into, the invalid report not at all), one in G2. The
    # window ends today on the host's clock (Tuesday 2026-01-06).
    spots = await get(hall, "/api/v1/tickets/hotspots")
    assert spots["window"]["last"] == "2026-01-06"
    [spot] = spots["spots"]
    assert (spot["category"], spot["place"], spot["count"]) == ("city.litter", {"grid": G1}, 4)
    assert sorted(spot["tickets"]) == sorted([t["on_time"], t["late"], t["reopened"], t["slow"]])
    later = await get(hall, "/api/v1/tickets/hotspots?until=2026-02-10")  # January gone
    assert later["spots"] == []
    await hall.host.clock.advance(dt.timedelta(days=40))
    assert (await get(hall, "/api/v1/tickets/hotspots"))["spots"] == []
