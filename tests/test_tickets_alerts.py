"""The deadline watcher on a hand-moved clock: a reminder before the deadline, overdue
at it, supervision a level further each working day (督办), each alert said once (also
across a restart), told on the event stream and to the hook, and a major case's alert
running its scene on a real relay board (the Modbus emulator)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.clock import ManualClock
from daemon.hookspecs import hookimpl
from drivers.modbus.emulator import ModbusEmulator
from plugins.tickets import watcher
from tests.support import Running, relay_config, wait_for
from tests.ticket_support import (
    CATALOG,
    Heard,
    epoch,
    local,
    plugin_host,
    report,
    step,
    tickets_at,
)
from tests.ticket_support import Listening as EventsSeen

ALERTING = """
[tickets]
categories = "categories.toml"
reminder = "20%"
[[tickets.on_alert]]
kind = ["overdue", "escalated"]
major_only = true
scene = "alarm"

[[scene]]
id = "alarm"
[[scene.step]]
device = "relay"
action = "on"
args = { channel = 1 }
"""


class Listening(EventsSeen):
    """Every `tickets.*` alert event on the bus, as an SSE client would get them."""

    def __init__(self, hall: Running) -> None:
        super().__init__(hall, lambda t: t in ALERTS)

    def said(self) -> list[tuple[str, int, str | None]]:
        return [(e.type.split(".")[1], e.data["ticket"], e.data["level"]) for e in self.events]


ALERTS = ("tickets.reminder", "tickets.overdue", "tickets.escalated")


@pytest.fixture
def config(tmp_path: Path, modbus: ModbusEmulator) -> Path:
    (tmp_path / "categories.toml").write_text(CATALOG, encoding="utf-8")
    return relay_config(tmp_path, modbus.port, extra=ALERTING)


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
async def hall(config: Path, heard: Heard) -> AsyncIterator[Running]:
    clock = ManualClock(local("2026-01-05T09:00"))  # a working Monday
    async with tickets_at(config, clock, plugin_host((heard, "heard"))) as h:
        await wait_for(lambda: h.host.devices.get("relay").available)
        yield h


async def file(hall: Running, **fields: Any) -> int:
    r = await report(hall, lon=None, lat=None, **fields)
    assert r.status_code == 201, r.text
    await hall.host.clock.settle()  # the watcher has planned with it
    return int(r.json()["id"])


async def at(hall: Running, when: str) -> None:
    await hall.host.clock.move_to(local(when))


async def coil1(modbus: ModbusEmulator) -> bool:
    return bool((await modbus.coils(1, 0, 1))[0])


async def test_remind_then_overdue_then_up_the_levels(
    hall: Running, heard: Heard, modbus: ModbusEmulator
) -> None:
    async with Listening(hall) as heard_on_bus:
        slow = await file(hall, category="city.parking")  # 5 working days: not this week
        fight = await file(hall, category="security.fight")  # major, due 11:00
        await at(hall, "2026-01-05T09:30")
        litter = await file(hall, category="city.litter")  # not major, due 11:30
        await at(hall, "2026-01-05T10:35")
        assert heard_on_bus.said() == []
        await at(hall, "2026-01-05T10:36")  # 20% of two hours before 11:00
        assert heard_on_bus.said() == [("reminder", fight, None)]
        assert not await coil1(modbus)  # a reminder runs no scene
        await at(hall, "2026-01-05T11:00")
        assert heard_on_bus.said()[-1] == ("overdue", fight, "community")
        await coil1_becomes(modbus, True)  # the major case's scene ran
        r = await hall.client.post(
            "/api/v1/devices/relay/actions/off",
            json={"channel": 1},
            headers=hall.as_role("operator"),
        )
        assert r.status_code == 200
        await at(hall, "2026-01-05T11:06")
        await at(hall, "2026-01-05T11:30")
        assert heard_on_bus.said()[-2:] == [
            ("reminder", litter, None),
            ("overdue", litter, "community"),
        ]
        await asyncio.sleep(0.2)
        assert not await coil1(modbus)  # not major: no scene
        # A working day after the deadline, the street supervises; the day after, the
        # district. The litter is closed in between and says nothing more.
        await at(hall, "2026-01-06T17:29")
        assert len(heard_on_bus.said()) == 4
        await at(hall, "2026-01-06T17:30")
        assert set(heard_on_bus.said()[4:]) == {
            ("escalated", fight, "street"),
            ("escalated", litter, "street"),
        }
        await coil1_becomes(modbus, True)  # the major one's escalation ran it again
        for transition, role in [("register", "dispatcher"), ("dispatch", "dispatcher"),
                                 ("accept", "handler"), ("report", "handler"),
                                 ("verify", "dispatcher")]:  # fmt: skip
            assert (await step(hall, litter, transition, role)).status_code == 200
        await at(hall, "2026-01-07T17:30")
        assert heard_on_bus.said()[6:] == [("escalated", fight, "district")]
        # The slow one: 20% of its 176.5 hours before its deadline is Sunday 06:12.
        await at(hall, "2026-01-11T06:11")
        assert len(heard_on_bus.said()) == 7
        await at(hall, "2026-01-11T06:13")
        await at(hall, "2026-01-12T17:30")  # its deadline
        assert heard_on_bus.said()[7:] == [
            ("reminder", slow, None),
            ("overdue", slow, "community"),
        ]
        await at(hall, "2026-02-27T12:00")  # weeks on, in one jump: where it is now, once
        assert heard_on_bus.said()[9:] == [("escalated", slow, "district")]
    # The hook heard the same alerts, in the same order, in the contract's shape.
    assert [(a["kind"], a["ticket"], a["level"]) for a in heard.alerts] == heard_on_bus.said()
    overdue = heard.alerts[1]
    assert {"kind", "level", "ticket", "whistle", "message", "at"} <= set(overdue)
    assert overdue["at"] == epoch("2026-01-05T11:00") and overdue["major"] is True
    assert "2026-01-05T11:00+08:00" in overdue["message"]
    # The row says what was said: the overdue board shows the level.
    t = (await hall.client.get(f"/api/v1/tickets/{fight}", headers=hall.as_role("viewer"))).json()
    assert (t["escalation"], t["level"]) == (3, "district")
    assert t["reminded_at"] == epoch("2026-01-05T10:36")


async def coil1_becomes(modbus: ModbusEmulator, value: bool, timeout: float = 10) -> None:
    """The board's coil as the emulator holds it, read until it is `value`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while await coil1(modbus) != value:
        assert asyncio.get_running_loop().time() < deadline, f"coil 1 never became {value}"
        await asyncio.sleep(0.02)


