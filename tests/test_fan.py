"""`modbus-fan` through the HTTP API, checked in the drive's own holding registers.

Two register maps (a Delta-like drive and a small generic one) prove the map is
configuration: the same driver writes where the options say, and nowhere else.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.config import ConfigError, load
from daemon.pluginhost import PluginHost
from drivers.modbus.emulator import ModbusEmulator, ModbusOptions
from drivers.modbus.fan import contiguous_blocks
from tests.support import Running, free_port, relay_config, running, wait_for

FAN_UNIT = 3
# Delta: control word 0x2000 (2 run, 1 stop), frequency 0x2001 in 0.01 Hz, output
# frequency read back at 0x2103.
DELTA = """
[[device]]
id = "fan"
kind = "fan"
driver = "modbus-fan"
bus = "gw"
unit = 3
poll_ms = 100
[device.options]
run_register = 0x2000
run_value = 2
stop_value = 1
speed_register = 0x2001
speed_max = 5000
feedback_register = 0x2103
"""
# A small drive: run flag in register 10 (1 run, 0 stop), speed in 0.1 % at register 4.
GENERIC = """
[[device]]
id = "fan"
kind = "fan"
driver = "modbus-fan"
bus = "gw"
unit = 3
poll_ms = 100
[device.options]
run_register = 10
run_value = 1
stop_value = 0
speed_register = 4
speed_max = 1000
speed_min_percent = 20
"""


@pytest.fixture
async def gateway() -> AsyncIterator[ModbusEmulator]:
    """A gateway with a relay board (unit 1) and a drive (unit 3), with registers up to
    a Delta's read-back at 0x2103."""
    emu = ModbusEmulator(
        "127.0.0.1", free_port(), ModbusOptions(units=[1, FAN_UNIT], coils=16, registers=0x2200)
    )
    await emu.start()
    yield emu
    await emu.stop()


async def act(hall: Running, action: str, **args: Any) -> Any:
    return await hall.client.post(
        f"/api/v1/devices/fan/actions/{action}", json=args, headers=hall.as_role("operator")
    )


async def regs(emu: ModbusEmulator, address: int, count: int = 1) -> list[int]:
    return await emu.registers(FAN_UNIT, address, count)


async def test_delta_map_every_action_in_the_registers(
    tmp_path: Path, gateway: ModbusEmulator
) -> None:
    async with running(relay_config(tmp_path, gateway.port, extra=DELTA)) as hall:
        fan = hall.host.devices.get("fan")
        await wait_for(lambda: fan.available)
        assert fan.state == {"on": False, "percent": 0}

        r = await act(hall, "set_speed", percent=60)
        assert r.status_code == 200, r.text
        assert await regs(gateway, 0x2000, 2) == [2, 3000]  # running, 30.00 Hz
        # The state is the drive's own: its output has not ramped up yet.
        assert r.json()["state"] == {"on": True, "percent": 0}
        await gateway.set_registers(FAN_UNIT, 0x2103, [3000])  # the drive reached 30 Hz
        await wait_for(lambda: fan.state["percent"] == 60)

        r = await act(hall, "off")
        assert r.status_code == 200 and r.json()["state"]["on"] is False
        assert await regs(gateway, 0x2000, 2) == [1, 3000]  # stopped, setpoint kept

        r = await act(hall, "on")
        assert r.status_code == 200 and r.json()["state"]["on"] is True
        assert await regs(gateway, 0x2000, 2) == [2, 3000]

        r = await act(hall, "set_speed", percent=100)
        assert r.status_code == 200
        assert await regs(gateway, 0x2001) == [5000]

        r = await act(hall, "set_speed", percent=0)  # 0 stops the fan
        assert r.status_code == 200 and r.json()["state"]["on"] is False
        assert await regs(gateway, 0x2000, 2) == [1, 5000]
        # Nothing outside the map was written: the relay's unit and the drive's
        # registers around the map are untouched.
        assert await regs(gateway, 0x1FFF) == [0] and await regs(gateway, 0x2002) == [0]
        assert await gateway.registers(1, 0x2000, 2) == [0, 0]


