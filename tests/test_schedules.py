"""Schedules on a controllable clock, acting on the Modbus relay emulator.

The daemon runs in-process with a ManualClock in place of the wall clock: a test
stands on a chosen minute of China's calendar and steps it; `advance` returns once
the scheduler has run what fell due, so the coils can be read at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from daemon import audit, auth
from daemon.clock import ManualClock
from daemon.config import ConfigError, load
from daemon.pluginhost import PluginHost
from daemon.runtime import Daemon
from drivers.modbus.emulator import ModbusEmulator
from tests.support import (
    Process,
    Running,
    ThreadedEmulator,
    create_token_cli,
    free_port,
    relay_config,
    spawn_daemon,
    wait_for,
    wait_http,
)

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


def schedule(
    sid: str, cron: str, action: str, days: str = "working_day", group: str | None = None
) -> str:
    grp = f'group = "{group}"\n' if group else ""
    return (
        textwrap.dedent(
            f"""
        [[schedule]]
        id = "{sid}"
        cron = "{cron}"
        days = "{days}"
        device = "relay"
        action = "{action}"
        args = {{ channel = 1 }}
        """
        )
        + grp
    )


OPEN_CLOSE = schedule("open", "30 8 * * *", "on", group="hall") + schedule(
    "close", "0 18 * * *", "off", group="hall"
)


def plugins() -> PluginHost:
    p = PluginHost()
    p.load(entry_points=False)
    return p


@asynccontextmanager
async def hall_at(path: Path, clock: ManualClock) -> AsyncIterator[Running]:
    """`tests.support.running`, with the scheduler on `clock`; devices available."""
    daemon = Daemon(load(path, plugins()), plugins())
    daemon.host.schedules.clock = clock
    async with daemon.lifespan():
        tokens = {
            role: await auth.create_token(daemon.host.store, f"test-{role}", role)
            for role in ("viewer", "operator", "facility", "admin")
        }
        transport = httpx.ASGITransport(app=daemon.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gridhall") as client:
            hall = Running(daemon, client, tokens)
            await wait_for(lambda: all(d.available for d in hall.host.devices))
            await wait_for(lambda: clock.sleeping > 0)  # the scheduler waits for its time
            await clock.settle()
            yield hall


async def coil1(modbus: ModbusEmulator) -> bool:
    return bool((await modbus.coils(1, 0, 1))[0])


async def scheduled(hall: Running) -> list[dict[str, Any]]:
    """Audit rows of actions the scheduler ran, oldest first."""
    rows = await audit.recent(hall.host.store, target="relay")
    return [r for r in reversed(rows) if r["cause"].startswith("schedule:")]


async def listing(hall: Running, role: str = "viewer") -> dict[str, dict[str, Any]]:
    r = await hall.client.get("/api/v1/schedules", headers=hall.as_role(role))
    assert r.status_code == 200, r.text
    return {s["id"]: s for s in r.json()}


async def test_working_day_schedule_fires_on_makeup_sunday(
    tmp_path: Path, modbus: ModbusEmulator
) -> None:
    path = relay_config(tmp_path, modbus.port, extra=schedule("open", "30 8 * * *", "on"))
    clock = ManualClock(at("2026-01-04T08:29"))  # Sunday, worked in lieu of New Year
    async with hall_at(path, clock) as hall:
        assert not await coil1(modbus)
        await clock.advance(dt.timedelta(seconds=59))
        assert not await coil1(modbus) and await scheduled(hall) == []
        await clock.advance(dt.timedelta(seconds=1))
        assert await coil1(modbus)
        [row] = await scheduled(hall)
        assert row["cause"] == "schedule:open" and row["who"] == "scheduler"
        assert row["what"] == "on" and row["result"] == "ok"
        s = (await listing(hall))["open"]
        assert s["last_run"]["due"] == "2026-01-04T08:30:00+08:00"
        assert s["next_runs"][:2] == ["2026-01-05T08:30:00+08:00", "2026-01-06T08:30:00+08:00"]
        assert s["next_run"] == "2026-01-05T08:30:00+08:00"
        # The clock jumps over three runs (a suspended board): only the latest runs.
        await coil_off(hall)
        await clock.move_to(at("2026-01-08T09:00"))
        assert await coil1(modbus) and len(await scheduled(hall)) == 2
        s = (await listing(hall))["open"]
        assert s["last_run"]["due"] == "2026-01-08T08:30:00+08:00"


async def test_working_day_schedule_skips_monday_holiday(
    tmp_path: Path, modbus: ModbusEmulator
) -> None:
    path = relay_config(tmp_path, modbus.port, extra=schedule("open", "30 8 * * *", "on"))
    clock = ManualClock(at("2026-10-05T08:29"))  # Monday of the National Day week
    async with hall_at(path, clock) as hall:
        s = (await listing(hall))["open"]
        # 10-06 and 10-07 are holidays too; 10-10 is a make-up Saturday.
        assert s["next_runs"][:4] == [
            "2026-10-08T08:30:00+08:00",
            "2026-10-09T08:30:00+08:00",
            "2026-10-10T08:30:00+08:00",
            "2026-10-12T08:30:00+08:00",
        ]
        await clock.advance(dt.timedelta(minutes=2))
        await clock.move_to(at("2026-10-07T23:59"))
        assert not await coil1(modbus) and await scheduled(hall) == []
        await clock.move_to(at("2026-10-08T08:30"))
        assert await coil1(modbus)
        assert len(await scheduled(hall)) == 1


async def test_rest_day_and_holiday_conditions(tmp_path: Path, modbus: ModbusEmulator) -> None:
    extra = (
        schedule("rest", "0 10 * * *", "on", days="rest_day")
        + schedule("holiday", "0 10 * * *", "on", days="holiday")
        + schedule("makeup", "0 10 * * *", "on", days="makeup_day")
        + schedule("always", "0 10 * * 1", "on", days="any")
    )
    clock = ManualClock(at("2026-09-24T12:00"))
    async with hall_at(relay_config(tmp_path, modbus.port, extra=extra), clock) as hall:
        s = await listing(hall, "viewer")
        day = [t[:10] for t in s["rest"]["next_runs"]]
        assert day == ["2026-09-25", "2026-09-26", "2026-09-27", "2026-10-01", "2026-10-02"]
        assert [t[:10] for t in s["holiday"]["next_runs"]][:3] == [
            "2026-09-25",
            "2026-09-26",
            "2026-09-27",
        ]
        # After 10-10 the search reaches 2027, which no source knows: flagged, not guessed.
        assert s["makeup"]["next_runs"] == ["2026-10-10T10:00:00+08:00"]
        assert s["makeup"]["state"] == "calendar_unknown"
        assert s["rest"]["state"] == "ok"
        assert s["always"]["next_runs"][0] == "2026-09-28T10:00:00+08:00"


async def test_unknown_year_is_reported_not_guessed(tmp_path: Path, modbus: ModbusEmulator) -> None:
    path = relay_config(tmp_path, modbus.port, extra=schedule("open", "30 8 * * *", "on"))
    clock = ManualClock(at("2026-12-30T08:00"))
    async with hall_at(path, clock) as hall:
        s = (await listing(hall))["open"]
        assert s["state"] == "calendar_unknown"
        assert "2027" in s["message"]
        assert s["next_runs"] == ["2026-12-30T08:30:00+08:00", "2026-12-31T08:30:00+08:00"]
        await clock.move_to(at("2026-12-30T09:00"))
        await clock.move_to(at("2026-12-31T09:00"))
        assert len(await scheduled(hall)) == 2
        await coil_off(hall)
        # Monday 2027-01-04 would be a working day by the weekday rule: not guessed.
        await clock.move_to(at("2027-01-04T09:00"))
        assert len(await scheduled(hall)) == 2 and not await coil1(modbus)
        s = (await listing(hall))["open"]
        assert s["state"] == "calendar_unknown" and s["next_runs"] == []
        # The plan is published: an override file, then a reload.
        folder = tmp_path / "calendar"
        folder.mkdir()
        (folder / "2027.toml").write_text(
            '[[holiday]]\nname = "Test"\nfrom = 2027-01-05\nmakeup = [2027-01-10]\n'
        )
        assert await hall.host.schedules.reload()
        s = (await listing(hall))["open"]
        assert s["state"] == "ok" and s["message"] is None
        assert [t[:10] for t in s["next_runs"][:4]] == [
            "2027-01-06",
            "2027-01-07",
            "2027-01-08",
            "2027-01-10",
        ]


async def coil_off(hall: Running) -> None:
    r = await hall.client.post(
        "/api/v1/devices/relay/actions/off", json={"channel": 1}, headers=hall.as_role("operator")
    )
    assert r.status_code == 200, r.text


async def test_catch_up_after_downtime(
    tmp_path: Path, modbus: ModbusEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    path = relay_config(tmp_path, modbus.port, extra=OPEN_CLOSE)
    # First start ever, Friday 17:00: the hall should be open, so it opens.
    clock = ManualClock(at("2026-01-09T17:00"))
    async with hall_at(path, clock) as hall:
        await wait_for(lambda: modbus_coil_cache(hall))
        assert [r["cause"] for r in await scheduled(hall)] == ["schedule:open"]
        await clock.move_to(at("2026-01-09T18:00"))
        assert not await coil1(modbus)
    # Down over the weekend and past Monday's 08:30; up at 08:45: the hall opens.
    caplog.set_level(logging.INFO, logger="daemon.scheduler")
    clock = ManualClock(at("2026-01-12T08:45"))
    async with hall_at(path, clock) as hall:
        await wait_for(lambda: modbus_coil_cache(hall))
        assert await coil1(modbus)
        rows = await scheduled(hall)
        assert [r["cause"] for r in rows] == ["schedule:open", "schedule:close", "schedule:open"]
        assert "missed open due 2026-01-12T08:30:00+08:00" in caplog.text
        assert (await listing(hall))["open"]["last_run"]["due"] == "2026-01-12T08:30:00+08:00"
    # Up again at 09:00 the same day: nothing was missed, nothing runs twice.
    caplog.clear()
    clock = ManualClock(at("2026-01-12T09:00"))
    async with hall_at(path, clock) as hall:
        await coil_off(hall)
        await clock.advance(dt.timedelta(minutes=1))
        assert len(await scheduled(hall)) == 3
        assert "catch-up" not in caplog.text


def modbus_coil_cache(hall: Running) -> bool:
    """The relay as the daemon last read it has channel 1 on."""
    return bool(hall.host.devices.get("relay").state["channels"].get("1"))


async def test_manual_override_holds_until_next_transition(
    tmp_path: Path, modbus: ModbusEmulator
) -> None:
    path = relay_config(tmp_path, modbus.port, extra=OPEN_CLOSE)
    clock = ManualClock(at("2026-01-12T08:29"))  # Monday; the last transition: Friday's close
    async with hall_at(path, clock) as hall:
        await clock.advance(dt.timedelta(minutes=1))
        assert await coil1(modbus)
        await clock.move_to(at("2026-01-12T10:00"))
        await coil_off(hall)  # the operator closes the hall by hand
        entries = hall.host.schedules.entries
        await wait_for(lambda: entries["open"].override and entries["close"].override)
        s = await listing(hall)
        for sid in ("open", "close"):
            o = s[sid]["override"]
            assert o["by"] == "test-operator" and o["action"] == "off"
            assert o["until"] == "2026-01-12T18:00:00+08:00"
        # The scheduler does not fight the operator in between ...
        await clock.move_to(at("2026-01-12T17:59"))
        assert not await coil1(modbus)
        r = await hall.client.post(
            "/api/v1/devices/relay/actions/on",
            json={"channel": 1},
            headers=hall.as_role("operator"),
        )
        assert r.status_code == 200
        # ... and the next transition ends the override.
        await clock.move_to(at("2026-01-12T18:00"))
        assert not await coil1(modbus)
        s = await listing(hall)
        assert s["open"]["override"] is None and s["close"]["override"] is None
        await clock.move_to(at("2026-01-13T08:30"))
        assert await coil1(modbus)
        causes = [r["cause"] for r in await audit.recent(hall.host.store, target="relay")]
        assert causes[::-1][-4:] == ["api", "api", "schedule:close", "schedule:open"]


async def test_transition_waits_for_a_down_device(tmp_path: Path, modbus: ModbusEmulator) -> None:
    """A transition that finds the board down is owed to it, and runs when it is back."""
    path = relay_config(tmp_path, modbus.port, extra=OPEN_CLOSE)
    clock = ManualClock(at("2026-01-12T08:00"))
    async with hall_at(path, clock) as hall:
        relay = hall.host.devices.get("relay")
        await modbus.stop()
        await wait_for(lambda: not relay.available)
        await clock.move_to(at("2026-01-12T08:30"))
        s = (await listing(hall))["open"]
        assert s["state"] == "waiting" and s["pending"] == "2026-01-12T08:30:00+08:00"
        await modbus.start()
        await wait_for(lambda: relay.available, timeout=15)
        await wait_for(lambda: hall.host.schedules.entries["open"].pending is None)
        await clock.settle()
        assert await coil1(modbus)
        assert (await listing(hall))["open"]["state"] == "ok"


async def test_api_edits_and_reload(tmp_path: Path, modbus: ModbusEmulator) -> None:
    path = relay_config(tmp_path, modbus.port, extra=OPEN_CLOSE)
    clock = ManualClock(at("2026-01-12T12:00"))
    async with hall_at(path, clock) as hall:
        fac = hall.as_role("facility")
        body = {
            "id": "fan-test",
            "cron": "0 9 * * 1-5",
            "days": "working_day",
            "device": "relay",
            "action": "on",
            "args": {"channel": 2},
        }
        r = await hall.client.post("/api/v1/schedules", json=body, headers=fac)
        assert r.status_code == 201, r.text
        assert r.json()["origin"] == "api"
        assert r.json()["next_runs"][0] == "2026-01-13T09:00:00+08:00"
        r = await hall.client.post("/api/v1/schedules", json=body, headers=fac)
        assert r.status_code == 409
        bad = {**body, "device": "nope"}
        r = await hall.client.put("/api/v1/schedules/fan-test", json=bad, headers=fac)
        assert r.status_code == 422 and "nope" in r.json()["error"]["message"]
        r = await hall.client.put(
            "/api/v1/schedules/fan-test", json={**body, "cron": "99 9 * * *"}, headers=fac
        )
        assert r.status_code == 422 and "cron" in r.json()["error"]["message"]
        r = await hall.client.put(
            "/api/v1/schedules/fan-test", json={**body, "cron": "15 9 * * *"}, headers=fac
        )
        assert r.status_code == 200 and r.json()["next_runs"][0] == "2026-01-13T09:15:00+08:00"
        await clock.move_to(at("2026-01-13T09:15"))
        assert (await modbus.coils(1, 1, 1)) == [True]
        # A config schedule edited through the API; another deleted.
        r = await hall.client.put(
            "/api/v1/schedules/open",
            json={**body, "id": "open", "cron": "0 8 * * *", "args": {"channel": 1}},
            headers=fac,
        )
        assert r.status_code == 200 and r.json()["origin"] == "api"
        assert (await hall.client.delete("/api/v1/schedules/close", headers=fac)).status_code == 204
        assert (await hall.client.get("/api/v1/schedules/close", headers=fac)).status_code == 404
        # SIGHUP with the same file: the API's edits stand.
        assert await hall.host.schedules.reload()
        s = await listing(hall)
        assert set(s) == {"open", "fan-test"} and s["open"]["cron"] == "0 8 * * *"
        # The file changes `close`: the file's newer version comes back.
        path.write_text(path.read_text().replace('"0 18 * * *"', '"30 18 * * *"'))
        assert await hall.host.schedules.reload()
        s = await listing(hall)
        assert s["close"]["cron"] == "30 18 * * *" and s["close"]["origin"] == "config"
        assert s["open"]["cron"] == "0 8 * * *"
        edits = [
            r["what"]
            for r in await audit.recent(hall.host.store)
            if r["target"] and r["target"].startswith("schedule:")
        ]
        assert edits[::-1] == [
            "schedule.create",
            "schedule.update",
            "schedule.update",
            "schedule.delete",
        ]
        assert (
            await hall.client.delete("/api/v1/schedules/fan-test", headers=fac)
        ).status_code == 204
        assert (
            await hall.client.delete("/api/v1/schedules/fan-test", headers=fac)
        ).status_code == 404


def test_config_errors_have_lines(tmp_path: Path) -> None:
    extra = """
