"""Tickets through the API on a running daemon: intake routed to the grid, its member
and the departments; deadlines on China's calendar; idempotent reports; the whole
loop with its history and hooks; every illegal step refused with the reason."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.clock import ManualClock
from daemon.hookspecs import hookimpl
from daemon.store import CORE_MIGRATIONS, Store
from plugins.tickets.tables import MIGRATIONS
from tests.grid_support import at
from tests.support import Running, wait_for
from tests.ticket_support import (
    G1,
    G4,
    Heard,
    epoch,
    import_district,
    local,
    plugin_host,
    report,
    step,
    tickets_at,
    tickets_config,
)

MONDAY = "2026-01-05T09:00"  # an ordinary working Monday


@pytest.fixture
async def heard() -> Heard:
    return Heard()


@pytest.fixture
async def hall(tmp_path: Path, heard: Heard) -> AsyncIterator[Running]:
    config = tickets_config(tmp_path)
    await import_district(tmp_path, config)
    async with tickets_at(config, ManualClock(local(MONDAY)), plugin_host((heard, "heard"))) as h:
        yield h


async def get(hall: Running, ticket: int, role: str = "viewer") -> dict:
    r = await hall.client.get(f"/api/v1/tickets/{ticket}", headers=hall.as_role(role))
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_report_is_routed_by_point_and_category(hall: Running) -> None:
    r = await report(hall, category="city.parking")  # coordination, police; city -> urban
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["grid"], t["community"], t["street"]) == (G1, G1[:12], G1[:9])
    assert t["member"] == "M1"  # on duty in G1
    assert (t["department"], t["competent"], t["tier"]) == ("police", "urban", "coordination")
    assert t["state"] == "collected" and t["channel"] == "api"
    # 5 working days from Monday 2026-01-05: the end of the office day on the 12th.
    assert t["due_at"] == epoch("2026-01-12T17:30")
    # The point decides the grid: the other corner is G4's, and M4 serves there.
    lon, lat = at(1.5, 1.5)
    t4 = (await report(hall, lon=lon, lat=lat)).json()
    assert (t4["grid"], t4["member"]) == (G4, "M4")


async def test_the_answer_is_the_ticket_as_it_is_read(hall: Running) -> None:
    fields = {
        "description": '路灯不亮，已经三天了 "quoted" \\ back',
        "attributes": {"volume": "pile", "n": 2.5, "list": ["1", "二"], "none": None},
        "reporter_name": "张三丰",
    }
    r = await report(hall, category="city.parking", **fields)
    assert r.status_code == 201 and r.headers["content-type"] == "application/json"
    made = r.json()
    read = await get(hall, made["id"], "reporter")  # the same role: the same masking
    assert made == {k: v for k, v in read.items() if k not in ("history", "parties", "next")}
    assert made["description"] == fields["description"]
    assert made["attributes"] == fields["attributes"]
    assert isinstance(made["created_at"], float) and made["major"] is False


async def test_simple_and_hard_cases_skip_the_competent_department(hall: Running) -> None:
    simple = (await report(hall, category="city.litter")).json()
    assert (simple["tier"], simple["competent"]) == ("simple", None)
    assert simple["due_at"] == epoch("2026-01-05T11:00")  # 2 clock hours
    hard = (await report(hall, category="city.building")).json()
    assert (hard["tier"], hard["competent"]) == ("hard", None)
    assert hard["due_at"] == epoch("2026-01-19T17:30")  # 10 working days: the low end


async def test_without_a_point_a_grid_code_routes(hall: Running) -> None:
    t = (await report(hall, lon=None, lat=None, grid=G4)).json()
    assert (t["grid"], t["street"], t["member"]) == (G4, G4[:9], "M4")
    nowhere = (await report(hall, lon=None, lat=None)).json()
    assert nowhere["grid"] is None and nowhere["member"] is None


async def test_the_same_idem_key_is_one_ticket(hall: Running) -> None:
    first = await report(hall, idem_key="cam-7:evt-1001")
    assert first.status_code == 201
    again = await report(hall, idem_key="cam-7:evt-1001", description="seen again")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    # At the same moment too: ten at once make one ticket (the group commit runs them
    # in one transaction, and each sees the ones before it).
    answers = await asyncio.gather(*(report(hall, idem_key="cam-7:evt-1002") for _ in range(10)))
    assert sorted(a.status_code for a in answers) == [200] * 9 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    listed = await hall.client.get("/api/v1/tickets", headers=hall.as_role("viewer"))
    assert len(listed.json()["tickets"]) == 2


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"category": "city.nothing"}, "unknown or retired category 'city.nothing'"),
        ({"lat": None}, "give both lon and lat"),
        ({"colour": "red"}, "colour"),
        ({"channel": "pigeon"}, "channel"),
    ],
)
async def test_bad_reports_are_422_naming_the_field(
    hall: Running, fields: dict, message: str
) -> None:
    r = await report(hall, **fields)
    assert r.status_code == 422
    assert message in r.json()["error"]["message"]


async def test_a_year_no_calendar_knows_is_503_never_a_guess(tmp_path: Path) -> None:
    config = tickets_config(tmp_path)
    async with tickets_at(config, ManualClock(local("2027-03-01T09:00"))) as hall:
        r = await report(hall, category="city.parking")  # 5 working days into 2027
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "calendar_unknown"
        assert "2027" in r.json()["error"]["message"]
        # Clock hours need no calendar: a simple case is taken.
        assert (await report(hall, category="city.litter")).status_code == 201
        listed = await hall.client.get("/api/v1/tickets", headers=hall.as_role("viewer"))
        assert [t["category"] for t in listed.json()["tickets"]] == ["city.litter"]


async def test_the_closed_loop_with_its_history_and_hooks(hall: Running, heard: Heard) -> None:
    tid = (await report(hall, category="city.parking", reporter_contact="13912345678")).json()["id"]
    clock = hall.host.clock
    for transition, role, args in [
        ("register", "dispatcher", {}),
        ("dispatch", "dispatcher", {}),
        ("accept", "handler", {}),
        ("report", "handler", {"note": "cars moved"}),
        ("rework", "dispatcher", {"reason": "one car is still there"}),
        ("report", "handler", {"note": "towed"}),
        ("verify", "dispatcher", {}),
        ("evaluate", "dispatcher", {"satisfaction": "satisfied"}),
    ]:
        await clock.advance(dt.timedelta(hours=1))
        r = await step(hall, tid, transition, role, **args)
        assert r.status_code == 200, (transition, r.text)
        assert r.json()["transition"] == transition
    t = await get(hall, tid)
    assert t["state"] == "evaluated" and t["satisfaction"] == "satisfied"
    assert (t["reworks"], t["on_time"], t["handler"]) == (1, True, "police")
    assert t["accepted_at"] == epoch("2026-01-05T12:00")  # the first acceptance
    assert t["closed_at"] == epoch("2026-01-05T16:00")
    history = [(h["transition"], h["actor"], h["from"], h["to"]) for h in t["history"]]
    assert history[0] == ("collect", "test-reporter", None, "collected")
    assert history[5] == ("rework", "test-dispatcher", "reported", "handling")
    assert t["history"][5]["note"] == "one car is still there"
    assert {(p["party"], p["role"]) for p in t["parties"]} == {
        ("police", "handler"),
        ("urban", "competent"),  # told at once, with the handler
        ("M1", "member"),
    }
    assert t["next"] == ["invalidate", "reopen"]
    # Each committed change was told once, in order, in the contract's shape.
    assert [c["transition"] for c in heard.changes] == [h[0] for h in history]
    seqs = [c["seq"] for c in heard.changes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    last = heard.changes[-1]
    assert set(last) == {"seq", "at", "actor", "transition", "from", "to", "data", "ticket"}
    assert last["data"] == {"satisfaction": "satisfied"}
    assert set(last["ticket"]) == {
        "id", "category", "tier", "major", "state", "channel", "grid", "street",
        "department", "member", "handler", "reporter", "created_at", "due_at",
        "closed_at", "on_time",
    }  # fmt: skip
    # Catching up replays the same records from the history (the ticket as it is now).
    replay = hall.host.plugins.ticket_changes(seqs[2], 100, hall.host)
    assert [c["seq"] for c in replay] == seqs[3:]
    assert [c["transition"] for c in replay] == [c["transition"] for c in heard.changes[3:]]
    assert replay[0]["ticket"]["state"] == "evaluated"


async def test_illegal_steps_are_409_with_the_reason(hall: Running) -> None:
    tid = (await report(hall)).json()["id"]
    r = await step(hall, tid, "accept", "handler")
    assert r.status_code == 409
    assert r.json()["error"]["message"] == (
        "cannot accept a ticket that is collected; from collected: decline, invalidate, "
        "merge, register"
    )
    assert (await step(hall, tid, "verify")).status_code == 409
    assert (await get(hall, tid))["state"] == "collected"  # nothing changed
    assert len((await get(hall, tid))["history"]) == 1
    assert (await step(hall, 999, "register")).status_code == 404


async def test_each_step_needs_its_role(hall: Running) -> None:
    tid = (await report(hall)).json()["id"]
    assert (await step(hall, tid, "register", "handler")).status_code == 403
    assert (await step(hall, tid, "register", "operator")).status_code == 403
    assert (await step(hall, tid, "register", "dispatcher")).status_code == 200
    assert (await step(hall, tid, "dispatch", "dispatcher")).status_code == 200
    assert (await step(hall, tid, "accept", "dispatcher")).status_code == 403
    assert (await step(hall, tid, "accept", "handler")).status_code == 200
    assert (await report(hall, role="viewer")).status_code == 403
    assert (await report(hall, role="handler")).status_code == 201  # a grid member reports


async def test_a_simple_case_goes_to_the_grid_member(hall: Running) -> None:
    tid = (await report(hall, category="city.litter")).json()["id"]
    await step(hall, tid, "register")
    r = await step(hall, tid, "dispatch")
    assert r.json()["ticket"]["handler"] == "M1"
    # Sent on to a department by name; an unknown one is refused with its name.
    r = await step(hall, tid, "dispatch", handler="nobody")
    assert r.status_code == 422 and "'nobody'" in r.json()["error"]["message"]
    r = await step(hall, tid, "dispatch", handler="sanitation")
    assert r.status_code == 200 and r.json()["ticket"]["handler"] == "sanitation"


async def test_registration_sets_tier_category_and_a_deadline_in_range(hall: Running) -> None:
    tid = (await report(hall, category="city.litter")).json()["id"]
    # The hard case's consultation names a lead and co-departments and picks 12 days.
    r = await step(hall, tid, "register", category="city.building", days=16)
    assert r.status_code == 422 and "outside the deadline 10-15wd" in r.json()["error"]["message"]
    r = await step(
        hall, tid, "register", category="city.building", days=12, lead="urban", co=["police"]
    )
    assert r.status_code == 200, r.text
    t = await get(hall, tid)
    assert (t["category"], t["tier"], t["lead"]) == ("city.building", "hard", "urban")
    assert t["due_at"] == epoch("2026-01-21T17:30")  # 12 working days from the report
    assert {(p["party"], p["role"]) for p in t["parties"]} == {("urban", "lead"), ("police", "co")}
    r = await step(hall, tid, "dispatch")
    assert r.json()["ticket"]["handler"] == "urban"  # the lead
    # A tier changed by hand takes the tier's deadline; coordination tells the competent.
    tid2 = (await report(hall, category="city.litter")).json()["id"]
    r = await step(hall, tid2, "register", tier="coordination")
    t2 = await get(hall, tid2)
    assert (t2["tier"], t2["competent"]) == ("coordination", "urban")
    assert t2["due_at"] == epoch("2026-01-12T17:30")


async def test_merge_decline_invalidate_reopen(hall: Running) -> None:
    a = (await report(hall)).json()["id"]
    b = (await report(hall)).json()["id"]
    c = (await report(hall)).json()["id"]
    assert (await step(hall, a, "merge", into=a)).status_code == 422
    assert (await step(hall, a, "merge", into=999)).status_code == 422
    r = await step(hall, b, "merge", into=a)
    assert r.status_code == 200 and r.json()["to"] == "duplicate"
    r = await step(hall, c, "merge", into=b)
    assert r.status_code == 409 and f"merge into {a}" in r.json()["error"]["message"]
    assert (await step(hall, c, "decline")).status_code == 422  # a reason is required
    r = await step(hall, c, "decline", reason="a railway matter, not the district's")
    assert r.json()["to"] == "not_ours"
    assert (await get(hall, b))["merged_into"] == a
    # A closed case reopens with a fresh deadline counted from the reopening.
    for transition, role in [("register", "dispatcher"), ("dispatch", "dispatcher"),
                             ("accept", "handler"), ("report", "handler"),
                             ("verify", "dispatcher")]:  # fmt: skip
        assert (await step(hall, a, transition, role)).status_code == 200
    await hall.host.clock.move_to(local("2026-01-06T10:00"))
    r = await step(hall, a, "reopen", reason="the litter is back")
    assert r.status_code == 200 and r.json()["to"] == "dispatched"
    t = await get(hall, a)
    assert (t["reopens"], t["closed_at"], t["done_at"], t["on_time"]) == (1, None, None, None)
    assert t["due_at"] == epoch("2026-01-06T12:00")
    assert (await step(hall, a, "invalidate", reason="a test report")).json()["to"] == "invalid"


async def test_list_filters_and_pages(hall: Running) -> None:
    categories = ["city.litter", "city.parking"] * 3
    ids = [(await report(hall, category=c)).json()["id"] for c in categories]
    lon, lat = at(1.5, 1.5)
    other = (await report(hall, lon=lon, lat=lat)).json()["id"]
    headers = hall.as_role("viewer")
    r = await hall.client.get("/api/v1/tickets", params={"limit": 4}, headers=headers)
    page = r.json()
    assert [t["id"] for t in page["tickets"]] == [other, *ids[::-1][:3]]
    r = await hall.client.get(
        "/api/v1/tickets", params={"limit": 4, "before": page["next"]}, headers=headers
    )
    assert [t["id"] for t in r.json()["tickets"]] == ids[::-1][3:]
    assert r.json()["next"] is None
    q = {"category": "city.parking", "grid": G1}
    r = await hall.client.get("/api/v1/tickets", params=q, headers=headers)
    assert [t["id"] for t in r.json()["tickets"]] == ids[1::2][::-1]
    r = await hall.client.get("/api/v1/tickets", params={"department": "urban"}, headers=headers)
    assert r.json()["tickets"] == []  # the competent is told at dispatch, not before
    await step(hall, ids[1], "register")
    await step(hall, ids[1], "dispatch")
    r = await hall.client.get("/api/v1/tickets", params={"department": "urban"}, headers=headers)
    assert [t["id"] for t in r.json()["tickets"]] == [ids[1]]
    r = await hall.client.get("/api/v1/tickets", params={"state": "dispatched"}, headers=headers)
    assert [t["id"] for t in r.json()["tickets"]] == [ids[1]]


async def test_the_overdue_board_most_overdue_first(hall: Running) -> None:
    clock = hall.host.clock
    litter = (await report(hall, category="city.litter")).json()["id"]  # due 11:00
    fight = (await report(hall, category="security.fight")).json()["id"]  # due 11:00 too
    await clock.move_to(local("2026-01-05T10:00"))
    late = (await report(hall, category="city.litter")).json()["id"]  # due 12:00
    parking = (await report(hall, category="city.parking")).json()["id"]  # due the 12th
    done = (await report(hall, category="city.litter")).json()["id"]
    for transition, role in [("register", "dispatcher"), ("dispatch", "dispatcher"),
                             ("accept", "handler"), ("report", "handler"),
                             ("verify", "dispatcher")]:  # fmt: skip
        await step(hall, done, transition, role)
    await clock.move_to(local("2026-01-05T11:30"))
    headers = hall.as_role("viewer")
    r = await hall.client.get("/api/v1/tickets/overdue", params={"within_h": 1}, headers=headers)
    board = r.json()
    assert [t["id"] for t in board["tickets"]] == [litter, fight, late]
    assert (board["overdue"], board["near"]) == (2, 1)
    assert board["tickets"][0]["overdue_s"] == 1800
    assert board["tickets"][1]["major"] is True  # security is a major group
    r = await hall.client.get("/api/v1/tickets/overdue", params={"within_h": 200}, headers=headers)
    assert [t["id"] for t in r.json()["tickets"]][-1] == parking
    r = await hall.client.get(
        "/api/v1/tickets/overdue", params={"department": "police"}, headers=headers
    )
    assert [t["id"] for t in r.json()["tickets"]] == [fight]
    # Filtered, the counts are the filter's: a department responsible, or told as a
    # party (urban, the competent department of parking's group, once dispatched).
    for transition in ("register", "dispatch"):
        assert (await step(hall, parking, transition)).status_code == 200
    for params, ids, counts in [
        ({"department": "police"}, [fight, parking], (1, 1)),
        ({"department": "urban"}, [parking], (0, 1)),
        ({"department": "sanitation"}, [litter, late], (1, 1)),
        ({"category": "city.litter"}, [litter, late], (1, 1)),
        ({"street": G1[:9], "category": "security.fight"}, [fight], (1, 0)),
        ({"grid": "nowhere"}, [], (0, 0)),
    ]:
        r = await hall.client.get(
            "/api/v1/tickets/overdue", params={"within_h": 200, **params}, headers=headers
        )
        board = r.json()
        assert [t["id"] for t in board["tickets"]] == ids, params
        assert (board["overdue"], board["near"]) == counts, params
    r = await hall.client.get("/api/v1/tickets", params={"overdue": True}, headers=headers)
    assert {t["id"] for t in r.json()["tickets"]} == {litter, fight}


async def test_personal_fields_are_masked_below_the_desk(hall: Running) -> None:
    fields = {"reporter_name": "张三丰", "reporter_contact": "13912345678"}
    tid = (await report(hall, **fields)).json()["id"]
    seen = await get(hall, tid, "viewer")
    assert (seen["reporter_name"], seen["reporter_contact"]) == ("张**", "139****5678")
    full = await get(hall, tid, "dispatcher")
    assert (full["reporter_name"], full["reporter_contact"]) == ("张三丰", "13912345678")


async def test_categories_and_departments(hall: Running) -> None:
    headers = hall.as_role("viewer")
    r = await hall.client.get("/api/v1/tickets/categories", headers=headers)
    cats = {c["code"]: c for c in r.json()["categories"]}
    assert cats["security.fight"]["deadline"] == "2h"
    assert cats["city.building"]["deadline"] == "10-15wd"  # the tier's, from the config
    assert cats["security.fight"]["major"] == 1 and cats["city.parking"]["competent"] == "urban"
    assert {g["code"] for g in r.json()["groups"]} == {"city", "security"}
    r = await hall.client.get("/api/v1/tickets/departments", headers=headers)
    assert {d["id"] for d in r.json()} == {"police", "urban", "sanitation", "law"}


async def test_ids_are_integers_in_the_path(hall: Running) -> None:
    headers = hall.as_role("viewer")
    assert (await hall.client.get("/api/v1/tickets/abc", headers=headers)).status_code == 404
    r = await hall.client.post("/api/v1/tickets/abc/register", headers=headers)
    assert r.status_code == 404


class SlowListener:
    """Awaits inside the hook, as a plugin writing to the store would."""

    def __init__(self) -> None:
        self.seqs: list[int] = []

    @hookimpl
    async def gridhall_ticket_changed(self, change: dict) -> None:
        await asyncio.sleep(0.001 * (change["seq"] % 3))
        self.seqs.append(change["seq"])


async def test_changes_are_told_in_the_order_they_were_committed(tmp_path: Path) -> None:
    listener = SlowListener()
    config = tickets_config(tmp_path)
    clock = ManualClock(local(MONDAY))
    async with tickets_at(config, clock, plugin_host((listener, "slow"))) as hall:
        first = [(await report(hall)).json()["id"] for _ in range(5)]
        # Reports and registrations at once: they share commits, in whatever order.
        await asyncio.gather(
            *(report(hall) for _ in range(20)),
            *(step(hall, t, "register") for t in first),
        )
        everything = hall.host.plugins.ticket_changes(0, 1000, hall.host)
    assert len(everything) == 30
    assert listener.seqs == [c["seq"] for c in everything]  # each once, in order


class Answering:
    """A plugin that answers a change with a change of its own (a verified ticket is
    evaluated on the reporter's behalf), from inside the hook."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    @hookimpl
    async def gridhall_ticket_changed(self, change: dict, host: object) -> None:
        from plugins.tickets import transitions

        self.heard.append(change["transition"])
        if change["transition"] == "verify":
            args = transitions.EvaluateArgs(satisfaction="basic")
            await transitions.apply(host, change["ticket"]["id"], "evaluate", args, actor="auto")


async def test_a_listener_may_make_a_change_of_its_own(tmp_path: Path) -> None:
    listener = Answering()
    config = tickets_config(tmp_path)
    async with tickets_at(config, ManualClock(local(MONDAY)), plugin_host((listener, "a"))) as hall:
        tid = (await report(hall)).json()["id"]
        for transition, role in [("register", "dispatcher"), ("dispatch", "dispatcher"),
                                 ("accept", "handler"), ("report", "handler"),
                                 ("verify", "dispatcher")]:  # fmt: skip
            r = await asyncio.wait_for(step(hall, tid, transition, role), 10)
            assert r.status_code == 200
        await wait_for(lambda: listener.heard[-1:] == ["evaluate"])
        t = await get(hall, tid)
    assert (t["state"], t["satisfaction"]) == ("evaluated", "basic")
    assert listener.heard == [
        "collect", "register", "dispatch", "accept", "report", "verify", "evaluate",
    ]  # fmt: skip
    assert t["history"][-1]["actor"] == "auto"


async def test_a_store_from_before_the_boards_index_is_upgraded(tmp_path: Path) -> None:
    """Tickets written under migration 3 (the board's index on deadlines alone) are on
    the board after the upgrade to 4, which replaces that index."""
    config = tickets_config(tmp_path)
    store = Store(tmp_path / "gridhall.db")
    await store.open()
    await store.migrate(CORE_MIGRATIONS + [m for m in MIGRATIONS if m.version <= 3])
    due = epoch("2026-01-05T11:00")

    def old_ticket(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO ticket_departments (id, name, level) VALUES ('police', 'p', 'district')"
        )
        conn.execute(
            "INSERT INTO ticket_categories (code, name, tier, department, deadline) "
            "VALUES ('security.fight', 'f', 'coordination', 'police', '2h')"
        )
        conn.execute(
            "INSERT INTO tickets (channel, category, tier, state, department, created_at, "
            "due_at, updated_at) VALUES ('api', 'security.fight', 'coordination', "
            "'collected', 'police', ?, ?, ?)",
            (due - 7200, due, due - 7200),
        )

    await store.write(old_ticket)
    await store.close()
    async with tickets_at(config, ManualClock(local("2026-01-05T12:00"))) as hall:
        indexes = await hall.host.store.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tickets'"
        )
        names = {row["name"] for row in indexes}
        assert "tickets_open_board" in names and "tickets_open_due" not in names
        for params in ({}, {"department": "police"}):
            r = await hall.client.get(
                "/api/v1/tickets/overdue", params=params, headers=hall.as_role("viewer")
            )
            assert [(t["id"], t["overdue_s"]) for t in r.json()["tickets"]] == [(1, 3600)]
