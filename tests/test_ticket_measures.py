"""The measures through the API: DOMAIN.md's figures, the cohorts cut at local
midnight, units with counts beside their rates, the rollup against the direct query
(inserts, transitions, moves, deletes, a rollback, a restart with new settings), a
zone with daylight saving, and bad periods."""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from plugins.tickets import rollup
from plugins.tickets.synthetic import Fate
from plugins.tickets.workflow import (
    CLOSED,
    DISPATCHED,
    DUPLICATE,
    EVALUATED,
    HANDLING,
    INVALID,
    NOT_OURS,
    REGISTERED,
    REPORTED,
)
from tests.measures_support import DEPARTMENTS, add, config, get, local, measured, units
from tests.support import running

HOUR, DAY = 3600, 86400
DEPTS = list(DEPARTMENTS)


def domain_month() -> list[Fate]:
    """March 2026 in Shanghai: 996 registered, 972 due, 911 closed, 737 on time."""
    fates: list[Fate] = []
    n = 0

    def fate(created: float, due: float, state: str, **kw: Any) -> None:
        nonlocal n
        n += 1
        dept = kw.pop("department", DEPTS[n % 3])
        fates.append(
            Fate(
                n,
                created,
                due,
                state,
                department=dept,
                street=f"s{n % 2}",
                member=f"m{n % 4}",
                **kw,
            )
        )

    # 970 registered and due in March: 737 closed on time, 174 late, 59 still open.
    for i in range(970):
        created = local(2026, 3, 1, 8) + i * 1800
        due = created + 3 * DAY
        slow = {"response_s": 2 * DAY} if i % 25 == 0 else {}  # 39 answered after 24 h
        if i < 737:
            evaluated = i < 300
            level = "satisfied" if i < 200 else "basic" if i < 260 else "unsatisfied"
            fate(
                created,
                due,
                EVALUATED if evaluated else CLOSED,
                closed_at=due - HOUR,
                satisfaction=level if evaluated else None,
                **slow,
            )
        elif i < 911:
            fate(created, due, CLOSED, closed_at=due + HOUR, reworks=1, **slow)
        else:
            fate(created, due, (DISPATCHED, HANDLING, REPORTED)[i % 3], **slow)
    # Registered the last second of February, due the first of March: due only.
    fate(local(2026, 2, 28, 23, 58, 59), local(2026, 3, 1), REGISTERED)
    # Registered in the last minute of March: one due that minute, one at midnight.
    fate(local(2026, 3, 31, 23, 58), local(2026, 3, 31, 23, 59, 59), DISPATCHED)
    fate(local(2026, 3, 31, 23, 58), local(2026, 4, 1), REGISTERED)
    # 24 void reports registered and due in March: registered, never due.
    for i, state in enumerate([DUPLICATE] * 10 + [NOT_OURS] * 8 + [INVALID] * 6):
        created = local(2026, 3, 10) + i * HOUR
        fate(created, created + DAY, state)
    # Outside March on both sides: registered at April's first second, due in February.
    fate(local(2026, 3, 31, 23, 59), local(2026, 4, 3), DISPATCHED)
    fate(local(2026, 2, 20), local(2026, 2, 28, 23, 59, 59), CLOSED)
    return fates


@pytest.fixture
def hall(ticket_hall: Any) -> Any:
    return ticket_hall


async def test_the_domain_figures(hall: Any) -> None:
    await add(hall, domain_month())
    body = await get(hall, "/api/v1/tickets/measures?month=2026-03")
    assert body["source"] == "rollup"
    assert body["period"]["first"] == "2026-03-01" and body["period"]["last"] == "2026-03-31"
    # Local midnight in Shanghai is 16:00 UTC the day before.
    assert body["period"]["start"] == local(2026, 3, 1) == 1772294400
    district = body["district"]
    counts, rates = district["counts"], district["rates"]
    assert (counts["registered"], counts["due"], counts["closed"], counts["on_time"]) == (
        996,
        972,
        911,
        737,
    )
    assert rates["closure"] == {
        "percent": 93.72,
        "numerator": 911,
        "denominator": 972,
        "of": "due",
    }
    assert rates["on_time"]["percent"] == 75.82
    # Accepted within 24 h: every ticket past dispatched but the 39 slow ones (the
    # 20 still waiting at dispatched and the two at the month's edges never were).
    assert rates["response"]["numerator"] == 970 - 20 - 39
    assert rates["disposal"]["numerator"] == 911 + 20
    assert rates["satisfaction"] == {
        "percent": 86.67,
        "numerator": 260,
        "denominator": 300,
        "of": "evaluated",
    }
    assert counts["reworks"] == 174
    # Each dimension splits the district's tickets: the units add up to it.
    for dim in ("department", "street", "member"):
        for name in ("registered", "due", "closed", "on_time", "responded", "reworks"):
            assert sum(u["counts"][name] for u in body[dim]) == counts[name], (dim, name)
    depts = units(body, "department")
    assert set(depts) == {"urban-mgmt", "sanitation", "market"}
    assert depts["sanitation"]["name"] == "环卫所"
    total = depts["market"]["rates"]["closure"]
    assert total["denominator"] == depts["market"]["counts"]["due"]