async def test_a_watcher_that_was_away_says_once_what_it_missed(
    hall: Running, heard: Heard
) -> None:
    fight = await file(hall, category="security.fight")  # due Monday 11:00
    await at(hall, "2026-01-09T09:00")  # Friday: two working days past the deadline
    assert [(a["kind"], a["ticket"], a["level"]) for a in heard.alerts] == [
        ("overdue", fight, "community"),
        ("escalated", fight, "district"),  # not street, then district: where it is now
    ]


async def test_what_was_said_is_not_said_again_after_a_restart(config: Path, heard: Heard) -> None:
    clock = ManualClock(local("2026-01-05T09:00"))
    async with tickets_at(config, clock, plugin_host((heard, "heard"))) as hall:
        fight = await file(hall, category="security.fight")
        await clock.move_to(local("2026-01-05T10:40"))
        await clock.move_to(local("2026-01-05T11:00"))
        assert [a["kind"] for a in heard.alerts] == ["reminder", "overdue"]
    again = Heard()
    clock = ManualClock(local("2026-01-05T12:00"))
    async with tickets_at(config, clock, plugin_host((again, "again"))) as hall:
        assert again.alerts == []
        await clock.move_to(local("2026-01-06T17:30"))
        assert [(a["kind"], a["ticket"]) for a in again.alerts] == [("escalated", fight)]


async def test_a_closed_ticket_is_owed_nothing(hall: Running, heard: Heard) -> None:
    tid = await file(hall, category="security.fight")
    r = await step(hall, tid, "invalidate", reason="a prank call")
    assert r.status_code == 200
    await at(hall, "2026-01-08T12:00")
    assert heard.alerts == []


