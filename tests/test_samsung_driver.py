"""The samsung-mdc driver through the HTTP API, against the MDC emulator over TCP and
over a real serial line (a pty), checked on the emulator's own displays."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.config import ConfigError, load
from daemon.pluginhost import PluginHost
from drivers.emulators.stream import Fault, Session
from drivers.samsung import protocol as mdc
from drivers.samsung.emulator import MDCEmulator, MDCEmulatorOptions
from tests.support import Running, free_port, running, wait_for

INPUTS = "{ hdmi1 = 0x21, hdmi2 = 0x23, dp = 0x25, hdmi3 = 0x31 }"  # the display lacks hdmi3


def mdc_config(
    tmp_path: Path, url: str, units: dict[str, int], poll_ms: int = 200, timeout_ms: int = 300
) -> Path:
    """One bus (a TCP link or a serial line) with a display per `units` entry."""
    text = f"""
    [api]
    listen = "127.0.0.1:{free_port()}"
    [storage]
    path = "gridhall.db"
    [[bus]]
    id = "displays"
    url = "{url}"
    timeout_ms = {timeout_ms}
    reconnect_min_ms = 1000
    reconnect_max_ms = 2000
    """
    for device_id, unit in units.items():
        text += f"""
    [[device]]
    id = "{device_id}"
    kind = "screen"
    driver = "samsung-mdc"
    bus = "displays"
    unit = {unit}
    poll_ms = {poll_ms}
    [device.options]
    inputs = {INPUTS}
    """
    path = tmp_path / "gridhall.toml"
    path.write_text(textwrap.dedent(text))
    return path


async def act(
    hall: Running, device: str, action: str, body: object = None
) -> tuple[int, dict[str, Any]]:
    r = await hall.client.post(
        f"/api/v1/devices/{device}/actions/{action}", json=body, headers=hall.as_role("operator")
    )
    return r.status_code, r.json()


@pytest.fixture
async def emulator() -> AsyncIterator[MDCEmulator]:
    emu = MDCEmulator("127.0.0.1", free_port(), MDCEmulatorOptions(ids=[1, 2]))
    yield emu
    await emu.stop()


async def serve(emu: MDCEmulator, transport: str) -> str:
    """Start the emulator; the bus URL that reaches it."""
    if transport == "tcp":
        await emu.start()
        return f"tcp://127.0.0.1:{emu.port}"
    return await emu.start_pty()


def sent(emu: MDCEmulator, cmd: int) -> list[tuple[int, bytes]]:
    """(display id, data) of every request with this command the emulator received."""
    return [(i, data) for i, c, data in emu.requests if c == cmd]


@pytest.mark.parametrize("transport", ["tcp", "pty"])
async def test_every_action_reaches_the_display(
    tmp_path: Path, emulator: MDCEmulator, transport: str
) -> None:
    display = emulator.displays[1]
    display.power, display.input = False, 0x23
    url = await serve(emulator, transport)
    async with running(mdc_config(tmp_path, url, {"screen": 1})) as hall:
        screen = hall.host.devices.get("screen")
        await wait_for(lambda: screen.available)
        # Read from the display itself, not assumed.
        assert screen.state == {"power": "off", "input": "hdmi2", "muted": False}

        status, body = await act(hall, "screen", "on")
        assert status == 200, body
        assert body["state"]["power"] == "on" and display.power is True

        status, body = await act(hall, "screen", "set_input", {"input": "dp"})
        assert status == 200, body
        assert body["state"]["input"] == "dp" and display.input == 0x25

        status, body = await act(hall, "screen", "mute", {"on": True})
        assert status == 200, body
        assert body["state"]["muted"] is True and display.mute is True
        status, body = await act(hall, "screen", "mute", {"on": False})
        assert status == 200, body
        assert body["state"]["muted"] is False and display.mute is False

        status, body = await act(hall, "screen", "off")
        assert status == 200, body
        assert body["state"]["power"] == "off" and display.power is False
        assert sent(emulator, mdc.POWER) == [(1, b"\x01"), (1, b"\x00")]

        # An input name the config does not have: 422, and nothing reaches the display.
        status, body = await act(hall, "screen", "set_input", {"input": "vga"})
        assert status == 422 and "vga" in body["error"]["message"]
        assert "hdmi1" in body["error"]["message"]
        assert sent(emulator, mdc.INPUT) == [(1, b"\x25")]

        # A source with no name (the remote picked MagicInfo): the raw code, as a string.
        display.input = 0x60
        await wait_for(lambda: screen.state["input"] == "96")


async def test_two_displays_on_one_chain_each_get_only_their_own(
    tmp_path: Path, emulator: MDCEmulator
) -> None:
    one, two = emulator.displays[1], emulator.displays[2]
    one.input, two.input = 0x21, 0x23
    url = await emulator.start_pty()
    async with running(mdc_config(tmp_path, url, {"left": 1, "right": 2})) as hall:
        left, right = hall.host.devices.get("left"), hall.host.devices.get("right")
        await wait_for(lambda: left.available and right.available)
        assert left.state["input"] == "hdmi1" and right.state["input"] == "hdmi2"

        status, body = await act(hall, "right", "on")
        assert status == 200, body
        status, body = await act(hall, "right", "set_input", {"input": "dp"})
        assert status == 200 and body["state"] == {"power": "on", "input": "dp", "muted": False}
        assert (two.power, two.input) == (True, 0x25)
        assert (one.power, one.input) == (False, 0x21)

        status, body = await act(hall, "left", "mute", {"on": True})
        assert status == 200 and body["state"]["muted"] is True
        assert one.mute is True and two.mute is False

        assert sent(emulator, mdc.POWER) == [(2, b"\x01")]
        assert sent(emulator, mdc.INPUT) == [(2, b"\x25")]
        assert sent(emulator, mdc.MUTE) == [(1, b"\x01")]
        # Each polls its own id and keeps its own state.
        assert {i for i, _ in sent(emulator, mdc.STATUS)} == {1, 2}
        await wait_for(lambda: left.state["input"] == "hdmi1" and right.state["input"] == "dp")


async def test_a_nak_is_a_typed_error_and_the_display_stays_available(
    tmp_path: Path, emulator: MDCEmulator
) -> None:
    url = await serve(emulator, "tcp")
    # No poll during the test: a refused poll would fault the display on its own.
    async with running(mdc_config(tmp_path, url, {"screen": 1}, poll_ms=60_000)) as hall:
        screen = hall.host.devices.get("screen")
        await wait_for(lambda: screen.available)

        # A configured input this model does not have: the display says "bad value".
        status, body = await act(hall, "screen", "set_input", {"input": "hdmi3"})
        assert status == 422, body
        assert body["error"]["code"] == "bad_arguments"
        assert "NAK code 0x02" in body["error"]["message"]
        assert emulator.displays[1].input == 0x21
        assert screen.available

        # Busy: the display refuses for now.
        emulator.fault = Fault.BUSY
        status, body = await act(hall, "screen", "on")
        assert status == 502, body
        assert body["error"]["code"] == "device_rejected"
        assert "NAK code 0x03" in body["error"]["message"]
        assert screen.available and emulator.displays[1].power is False

        emulator.fault = Fault.NONE
        status, body = await act(hall, "screen", "on")
        assert status == 200 and body["state"]["power"] == "on"


async def test_display_loss_and_return_reads_state_back(
    tmp_path: Path, emulator: MDCEmulator
) -> None:
    url = await serve(emulator, "tcp")
    async with running(mdc_config(tmp_path, url, {"screen": 1})) as hall:
        screen = hall.host.devices.get("screen")
        await wait_for(lambda: screen.available)
        status, _ = await act(hall, "screen", "on")
        assert status == 200

        await emulator.stop()
        # One poll (200 ms) plus the timeout (300 ms), with room to spare.
        await wait_for(lambda: not screen.available, timeout=3.0)
        status, body = await act(hall, "screen", "off")
        assert status == 503 and body["error"]["code"] == "unavailable"

        # Meanwhile someone used the remote.
        display = emulator.displays[1]
        display.power, display.input, display.mute = False, 0x25, True
        assert screen.state["power"] == "on"

        await emulator.start()
        # reconnect_max_ms is 2 s: back within that, one poll and a connect, generously.
        await wait_for(lambda: screen.available, timeout=5.0)
        assert screen.state == {"power": "off", "input": "dp", "muted": True}
        status, body = await act(hall, "screen", "mute", {"on": False})
        assert status == 200 and display.mute is False


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("garbage", 503, "protocol_error"),
        ("silent", 504, "timeout"),
        ("half", 504, "timeout"),
    ],
)
async def test_garbage_silence_and_half_frames(
    tmp_path: Path, emulator: MDCEmulator, fault: str, status: int, code: str
) -> None:
    url = await serve(emulator, "tcp")
    async with running(mdc_config(tmp_path, url, {"screen": 1}, poll_ms=1000)) as hall:
        screen = hall.host.devices.get("screen")
        await wait_for(lambda: screen.available)
        # Right after a poll, so the action, not the next poll, meets the fault first.
        polls = len(sent(emulator, mdc.STATUS))
        await wait_for(lambda: len(sent(emulator, mdc.STATUS)) > polls)
        if fault == "half":
            emulator.half_replies = True
        else:
            emulator.fault = Fault(fault)

        got, body = await act(hall, "screen", "on")
        assert got == status, body
        assert body["error"]["code"] == code and body["error"]["message"]
        assert not screen.available and screen.error
        health = (await hall.client.get("/api/v1/health")).json()
        assert health["status"] == "degraded"

        emulator.fault, emulator.half_replies = Fault.NONE, False
        polls = len(sent(emulator, mdc.STATUS))
        await wait_for(lambda: screen.available, timeout=5.0)
        # The first read after the fault succeeded: no stale half frame spoiled it.
        assert len(sent(emulator, mdc.STATUS)) == polls + 1
        got, body = await act(hall, "screen", "on")
        assert got == 200 and emulator.displays[1].power is True


class StrayAckEmulator(MDCEmulator):
    """Sends a late power ack (left over from a timed-out request) before each status."""

    def feed(self, session: Session, data: bytes) -> bytes:
        reply = super().feed(session, data)
        if mdc.Frame(mdc.STATUS, 1, b"") in mdc.FrameReader().feed(data):
            return mdc.ack(1, mdc.POWER, b"\x00") + reply
        return reply


async def test_a_late_reply_to_another_command_does_not_answer_a_request(
    tmp_path: Path,
) -> None:
    emu = StrayAckEmulator("127.0.0.1", free_port())
    emu.displays[1].input = 0x23
    await emu.start()
    try:
        async with running(mdc_config(tmp_path, f"tcp://127.0.0.1:{emu.port}", {"s": 1})) as hall:
            screen = hall.host.devices.get("s")
            await wait_for(lambda: screen.available)
            assert screen.state == {"power": "off", "input": "hdmi2", "muted": False}
            polls = len(sent(emu, mdc.STATUS))
            await wait_for(lambda: len(sent(emu, mdc.STATUS)) > polls + 2)
            assert screen.available
    finally:
        await emu.stop()


# -- the emulator's own answers --------------------------------------------------------
def test_emulator_answers_nak_and_broadcast() -> None:
    emu = MDCEmulator("127.0.0.1", 0, MDCEmulatorOptions(ids=[1, 2], inputs=[0x21, 0x25]))
    session = Session(lambda data: None, lambda: None)
    assert emu.feed(session, mdc.set_value(mdc.POWER, 1, 1)) == mdc.ack(1, mdc.POWER, b"\x01")
    assert emu.feed(session, mdc.get(0x99, 1)) == mdc.nak(1, 0x99, mdc.NAK_UNSUPPORTED)
    assert emu.feed(session, mdc.set_value(mdc.INPUT, 1, 0x23)) == mdc.nak(
        1, mdc.INPUT, mdc.NAK_BAD_VALUE
    )
    assert emu.feed(session, mdc.set_value(mdc.MUTE, 1, 7)) == mdc.nak(
        1, mdc.MUTE, mdc.NAK_BAD_VALUE
    )
    assert emu.feed(session, mdc.get(mdc.POWER, 3)) == b""  # no display 3 on the chain
    # Broadcast: every display obeys, none answers.
    assert emu.feed(session, mdc.set_value(mdc.INPUT, mdc.BROADCAST, 0x25)) == b""
    assert emu.displays[1].input == emu.displays[2].input == 0x25
    # A frame torn across reads is answered once whole; noise is ignored.
    request = mdc.get(mdc.STATUS, 2)
    assert emu.feed(session, b"\x00\x13" + request[:3]) == b""
    reply = emu.feed(session, request[3:])
    [ack] = mdc.ReplyParser(2).feed(reply)
    assert ack == mdc.Ack(mdc.STATUS, bytes([0, 20, 0, 0x25, 0x10, 0, 0]))
    assert emu.busy_reply(session, mdc.get(mdc.STATUS, 1)) == mdc.nak(
        1, mdc.STATUS, mdc.NAK_NOT_NOW
    )


# -- config checks ---------------------------------------------------------------------
def _check(tmp_path: Path, unit: int, inputs: str) -> list[str]:
    path = tmp_path / "gridhall.toml"
    path.write_text(
        textwrap.dedent(f"""
        [[device]]
        id = "screen"
        kind = "screen"
        driver = "samsung-mdc"
        url = "tcp://127.0.0.1:1515"
        unit = {unit}
        [device.options]
        inputs = {inputs}
        """)
    )
    plugins = PluginHost()
    plugins.load(entry_points=False)
    try:
        load(path, plugins)
    except ConfigError as exc:
        return [i.message for i in exc.issues]
    return []


def test_config_is_validated(tmp_path: Path) -> None:
    assert _check(tmp_path, 1, "{ hdmi1 = 0x21 }") == []
    [broadcast] = _check(tmp_path, 0xFE, "{ hdmi1 = 0x21 }")
    assert "broadcast" in broadcast
    [twice] = _check(tmp_path, 1, "{ hdmi1 = 0x21, pc = 0x21 }")
    assert "'hdmi1' and 'pc'" in twice
    [too_big] = _check(tmp_path, 1, "{ hdmi1 = 0x121 }")
    assert "hdmi1" in too_big
    [not_int] = _check(tmp_path, 1, '{ hdmi1 = "31" }')
    assert "hdmi1" in not_int