async def test_generic_map_with_a_minimum_speed(tmp_path: Path, gateway: ModbusEmulator) -> None:
    async with running(relay_config(tmp_path, gateway.port, extra=GENERIC)) as hall:
        fan = hall.host.devices.get("fan")
        await wait_for(lambda: fan.available)

        r = await act(hall, "set_speed", percent=45)
        assert r.status_code == 200
        assert await regs(gateway, 10) == [1] and await regs(gateway, 4) == [450]
        # Without a feedback register the state is the setpoint while running.
        assert r.json()["state"] == {"on": True, "percent": 45}

        r = await act(hall, "set_speed", percent=5)  # under the minimum: runs at it
        assert await regs(gateway, 4) == [200]
        assert r.json()["state"] == {"on": True, "percent": 20}

        r = await act(hall, "off")
        assert await regs(gateway, 10) == [0]
        assert r.json()["state"] == {"on": False, "percent": 0}  # stopped: not turning
        # Nothing of the Delta map was touched.
        assert await regs(gateway, 0x2000, 2) == [0, 0]

        # Someone starts the drive at its keypad: the poll reads it from the drive.
        await gateway.set_registers(FAN_UNIT, 10, [1])
        await wait_for(lambda: fan.state == {"on": True, "percent": 20})


async def test_a_write_the_drive_drops_is_rejected_not_believed(
    tmp_path: Path, gateway: ModbusEmulator
) -> None:
    async with running(relay_config(tmp_path, gateway.port, extra=DELTA)) as hall:
        fan = hall.host.devices.get("fan")
        await wait_for(lambda: fan.available)
        gateway.ignored_writes.add((FAN_UNIT, 0x2000))  # keypad mode: run commands ignored
        r = await act(hall, "on")
        assert r.status_code == 502
        assert r.json()["error"]["code"] == "device_rejected"
        assert "0x2000" in r.json()["error"]["message"]
        assert fan.available and fan.state["on"] is False  # alive, and honest
        gateway.ignored_writes.clear()
        assert (await act(hall, "on")).status_code == 200


async def test_drive_lost_and_back_state_read_again(
    tmp_path: Path, gateway: ModbusEmulator
) -> None:
    async with running(relay_config(tmp_path, gateway.port, extra=DELTA)) as hall:
        fan = hall.host.devices.get("fan")
        await wait_for(lambda: fan.available)
        assert (await act(hall, "on")).status_code == 200

        await gateway.stop()
        # One poll (100 ms) plus the bus timeout (300 ms), with room to spare.
        await wait_for(lambda: not fan.available, timeout=2.0)
        r = await act(hall, "off")
        assert r.status_code == 503

        await gateway.start()
        back = time.monotonic()
        # reconnect_max_ms is 2 s: back within that plus a poll and a connect.
        await wait_for(lambda: fan.available, timeout=3.5)
        assert time.monotonic() - back < 3.5
        # The restarted drive lost its run command: the state is the drive's.
        assert fan.state == {"on": False, "percent": 0}
        assert (await act(hall, "on")).status_code == 200
        assert await regs(gateway, 0x2000) == [2]


def config_issues(path: Path) -> list[tuple[str, str]]:
    """(the text of the line named, the message) of every issue of the config."""
    plugins = PluginHost()
    plugins.load(entry_points=False)
    with pytest.raises(ConfigError) as caught:
        load(path, plugins)
    text = path.read_text().splitlines()
    return [(text[i.line - 1].strip(), i.message) for i in caught.value.issues]


def test_bad_registers_are_config_errors_on_their_lines(tmp_path: Path) -> None:
    fan = DELTA.replace("speed_max = 5000", "speed_max = 0").replace(
        "feedback_register = 0x2103", "feedback_register = 70000"
    )
    issues = config_issues(relay_config(tmp_path, free_port(), extra=fan))
    assert [line for line, _ in issues] == ["speed_max = 0", "feedback_register = 70000"]
    assert all(message.startswith("options.") for _, message in issues)


def test_equal_run_and_stop_values_are_a_config_error(tmp_path: Path) -> None:
    fan = DELTA.replace("stop_value = 1", "stop_value = 2")
    [(line, message)] = config_issues(relay_config(tmp_path, free_port(), extra=fan))
    assert line == "[device.options]"
    assert "run_value and stop_value are equal" in message


def test_reads_merge_only_consecutive_registers() -> None:
    assert contiguous_blocks([0x2000, 0x2103, 0x2001]) == [(0x2000, 2), (0x2103, 1)]
    assert contiguous_blocks([10, 4]) == [(4, 1), (10, 1)]
