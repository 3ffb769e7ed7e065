"""`GET /metrics` on running daemons: real emulators behind the buses, tickets and the
time bank through their APIs, every figure read back through the endpoint as
Prometheus parses it."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from daemon.clock import ManualClock
from drivers.modbus.emulator import ModbusEmulator
from tests.mqtt_support import Broker, mqtt_section
from tests.support import SECOND_BOARD, Running, bare_config, relay_config, running, wait_for
from tests.test_timebank_api import award, open_account
from tests.ticket_support import import_district, local, report, step, tickets_at, tickets_config
from tests.timebank_support import timebank

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

A_SCENE = """
[[scene]]
id = "lights"
step = [{ device = "relay", action = "on", args = { channel = 3 } }]
"""


async def scrape(hall: Running, role: str = "viewer") -> Samples:
    r = await hall.client.get("/metrics", headers=hall.as_role(role))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def named(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def labelled(entries: Iterable[tuple[str, float]], label: str) -> dict[frozenset, float]:
    return {frozenset({(label, k)}): v for k, v in entries}


async def test_buses_devices_actions_and_scenes(tmp_path: Path, modbus: ModbusEmulator) -> None:
    modbus.silent_units.add(2)  # a dead board on a live gateway
    async with running(relay_config(tmp_path, modbus.port, extra=SECOND_BOARD + A_SCENE)) as hall:
        relay = hall.host.devices.get("relay")
        bus = hall.host.devices.buses["gw"]
        await wait_for(lambda: relay.available and bus.stats.timeouts >= 1)
        samples = await scrape(hall)
        assert value(samples, "gridhall_device_available", device="relay", kind="power",
                     driver="modbus-relay") == 1  # fmt: skip
        assert value(samples, "gridhall_device_available", device="relay-2", kind="power",
                     driver="modbus-relay") == 0  # fmt: skip
        assert value(samples, "gridhall_bus_up", bus="gw") == 1
        assert value(samples, "gridhall_bus_errors_total", bus="gw", kind="timeout") >= 1
        assert value(samples, "gridhall_bus_exchanges_total", bus="gw") >= 2
        polls = value(samples, "gridhall_bus_queue_wait_seconds_count", bus="gw", priority="poll")
        assert polls >= 1

        op = hall.as_role("operator")
        r = await hall.client.post(
            "/api/v1/devices/relay/actions/on", json={"channel": 1}, headers=op
        )
        assert r.status_code == 200
        r = await hall.client.post("/api/v1/devices/relay-2/actions/on", headers=op)
        assert r.status_code == 503
        modbus.silent_units.add(1)  # the live board dies too: its next action fails
        r = await hall.client.post("/api/v1/devices/relay/actions/off", headers=op)
        failed = r.json()["error"]["code"]
        assert r.status_code in (503, 504) and failed in ("timeout", "unavailable")
        modbus.silent_units.discard(1)
        await wait_for(lambda: relay.available, timeout=5)
        run = await hall.client.post("/api/v1/scenes/lights/run", headers=op)
        assert run.status_code in (200, 202), run.text
        await wait_for(lambda: "lights" not in hall.host.scenes.running)

        samples = await scrape(hall)
        took = "gridhall_action_duration_seconds_count"
        assert value(samples, took, device="relay", action="on", result="ok") == 2  # API, scene
        assert value(samples, took, device="relay-2", action="on", result="unavailable") == 1
        assert value(samples, took, device="relay", action="off", result=failed) == 1
        assert value(samples, "gridhall_scene_runs_total", scene="lights", status="done") == 1
        commands = "gridhall_bus_queue_wait_seconds_count"
        assert value(samples, commands, bus="gw", priority="command") >= 2
        assert value(samples, "process_open_fds") > 0  # the process's own, per daemon


async def test_each_daemon_has_its_own_registry(tmp_path: Path, modbus: ModbusEmulator) -> None:
    """Two daemons in one process: an action on one is not counted by the other."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        running(relay_config(tmp_path / "a", modbus.port)) as a,
        running(relay_config(tmp_path / "b", modbus.port)) as b,
    ):
        await wait_for(lambda: a.host.devices.get("relay").available)
        r = await a.client.post("/api/v1/devices/relay/actions/on", headers=a.as_role("operator"))
        assert r.status_code == 200
        took = "gridhall_action_duration_seconds_count"
        assert value(await scrape(a), took, device="relay", action="on", result="ok") == 1
        assert not named(await scrape(b), took)


async def test_tickets_by_state_and_overdue(tmp_path: Path) -> None:
    config = tickets_config(tmp_path)
    await import_district(tmp_path, config)
    clock = ManualClock(local("2026-01-05T09:00"))  # a working Monday
    async with tickets_at(config, clock) as hall:
        first = (await report(hall)).json()["id"]  # before the first scrape: read from the store
        samples = await scrape(hall)
        assert value(samples, "gridhall_tickets_overdue") == 0
        second = (await report(hall, category="city.parking")).json()["id"]  # then: from changes
        assert (await step(hall, first, "register")).status_code == 200
        assert (await report(hall)).status_code == 201
        assert (await step(hall, second, "invalidate", reason="a duplicate")).status_code == 200

        with sqlite3.connect(hall.host.config.db_path) as conn:
            truth = conn.execute("SELECT state, count(*) FROM tickets GROUP BY state").fetchall()
        samples = await scrape(hall)
        assert named(samples, "gridhall_tickets") == labelled(truth, "state")
        assert sum(n for _, n in truth) == 3 and len(truth) >= 2

        await clock.advance(dt.timedelta(hours=3))  # past the two simple cases' 2 h
        assert value(await scrape(hall), "gridhall_tickets_overdue") == 2


async def test_the_time_bank_balances_sum_to_zero(tmp_path: Path) -> None:
    async with timebank(tmp_path) as hall:
        await open_account(hall, "resident:r-1")
        await open_account(hall, "member:m-1")
        await award(hall, "resident:r-1", "v:1", "volunteer-hours", minutes=90)
        await award(hall, "member:m-1", "patrol:1")
        samples = await scrape(hall)
        balances = named(samples, "gridhall_timebank_balance")
        assert balances[frozenset({("kind", "resident")})] == 90
        assert balances[frozenset({("kind", "pool")})] < 0
        assert sum(balances.values()) == 0
        assert value(samples, "gridhall_timebank_entries_total") == 2
        assert value(samples, "gridhall_timebank_accounts", kind="member") == 1


async def test_openmetrics_when_asked(hall: Running) -> None:
    r = await hall.client.get(
        "/metrics",
        headers={**hall.as_role("viewer"), "Accept": "application/openmetrics-text"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


async def test_the_mqtt_link_up_and_down(tmp_path: Path, broker: Broker) -> None:
    async with running(bare_config(tmp_path, mqtt_section(broker))) as hall:
        client = hall.daemon.mqtt.client
        await wait_for(lambda: client.connected)
        samples = await scrape(hall)
        assert value(samples, "gridhall_mqtt_up") == 1
        assert value(samples, "gridhall_mqtt_connects_total") == 1
        broker.stop()
        await wait_for(lambda: not client.connected)
        assert value(await scrape(hall), "gridhall_mqtt_up") == 0