async def test_a_step_in_an_unknown_year_waits_for_its_calendar(
    config: Path, heard: Heard, caplog: pytest.LogCaptureFixture
) -> None:
    """Overdue on New Year's Eve is said; the street's turn, a working day later, lies in
    2027, which no source knows: it is not guessed, and comes once the plan is there."""
    clock = ManualClock(local("2026-12-31T09:00"))
    async with tickets_at(config, clock, plugin_host((heard, "heard"))) as hall:
        fight = await file(hall, category="security.fight")  # due 11:00
        await at(hall, "2026-12-31T10:40")
        await at(hall, "2026-12-31T11:00")
        assert [(a["kind"], a["level"]) for a in heard.alerts] == [
            ("reminder", None),
            ("overdue", "community"),
        ]
        assert "no calendar data for 2027" in caplog.text
        await at(hall, "2026-12-31T12:00")  # looked at again: still unknown
        assert len(heard.alerts) == 2
        # The plan is published; the operator drops it in and reloads (SIGHUP does).
        (config.parent / "calendar").mkdir()
        (config.parent / "calendar" / "2027.toml").write_text(
            '[[holiday]]\nname = "New Year\'s Day"\nfrom = 2027-01-01\n'
        )
        hall.host.calendar.reload()
        await at(hall, "2026-12-31T13:00")
        await at(hall, "2027-01-04T17:29")  # Friday the 1st is a holiday, then a weekend
        assert len(heard.alerts) == 2
        await at(hall, "2027-01-04T17:30")
        assert [(a["kind"], a["ticket"], a["level"]) for a in heard.alerts[2:]] == [
            ("escalated", fight, "street")
        ]


DRILL = """
[[category]]
code = "city.drill"
name = "演练"
group = "city"
tier = "simple"
deadline = "10m"
"""


class ReportsWhenTold:
    """Files a ten-minute drill when it hears its first alert: the watcher is still
    planning then (it tells before it sleeps again)."""

    def __init__(self) -> None:
        self.hall: Running | None = None
        self.filed: list[int] = []

    @hookimpl
    async def gridhall_ticket_alert(self, alert: dict[str, Any]) -> None:
        if self.hall is not None and not self.filed:
            r = await report(self.hall, category="city.drill", lon=None, lat=None)
            self.filed.append(int(r.json()["id"]))


@pytest.mark.parametrize("read_missed_it", [False, True])
async def test_a_report_made_while_the_watcher_plans_is_watched(
    config: Path, heard: Heard, monkeypatch: pytest.MonkeyPatch, read_missed_it: bool
) -> None:
    (config.parent / "categories.toml").write_text(CATALOG + DRILL, encoding="utf-8")
    if read_missed_it:
        # The watcher's read of the next alert ran before the drill's commit (a report
        # that lands between that read and the sleep): the first read after it misses it.
        next_alert, missed = watcher._next_alert, []

        def before_the_drill(conn: sqlite3.Connection) -> float | None:
            drills = conn.execute("SELECT count(*) FROM tickets WHERE category = 'city.drill'")
            if missed or not drills.fetchone()[0]:
                return next_alert(conn)
            missed.append(True)
            row = conn.execute(
                "SELECT min(next_alert_at) FROM tickets WHERE done_at IS NULL "
                "AND category != 'city.drill'"
            ).fetchone()
            return None if row[0] is None else float(row[0])

        monkeypatch.setattr(watcher, "_next_alert", before_the_drill)
    filer = ReportsWhenTold()
    clock = ManualClock(local("2026-01-05T09:00"))
    async with tickets_at(config, clock, plugin_host((heard, "heard"), (filer, "filer"))) as hall:
        filer.hall = hall
        fight = await file(hall, category="security.fight")  # reminder 10:36, due 11:00
        await at(hall, "2026-01-05T10:36")
        (drill,) = filer.filed  # due 10:46: its reminder, at 10:44, is the next alert
        await at(hall, "2026-01-05T10:44")
        said = [(a["kind"], a["ticket"], a["at"]) for a in heard.alerts]
        assert said == [
            ("reminder", fight, epoch("2026-01-05T10:36")),
            ("reminder", drill, epoch("2026-01-05T10:44")),
        ]
