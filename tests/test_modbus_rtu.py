"""The relay board over Modbus RTU: on a real serial line (two ptys joined by socat,
pymodbus's serial server on one end) and RTU framing over TCP (`socket://`)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.modbus.emulator import ModbusEmulator, ModbusOptions
from tests.support import free_port, running, wait_for

SOCAT = shutil.which("socat") or "/usr/bin/socat"


@pytest.fixture
async def serial_line(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """Two pty ends joined like a null-modem cable: (device side, controller side)."""
    a, b = str(tmp_path / "board"), str(tmp_path / "controller")
    proc = subprocess.Popen(
        [SOCAT, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not (Path(a).exists() and Path(b).exists()):
        assert time.monotonic() < deadline, "socat made no ptys"
        await asyncio.sleep(0.02)
    yield a, b
    proc.terminate()
    proc.wait(timeout=5)


def config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "gridhall.toml"
    path.write_text(
        textwrap.dedent(f"""
        [storage]
        path = "gridhall.db"
        [[bus]]
        id = "rs485"
        url = "{url}"
        baudrate = 9600
        gap_ms = 5
        timeout_ms = 500
        [[device]]
        id = "relay"
        kind = "power"
        driver = "modbus-relay"
        bus = "rs485"
        unit = 1
        poll_ms = 300
        [device.options]
        channels = 8
        [[device]]
        id = "relay-2"
        kind = "power"
        driver = "modbus-relay"
        bus = "rs485"
        unit = 2
        poll_ms = 300
        [device.options]
        channels = 4
        """)
    )
    return path


async def drive_every_action(tmp_path: Path, url: str, emu: ModbusEmulator) -> None:
    async with running(config(tmp_path, url)) as hall:
        await wait_for(lambda: all(d.available for d in hall.host.devices), timeout=10)
        op = hall.as_role("operator")
        post = hall.client.post
        assert (
            await post("/api/v1/devices/relay/actions/on", json={"channel": 3}, headers=op)
        ).status_code == 200
        assert await emu.coils(1, 0, 8) == [False, False, True] + [False] * 5
        assert (await post("/api/v1/devices/relay/actions/on", headers=op)).status_code == 200
        assert await emu.coils(1, 0, 8) == [True] * 8
        assert (
            await post("/api/v1/devices/relay/actions/off", json={"channel": 1}, headers=op)
        ).status_code == 200
        assert await emu.coils(1, 0, 2) == [False, True]
        assert (
            await post("/api/v1/devices/relay/actions/sequence_off", headers=op)
        ).status_code == 200
        assert await emu.coils(1, 0, 8) == [False] * 8
        assert (
            await post("/api/v1/devices/relay/actions/sequence_on", headers=op)
        ).status_code == 200
        assert await emu.coils(1, 0, 8) == [True] * 8
        # The other board on the same line got nothing of it.
        assert await emu.coils(2, 0, 4) == [False] * 4
        r = await post("/api/v1/devices/relay-2/actions/on", json={"channel": 2}, headers=op)
        assert r.status_code == 200 and await emu.coils(2, 0, 4) == [False, True, False, False]
        # A dead board on the line: unavailable, and its neighbour still answers.
        emu.silent_units.add(2)
        await wait_for(lambda: not hall.host.devices.get("relay-2").available, timeout=5)
        r = await post("/api/v1/devices/relay/actions/off", headers=op)
        assert r.status_code == 200 and await emu.coils(1, 0, 8) == [False] * 8


async def test_rtu_on_a_serial_line(tmp_path: Path, serial_line: tuple[str, str]) -> None:
    board, controller = serial_line
    emu = ModbusEmulator("", 0, ModbusOptions(units=[1, 2], coils=16))
    await emu.start_serial(board)
    try:
        await drive_every_action(tmp_path, controller, emu)
    finally:
        await emu.stop()


async def test_rtu_over_tcp(tmp_path: Path) -> None:
    emu = ModbusEmulator("127.0.0.1", free_port(), ModbusOptions(units=[1, 2], coils=16))
    emu.rtu = True
    await emu.start()
    try:
        await drive_every_action(tmp_path, f"socket://127.0.0.1:{emu.port}", emu)
    finally:
        await emu.stop()