async def test_a_day_and_a_week_cut_at_local_midnight(hall: Any) -> None:
    await add(hall, domain_month())
    day = await get(hall, "/api/v1/tickets/measures?day=2026-03-31&by=department")
    # Due on the 31st: the second-before-midnight ticket only; registered: two.
    assert day["district"]["counts"]["due"] == 1
    assert day["district"]["counts"]["registered"] == 2
    assert "street" not in day and "department" in day
    first = await get(hall, "/api/v1/tickets/measures?day=2026-03-01")
    assert first["district"]["counts"]["registered"] == 32  # 08:00 to 23:30, half-hourly
    week = await get(hall, "/api/v1/tickets/measures?week=2026-W14")  # Mar 30 - Apr 5
    assert week["period"]["first"] == "2026-03-30" and week["period"]["last"] == "2026-04-05"
    # 23:59:59 on the 31st, the midnight after it, and 3 April.
    assert week["district"]["counts"]["due"] == 3
    ranged = await get(hall, "/api/v1/tickets/measures?from=2026-03-01&to=2026-03-31")
    month = await get(hall, "/api/v1/tickets/measures?month=2026-03")
    assert ranged["district"] == month["district"]


def random_fates(rnd: random.Random, first_id: int, n: int) -> list[Fate]:
    states = [
        REGISTERED,
        DISPATCHED,
        HANDLING,
        REPORTED,
        CLOSED,
        EVALUATED,
        DUPLICATE,
        NOT_OURS,
        INVALID,
    ]
    fates = []
    for i in range(first_id, first_id + n):
        created = local(2026, 1, 1) + rnd.uniform(0, 80 * DAY)
        state = rnd.choice(states)
        due = created + rnd.choice([2 * HOUR, 5 * DAY, 12 * DAY])
        response_s = rnd.uniform(0, 2 * DAY)
        fates.append(
            Fate(
                i,
                created,
                due,
                state,
                department=rnd.choice([*DEPTS, None]),
                street=rnd.choice(["s1", "s2", None]),
                member=rnd.choice([f"m{k}" for k in range(6)]),
                response_s=response_s,
                closed_at=created + response_s + rnd.uniform(3 * HOUR, 10 * DAY)
                if state in (CLOSED, EVALUATED)
                else None,
                satisfaction=rnd.choice(["satisfied", "basic", "unsatisfied"])
                if state == EVALUATED
                else None,
                reworks=rnd.choice([0, 0, 1, 2]),
                registered=rnd.random() < 0.8,
            )
        )
    return fates


PERIODS = [
    "month=2026-01",
    "month=2026-02",
    "week=2026-W07",
    "day=2026-02-14",
    "from=2026-01-20&to=2026-03-10",
    "month=2026-04",
    "from=2026-01-01&to=2026-02-28",  # whole months only
    "from=2026-01-15&to=2026-02-28",  # days, then a month
    "from=2026-02-01&to=2026-02-10",  # the start of a month
    "from=2025-12-31&to=2026-02-01",  # a day, a month, a day
]


async def same_both_ways(hall: Any) -> None:
    for period in PERIODS:
        fast = await get(hall, f"/api/v1/tickets/measures?{period}")
        slow = await get(hall, f"/api/v1/tickets/measures?{period}&direct=true")
        assert (fast["source"], slow["source"]) == ("rollup", "direct")
        del fast["source"], slow["source"]
        assert fast == slow, period


async def test_the_rollup_answers_as_the_tickets_do(hall: Any) -> None:
    rnd = random.Random(7)
    # Written before the first measure (the rollup is built from them), then after
    # (the triggers count them), then changed the ways the workflow changes them.
    await add(hall, random_fates(rnd, 1, 600))
    await same_both_ways(hall)
    await add(hall, random_fates(rnd, 601, 600))

    def transitions(conn: Any) -> None:
        conn.execute(
            "UPDATE tickets SET state = 'closed', closed_at = due_at - 60, on_time = 1, "
            "reported_at = due_at - 120, accepted_at = coalesce(accepted_at, due_at - 300), "
            "done_at = due_at - 60 WHERE state = 'reported' AND id % 2 = 0"
        )
        conn.execute(
            "UPDATE tickets SET state = 'handling', reworks = reworks + 1 "
            "WHERE state = 'reported' AND id % 2 = 1"
        )
        conn.execute(
            "UPDATE tickets SET state = 'evaluated', satisfaction = 'basic' "
            "WHERE state = 'closed' AND id % 3 = 0"
        )
        conn.execute("UPDATE tickets SET department = 'police', member = 'm9' WHERE id % 7 = 0")
        conn.execute("UPDATE tickets SET due_at = due_at + 20 * 86400 WHERE id % 11 = 0")
        conn.execute(
            "UPDATE tickets SET registered_at = created_at + 60 "
            "WHERE registered_at IS NULL AND id % 2 = 0"
        )
        conn.execute("UPDATE tickets SET state = 'invalid' WHERE id % 13 = 0")
        conn.execute("DELETE FROM tickets WHERE id % 17 = 0")

    await hall.host.store.write(transitions)
    await same_both_ways(hall)