[[schedule]]
id = "a"
cron = "30 8 * *"
device = "relay"
action = "on"

[[schedule]]
id = "b"
cron = "30 8 * * *"
days = "weekdays"
device = "relay"
action = "on"

[[schedule]]
id = "c"
cron = "30 8 * * *"
device = "nope"
action = "on"

[[schedule]]
id = "d"
cron = "30 8 * * *"
device = "relay"
action = "on"
args = { chanel = 1 }

[[schedule]]
id = "e"
cron = "30 8 * * *"
tz = "Mars/Base"
scene = "x"

[calendar]
tz = "Asia/Shanghai"
office_hours = ["17:00-08:00"]
"""
    path = relay_config(tmp_path, 1502, extra=extra)
    (tmp_path / "calendar").mkdir()
    (tmp_path / "calendar" / "2027.toml").write_text(
        '[[holiday]]\nname = "X"\nfrom = 2027-01-01\nmakeup = [2027-01-04]\n'
    )
    with pytest.raises(ConfigError) as err:
        load(path, plugins())
    text = str(err.value)
    lines = path.read_text().splitlines()

    def line_of(needle: str, after: str) -> int:
        start = lines.index(after)
        return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1

    for needle, after, words in [
        ('cron = "30 8 * *"', 'id = "a"', "bad cron expression"),
        ('days = "weekdays"', 'id = "b"', "days"),
        ('device = "nope"', 'id = "c"', "device 'nope' does not exist"),
        ("args = { chanel = 1 }", 'id = "d"', "args.chanel"),
        ('tz = "Mars/Base"', 'id = "e"', "unknown time zone"),
        ('office_hours = ["17:00-08:00"]', "[calendar]", "not after the start"),
    ]:
        n = line_of(needle, after)
        assert any(f":{n}: " in issue and words in issue for issue in text.splitlines()), (
            needle,
            text,
        )
    assert "2027.toml:4: X: make-up day 2027-01-04 is not a weekend day" in text


LIGHTS = """
[[scene]]
id = "lights"
[[scene.step]]
device = "relay"
action = "on"
args = { channel = 3 }

