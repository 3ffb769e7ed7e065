"""Whistles (吹哨报到) on a running daemon and a hand-moved clock: the types of each
level from the categories file, blowing on a ticket or alone, departments reporting
in, a whistle nobody answered raising `whistle_unanswered` on the alerts' path and
going up community -> street -> district, staying escalated at the top; and one
whistle, one assessment per department in the measures and the reports."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.clock import ManualClock
from plugins.tickets.catalog import CatalogError, read_catalog
from plugins.tickets.config import TicketsConfig
from tests.mqtt_support import Broker, Recorder, bridge_online, mqtt_section
from tests.open311_support import WHISTLES
from tests.support import Running
from tests.ticket_support import (
    CATALOG,
    Heard,
    Listening,
    epoch,
    import_district,
    local,
    plugin_host,
    report,
    tickets_at,
    tickets_config,
)

MONDAY = "2026-01-05T09:00"


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
async def hall(tmp_path: Path, heard: Heard) -> AsyncIterator[Running]:
    config = tickets_config(tmp_path, catalog=CATALOG + WHISTLES)
    await import_district(tmp_path, config)
    async with tickets_at(config, ManualClock(local(MONDAY)), plugin_host((heard, "heard"))) as h:
        yield h


async def blow(hall: Running, role: str = "dispatcher", **body: Any) -> Any:
    r = await hall.client.post("/api/v1/tickets/whistles", json=body, headers=hall.as_role(role))
    await hall.host.clock.settle()  # the watcher has planned with it
    return r


async def report_in(hall: Running, whistle: int, department: str, role: str = "handler") -> Any:
    return await hall.client.post(
        f"/api/v1/tickets/whistles/{whistle}/report-in",
        json={"department": department, "note": "到"},
        headers=hall.as_role(role),
    )


async def whistle(hall: Running, whistle_id: int) -> dict[str, Any]:
    r = await hall.client.get(
        f"/api/v1/tickets/whistles/{whistle_id}", headers=hall.as_role("viewer")
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def at(hall: Running, when: str) -> None:
    await hall.host.clock.move_to(local(when))


def whistled(heard: Heard) -> list[dict[str, Any]]:
    """The whistle alerts a plugin heard (the fight's own deadline alerts left out)."""
    return [a for a in heard.alerts if a["kind"] == "whistle_unanswered"]


def whistling(hall: Running) -> Listening:
    """Every `tickets.whistle*` event on the bus, as an SSE client would get them."""
    return Listening(hall, lambda t: t.startswith("tickets.whistle"))


async def test_the_types_of_each_level(hall: Running) -> None:
    r = await hall.client.get("/api/v1/tickets/whistles/types", headers=hall.as_role("viewer"))
    types = {(t["level"], t["code"]): t for t in r.json()}
    assert list(types) == [
        ("community", "sanitation"),
        ("community", "security"),
        ("street", "fallback"),
        ("street", "problem"),
        ("district", "coordination"),
    ]
    assert types[("street", "fallback")]["kinds"] == [
        {"code": "ownerless", "name": "无主管部门事项"}
    ]
    assert types[("community", "sanitation")]["departments"] == ["sanitation"]


def test_bad_types_are_refused_at_their_lines(tmp_path: Path) -> None:
    bad = """
[[whistle]]
level = "community"
code = "sanitation"
name = "卫生哨"
deadline = "2-3h"
departments = ["nobody"]
escalate_to = "nowhere"
[[whistle]]
level = "street"
code = "problem"
name = "问题哨"
deadline = "1wd"
escalate_to = "key"
[[whistle]]
level = "street"
code = "problem"
name = "again"
deadline = "1wd"
[[whistle]]
level = "district"
code = "key"
name = "重点哨"
deadline = "1wd"
escalate_to = "higher"
"""
    path = tmp_path / "categories.toml"
    path.write_text(CATALOG + bad, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        read_catalog(path, TicketsConfig())
    said = [(p.line - CATALOG.count("\n"), p.message) for p in caught.value.problems]
    assert said == [
        (6, "whistle deadline: a report-in deadline is one value, not a range: '2-3h'"),
        (17, "whistle street 'problem' again"),
        (25, "a district whistle escalates nowhere"),
    ]
    path.write_text(CATALOG + bad.replace('"2-3h"', '"2h"').replace("again", "x"), encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        read_catalog(path, TicketsConfig())
    messages = [p.message for p in caught.value.problems]
    assert "department 'nobody' is not a [[department]] of this file" in messages
    assert "escalate_to 'nowhere' is not a street whistle of this file (problem)" in messages


async def test_blow_report_in_answered(hall: Running) -> None:
    t = (await report(hall, category="city.litter")).json()
    async with whistling(hall) as bus:
        r = await blow(hall, level="community", type="sanitation", ticket=t["id"], note="垃圾成堆")
        assert r.status_code == 201, r.text
        w = r.json()
        assert (w["state"], w["level"], w["type"], w["type_name"], w["ticket"]) == (
            "open", "community", "sanitation", "卫生哨", t["id"]
        )  # fmt: skip
        assert w["report_by"] == epoch("2026-01-05T11:00")  # 2h
        assert [c["department"] for c in w["calls"]] == ["sanitation"]  # the type's default
        await at(hall, "2026-01-05T10:00")
        r = await report_in(hall, w["id"], "sanitation")
        assert r.status_code == 200, r.text
        done = r.json()
        assert (done["state"], done["answered_at"]) == ("answered", epoch("2026-01-05T10:00"))
        (call,) = done["calls"]
        assert (call["reported_by"], call["on_time"], call["note"]) == ("test-handler", True, "到")
        await asyncio.sleep(0.05)
    assert [e.data["what"] for e in bus.events] == ["blown", "reported_in", "answered"]
    listed = await hall.client.get(
        "/api/v1/tickets/whistles",
        params={"ticket": t["id"], "state": "answered"},
        headers=hall.as_role("viewer"),
    )
    assert [x["id"] for x in listed.json()["whistles"]] == [w["id"]]


async def test_bad_whistles_and_report_ins(hall: Running) -> None:
    refused = [
        ({"level": "community", "type": "nothing"}, "no active community whistle 'nothing'"),
        ({"level": "street", "type": "fallback", "kind": "x"}, "'x' is not a kind of fallback"),
        ({"level": "community", "type": "sanitation", "ticket": 99}, "no ticket 99"),
        ({"level": "community", "type": "sanitation", "departments": ["ghost"]}, "'ghost'"),
    ]
    for body, says in refused:
        r = await blow(hall, **body)
        assert r.status_code == 422 and says in r.json()["error"]["message"], r.text
    assert (await blow(hall, level="town", type="x")).status_code == 422
    r = await blow(hall, role="handler", level="community", type="sanitation")
    assert r.status_code == 403
    r = await blow(
        hall, level="street", type="fallback", kind="ownerless", departments=["police", "law"]
    )
    w = r.json()
    assert (w["kind"], [c["department"] for c in w["calls"]]) == ("ownerless", ["law", "police"])
    assert (await report_in(hall, w["id"], "sanitation")).status_code == 422  # not called
    assert (await report_in(hall, w["id"], "police")).status_code == 200
    r = await report_in(hall, w["id"], "police")
    assert r.status_code == 409 and "already" in r.json()["error"]["message"]
    assert (await report_in(hall, 999, "police")).status_code == 404
    assert (await report_in(hall, w["id"], "law", role="viewer")).status_code == 403
    r = await hall.client.post(
        f"/api/v1/tickets/whistles/{w['id']}/close", headers=hall.as_role("dispatcher")
    )
    assert r.json()["state"] == "closed" and r.json()["waiting"] == ["law"]
    r = await report_in(hall, w["id"], "law")
    assert r.status_code == 409 and "closed" in r.json()["error"]["message"]


async def test_unanswered_goes_up_a_level_then_stays_at_the_top(
    hall: Running, heard: Heard
) -> None:
    t = (await report(hall, category="security.fight")).json()  # major
    async with whistling(hall) as bus:
        w = (await blow(hall, level="community", type="security", ticket=t["id"])).json()
        await hall.host.clock.settle()
        await at(hall, "2026-01-05T09:59")
        assert whistled(heard) == []
        await at(hall, "2026-01-05T10:00")  # 1h: police never came
        (first,) = whistled(heard)
        assert (first["kind"], first["whistle"], first["ticket"], first["level"]) == (
            "whistle_unanswered", w["id"], t["id"], "street"
        )  # fmt: skip
        assert first["major"] is True and first["waiting"] == ["police"]
        assert first["report_by"] == epoch("2026-01-06T17:30")  # the street's 1wd
        assert "escalated to the street (problem 问题哨)" in first["message"]
        now = await whistle(hall, w["id"])
        assert (now["state"], now["level"], now["type"], now["escalation"]) == (
            "open", "street", "problem", 1
        )  # fmt: skip
        calls = {c["department"]: c for c in now["calls"]}
        assert calls["police"]["due_at"] == epoch("2026-01-05T10:00")  # its first deadline
        assert calls["urban"]["due_at"] == epoch("2026-01-06T17:30")  # called at the street
        # Urban reports in on time; police has not, and the district calls law, which
        # does not come either.
        assert (await report_in(hall, w["id"], "urban")).status_code == 200
        await at(hall, "2026-01-06T17:30")
        assert [a["level"] for a in whistled(heard)] == ["street", "district"]
        assert whistled(heard)[1]["waiting"] == ["police"]
        await at(hall, "2026-01-06T19:30")  # the district's 2h
        top = whistled(heard)[2]
        assert (top["level"], top["report_by"], top["waiting"]) == (
            "district",
            None,
            ["law", "police"],
        )
        assert "at the top level (district) it stays escalated" in top["message"]
        assert (await whistle(hall, w["id"]))["state"] == "escalated"
        await at(hall, "2026-01-09T09:00")
        assert len(whistled(heard)) == 3  # said once
        assert (await report_in(hall, w["id"], "police")).status_code == 200
        assert (await report_in(hall, w["id"], "law")).status_code == 200
        done = await whistle(hall, w["id"])
        assert done["state"] == "answered"
        on_time = {c["department"]: c["on_time"] for c in done["calls"]}
        assert on_time == {"police": False, "urban": True, "law": False}
        await asyncio.sleep(0.05)
    alerts = [e for e in bus.events if e.type == "tickets.whistle_unanswered"]
    assert [e.data["level"] for e in alerts] == ["street", "district", "district"]


async def test_one_whistle_one_assessment(hall: Running) -> None:
    a = (
        await blow(hall, level="community", type="sanitation", departments=["sanitation", "police"])
    ).json()
    b = (
        await blow(hall, level="community", type="sanitation", departments=["sanitation", "law"])
    ).json()
    await at(hall, "2026-01-05T10:00")
    for w, dept in [(a, "sanitation"), (a, "police"), (b, "sanitation")]:
        assert (await report_in(hall, w["id"], dept)).status_code == 200
    await at(hall, "2026-01-05T12:00")  # b escalates: urban is called at the street
    await report_in(hall, b["id"], "law")  # late
    r = await hall.client.get(
        "/api/v1/tickets/whistles/assessment",
        params={"day": "2026-01-05"},
        headers=hall.as_role("viewer"),
    )
    body = r.json()
    units = {u["key"]: u for u in body["department"]}
    assert {k: u["counts"] for k, u in units.items()} == {
        "law": {"called": 1, "reported": 1, "on_time": 0},
        "police": {"called": 1, "reported": 1, "on_time": 1},
        "sanitation": {"called": 2, "reported": 2, "on_time": 2},
    }
    assert units["law"]["name"] == "区委政法委"
    assert body["district"]["counts"] == {"called": 4, "reported": 4, "on_time": 3}
    assert body["district"]["rates"]["on_time"]["percent"] == 75.0
    # urban's call is due the next working day: in that day's assessment, not reported.
    nxt = await hall.client.get(
        "/api/v1/tickets/whistles/assessment",
        params={"day": "2026-01-06"},
        headers=hall.as_role("viewer"),
    )
    assert [(u["key"], u["counts"]["reported"]) for u in nxt.json()["department"]] == [("urban", 0)]
    # The same in the measures and the reports.
    m = await hall.client.get(
        "/api/v1/tickets/measures", params={"day": "2026-01-05"}, headers=hall.as_role("viewer")
    )
    assert m.json()["whistles"] == {k: body[k] for k in ("district", "department")}
    r = await hall.client.get(
        "/api/v1/tickets/reports",
        params={"day": "2026-01-05", "format": "csv"},
        headers=hall.as_role("viewer"),
    )
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header = rows[0]
    col = header.index("按时报到率% whistles_on_time_rate")
    by_key = {(row[0], row[1]): row for row in rows[1:]}
    assert by_key[("district", "")][col] == "75.0"
    assert by_key[("department", "law")][col] == "0.0"
    assert by_key[("department", "law")][header.index("吹哨 whistles_called")] == "1"
    html = await hall.client.get(
        "/api/v1/tickets/reports",
        params={"day": "2026-01-05", "format": "html"},
        headers=hall.as_role("viewer"),
    )
    assert "一哨一考核" in html.text and "区委政法委" in html.text


async def test_an_unanswered_whistle_goes_out_on_mqtt(
    tmp_path: Path, broker: Broker, recorders: list[Recorder]
) -> None:
    config = tickets_config(tmp_path, extra=mqtt_section(broker), catalog=CATALOG + WHISTLES)
    clock = ManualClock(local(MONDAY))
    async with tickets_at(config, clock) as hall:
        await bridge_online(broker)
        rec = Recorder(broker.port, ["hall/tickets/alerts/#"])
        recorders.append(rec)
        w = (await blow(hall, level="community", type="sanitation")).json()
        await at(hall, "2026-01-05T11:00")
        message = await rec.wait(lambda m: m.topic == "hall/tickets/alerts/whistle_unanswered")
        alert = json.loads(message.payload)
        assert (alert["whistle"], alert["level"], alert["waiting"]) == (
            w["id"], "street", ["sanitation"]
        )  # fmt: skip