async def test_the_triggers_build_no_table_per_ticket(hall: Any) -> None:
    # An `IN (...)` of three or more constants makes SQLite build an ephemeral table
    # each time a statement runs: in a trigger, for every ticket written. Each upsert
    # may make one, for the four dimensions it joins; no more.
    def programs(conn: sqlite3.Connection) -> list[int]:
        found = []
        for trigger in rollup.trigger_sql():
            body = trigger.split(" BEGIN\n", 1)[1].rsplit("\nEND", 1)[0]
            for statement in body.split(";\n"):
                plain = re.sub(r"\b(NEW|OLD)\.\w+", "?", statement.rstrip(";"))
                program = conn.execute(f"EXPLAIN {plain}", [None] * plain.count("?"))
                found.append([row[1] for row in program].count("OpenEphemeral"))
        return found

    made = await hall.host.store.read(programs)
    assert made == [1] * 16


async def test_a_rolled_back_write_is_never_counted(hall: Any) -> None:
    await add(hall, domain_month())
    before = await get(hall, "/api/v1/tickets/measures?month=2026-03")

    def fails(conn: Any) -> None:
        conn.execute("UPDATE tickets SET state = 'closed', on_time = 1 WHERE state = 'handling'")
        raise RuntimeError("the disk filled up")

    with pytest.raises(RuntimeError):
        await hall.host.store.write(fails)
    after = await get(hall, "/api/v1/tickets/measures?month=2026-03")
    assert after["district"] == before["district"]


async def test_new_settings_rebuild_the_rollup_at_restart(tmp_path: Path) -> None:
    async with measured(tmp_path) as hall:
        await add(hall, domain_month())
        body = await get(hall, "/api/v1/tickets/measures?month=2026-03")
        assert body["district"]["rates"]["response"]["numerator"] == 911
    # A 72-hour limit: the 39 slow responses (48 h) count now.
    extra = '[tickets.measures]\nresponse_hours = 72\nsatisfied = ["satisfied"]\n'
    async with running(config(tmp_path, extra)) as hall:
        body = await get(hall, "/api/v1/tickets/measures?month=2026-03")
        assert body["source"] == "rollup"
        assert body["district"]["rates"]["response"]["numerator"] == 911 + 39
        assert body["district"]["rates"]["satisfaction"]["numerator"] == 200
        assert body["district"]["counts"]["due"] == 972  # nothing lost across the restart
        slow = await get(hall, "/api/v1/tickets/measures?month=2026-03&direct=true")
        assert slow["district"] == body["district"]


async def test_a_zone_with_daylight_saving(tmp_path: Path) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    async with measured(tmp_path, '[calendar]\ntz = "Europe/Berlin"\n') as hall:
        # Due at 00:30 local on 1 and 31 March (CET, then CEST): both in March.
        await add(
            hall,
            [
                Fate(1, local(2026, 2, 1, tz=berlin), local(2026, 2, 28, 23, 30, tz=berlin)),
                Fate(2, local(2026, 2, 25, tz=berlin), local(2026, 3, 1, 0, 30, tz=berlin)),
                Fate(3, local(2026, 3, 25, tz=berlin), local(2026, 3, 31, 0, 30, tz=berlin)),
                Fate(4, local(2026, 3, 25, tz=berlin), local(2026, 4, 1, 0, 30, tz=berlin)),
            ],
        )
        march = await get(hall, "/api/v1/tickets/measures?month=2026-03")
        assert march["source"] == "direct"  # the clocks go forward on 29 March
        assert march["district"]["counts"]["due"] == 2
        # February has one offset (the zone's winter one the rollup is cut with).
        february = await get(hall, "/api/v1/tickets/measures?month=2026-02")
        assert february["source"] == "rollup" and february["district"]["counts"]["due"] == 1


@pytest.mark.parametrize(
    "query,says",
    [
        ("", "give exactly one period"),
        ("?day=2026-03-01&month=2026-03", "got day, month"),
        ("?week=2026-W54", "2026 has no week 54"),
        ("?week=2026-10", "expected an ISO week"),
        ("?month=2026-13", "expected a month"),
        ("?from=2026-03-10&to=2026-03-01", "is before from"),
        ("?from=2026-03-10", "needs both from and to"),
        ("?from=2024-01-01&to=2026-01-01", "at most 400"),
        ("?day=2026-02-30", "day"),
        ("?month=2026-03&by=grid", "by='grid'"),
    ],
)
async def test_bad_periods_are_422(hall: Any, query: str, says: str) -> None:
    r = await hall.client.get(f"/api/v1/tickets/measures{query}", headers=hall.as_role("viewer"))
    assert r.status_code == 422, r.text
    assert says in r.json()["error"]["message"]
