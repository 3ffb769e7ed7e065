"""The measures of tickets made and moved only through the API, end to end: reports
filed, driven register -> dispatch -> accept -> report -> verify -> evaluate, with one
rework, one reopen and one merge; /measures, /measures/ranking and /hotspots count
them as the definitions say (docs/tickets-measures.md), and the direct count from the
tickets agrees with the rollups the triggers kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon.clock import ManualClock
from tests.support import Running
from tests.ticket_support import (
    G1,
    import_district,
    local,
    report,
    step,
    tickets_at,
    tickets_config,
)

LOOP = [("register", "dispatcher"), ("dispatch", "dispatcher"), ("accept", "handler"),
        ("report", "handler")]  # fmt: skip


async def drive(hall: Running, ticket: int, *steps: tuple[str, str], **args: Any) -> None:
    for name, role in steps:
        r = await step(hall, ticket, name, role, **args.get(name, {}))
        assert r.status_code == 200, (ticket, name, r.text)


async def get(hall: Running, url: str, **params: Any) -> Any:
    r = await hall.client.get(url, params=params, headers=hall.as_role("viewer"))
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_loop_through_the_api_is_counted(tmp_path: Path) -> None:
    config = tickets_config(tmp_path)
    await import_district(tmp_path, config)
    clock = ManualClock(local("2026-01-05T09:00"))
    async with tickets_at(config, clock) as hall:
        ids = []
        for _ in range(4):
            r = await report(hall, category="city.litter")  # simple: due 11:00, in G1
            assert r.status_code == 201
            ids.append(r.json()["id"])
        slow = (await report(hall, category="city.parking")).json()["id"]  # due next week
        one, two, three, dup = ids
        await clock.move_to(local("2026-01-05T09:30"))
        verify = ("verify", "dispatcher")
        await drive(hall, one, *LOOP, verify)
        await drive(hall, two, *LOOP, ("rework", "dispatcher"), ("report", "handler"), verify,
                    rework={"reason": "还有垃圾"})  # fmt: skip
        await drive(
            hall, three, *LOOP, verify, ("reopen", "dispatcher"), reopen={"reason": "又有了"}
        )
        await drive(hall, dup, ("merge", "dispatcher"), merge={"into": one})
        await drive(hall, slow, ("register", "dispatcher"), ("dispatch", "dispatcher"))
        await clock.move_to(local("2026-01-05T10:00"))
        await drive(hall, one, ("evaluate", "dispatcher"), evaluate={"satisfaction": "satisfied"})
        await drive(hall, two, ("evaluate", "dispatcher"), evaluate={"satisfaction": "basic"})

        day = {"day": "2026-01-05"}
        m = await get(hall, "/api/v1/tickets/measures", **day)
        district = m["district"]["counts"]
        # Registered that day: all but the merged one. Due that day: the three litters
        # (the reopened one's new deadline is 11:30), not the duplicate, not the slow one.
        assert district == {
            "registered": 4,
            "due": 3,
            "responded": 3,
            "disposed": 2,  # the reopened one is open again
            "closed": 2,
            "on_time": 2,
            "reworks": 1,
            "reopens": 1,
            "evaluated": 2,
            "satisfied": 1,
            "basic": 1,
            "unsatisfied": 0,
        }
        rates = m["district"]["rates"]
        assert rates["closure"] == {"percent": 66.67, "numerator": 2, "denominator": 3, "of": "due"}
        assert rates["satisfaction"]["percent"] == 100.0  # basic counts as satisfied
        units = {(dim, u["key"]): u["counts"] for dim in ("department", "member", "street")
                 for u in m[dim]}  # fmt: skip
        assert units[("department", "sanitation")]["due"] == 3
        assert units[("department", "police")]["registered"] == 1
        assert units[("member", "M1")]["reworks"] == 1
        direct = await get(hall, "/api/v1/tickets/measures", direct="true", **day)
        assert direct["source"] == "direct" and m["source"] == "rollup"
        assert {k: v for k, v in direct.items() if k != "source"} == {
            k: v for k, v in m.items() if k != "source"
        }

        ranked = await get(hall, "/api/v1/tickets/measures/ranking", by="department", **day)
        sanitation = next(u for u in ranked["units"] if u["key"] == "sanitation")
        assert (sanitation["due"], sanitation["reworks"], sanitation["rank"]) == (3, 1, None)
        assert sanitation["reason"] == "fewer than 5 tickets due"

        spots = await get(hall, "/api/v1/tickets/hotspots", until="2026-01-05")
        (spot,) = spots["spots"]
        assert (spot["category"], spot["place"], spot["count"]) == ("city.litter", {"grid": G1}, 3)
        assert sorted(spot["tickets"]) == [one, two, three]  # the duplicate is in `one`