[[schedule]]
id = "lights-on"
cron = "30 8 * * *"
scene = "lights"

[[schedule]]
id = "lights-off"
cron = "0 18 * * *"
device = "relay"
action = "off"
args = { channel = 3 }
"""


async def test_schedule_runs_a_scene_with_its_cause(tmp_path: Path, modbus: ModbusEmulator) -> None:
    path = relay_config(tmp_path, modbus.port, extra=LIGHTS)
    clock = ManualClock(at("2026-01-12T08:29"))
    async with hall_at(path, clock) as hall:
        async with hall.host.events.subscribe() as sub:
            await clock.advance(dt.timedelta(minutes=1))
            started = await anext(e async for e in sub if e.type == "scene.started")
        assert started.data["cause"] == "schedule:lights-on"
        await wait_for(lambda: hall.host.devices.get("relay").state["channels"]["3"])
        # The scene's own actions are the schedule's, not a person's: no override.
        entries = hall.host.schedules.entries
        await clock.settle()
        assert entries["lights-off"].override is None
        # A hand on another channel of the board does not override channel 3's schedule;
        # one on channel 3 does.
        async with hall.host.events.subscribe() as sub:
            await act(hall, "on", 5)
            await act(hall, "off", 3)
            # The scheduler handles events in order: a wrong override from channel 5
            # would come first.
            first = await anext(
                e async for e in sub if e.type == "schedule" and e.data["event"] == "override"
            )
        assert first.source == "lights-off" and first.data["action"] == "off"
        assert entries["lights-off"].override is not None
        rows = await audit.recent(hall.host.store, target="relay")
        assert [r["cause"] for r in rows[::-1]] == ["scene:lights", "api", "api"]


async def act(hall: Running, action: str, channel: int) -> None:
    r = await hall.client.post(
        f"/api/v1/devices/relay/actions/{action}",
        json={"channel": channel},
        headers=hall.as_role("operator"),
    )
    assert r.status_code == 200, r.text


def test_sighup_reloads_the_config_schedules(
    tmp_path: Path, modbus_thread: ThreadedEmulator, processes: list[Process]
) -> None:
    port = free_port()
    config = relay_config(
        tmp_path, modbus_thread.port, api_port=port, extra=schedule("a", "0 9 * * *", "on")
    )
    token = create_token_cli(config, "viewer")
    proc = spawn_daemon(config, port)
    processes.append(proc)
    wait_http(proc.url + "/api/v1/health")
    headers = {"Authorization": f"Bearer {token}"}

    def ids() -> list[str]:
        r = httpx.get(proc.url + "/api/v1/schedules", headers=headers, timeout=5)
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()]

    assert ids() == ["a"]
    config.write_text(config.read_text() + schedule("b", "0 18 * * *", "off"))
    proc.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while ids() != ["a", "b"]:
        assert time.monotonic() < deadline, proc.output()
        time.sleep(0.05)
    # A config with an error changes nothing, and says why.
    config.write_text(config.read_text() + schedule("c", "0 99 * * *", "off"))
    proc.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "nothing changed" not in proc.output():
        assert time.monotonic() < deadline, proc.output()
        time.sleep(0.05)
    assert ids() == ["a", "b"]
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(timeout=10) == 0
