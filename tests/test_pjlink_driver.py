"""The `pjlink` driver through the HTTP API, against the PJLink emulator: every action
checked on the projector's own state, warm-up and cool-down, ERR3 waited out, bad
inputs, a wrong password, the device's idle disconnect, a projector that goes away and
comes back, and faults on the wire."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.config import ConfigError, load
from daemon.errors import LinkDown, NoAnswer
from daemon.pluginhost import PluginHost
from drivers.emulators.stream import Fault
from drivers.pjlink.emulator import PJLinkEmulator, PJLinkEmulatorOptions
from drivers.pjlink.link import AuthFailed, PJLinkLink
from drivers.pjlink.protocol import Reply
from tests.support import Running, free_port, running, wait_for

DEVICE = "/api/v1/devices/screen-1"


def pjlink_config(
    tmp_path: Path,
    port: int,
    *,
    password: str | None = "secret",
    poll_ms: int = 200,
    inputs: str = '{ hdmi1 = "31", hdmi2 = "32", vga = "11", hdmi3 = "33" }',
) -> Path:
    """One projector on a bus of its own: link timeout 300 ms, backoff 1 to 2 s."""
    password_line = f'password = "{password}"' if password else ""
    text = f"""
    [api]
    listen = "127.0.0.1:{free_port()}"
    [storage]
    path = "gridhall.db"
    [[bus]]
    id = "projector"
    url = "tcp://127.0.0.1:{port}"
    timeout_ms = 300
    reconnect_min_ms = 1000
    reconnect_max_ms = 2000
    [[device]]
    id = "screen-1"
    kind = "screen"
    driver = "pjlink"
    bus = "projector"
    name = "Left projector"
    poll_ms = {poll_ms}
    [device.options]
    {password_line}
    inputs = {inputs}
    warmup_s = 10
    cooldown_s = 10
    busy_poll_ms = 50
    """
    path = tmp_path / "gridhall.toml"
    path.write_text(textwrap.dedent(text))
    return path


def emulator(**options: Any) -> PJLinkEmulator:
    opts = {"password": "secret", "warmup_s": 1.0, "cooldown_s": 1.0, **options}
    return PJLinkEmulator("127.0.0.1", free_port(), PJLinkEmulatorOptions(**opts))


@pytest.fixture
async def projector() -> AsyncIterator[PJLinkEmulator]:
    emu = emulator()
    await emu.start()
    yield emu
    await emu.stop()


async def act(hall: Running, action: str, **args: Any) -> Any:
    return await hall.client.post(
        f"{DEVICE}/actions/{action}", json=args, headers=hall.as_role("operator")
    )


async def ready(hall: Running) -> Any:
    device = hall.host.devices.get("screen-1")
    await wait_for(lambda: device.available)
    return device


async def test_every_action_reaches_the_projector(
    tmp_path: Path, projector: PJLinkEmulator
) -> None:
    async with running(pjlink_config(tmp_path, projector.port)) as hall:
        screen = await ready(hall)
        assert screen.state == {"power": "off", "input": None, "muted": None, "errors": {}}

        r = await act(hall, "on")
        assert r.status_code == 200, r.text
        assert r.json()["state"]["power"] == "warming"
        assert projector.power == "warming"
        await wait_for(lambda: screen.state["power"] == "on")
        # Read once the projector answers INPT ? and AVMT ?.
        await wait_for(lambda: screen.state["input"] == "vga" and screen.state["muted"] is False)

        r = await act(hall, "set_input", input="hdmi2")
        assert r.status_code == 200, r.text
        assert r.json()["state"]["input"] == "hdmi2"
        assert projector.input == "32"

        r = await act(hall, "mute", on=True)
        assert r.status_code == 200 and r.json()["state"]["muted"] is True
        assert projector.video_muted and projector.audio_muted
        r = await act(hall, "mute", on=False)
        assert r.status_code == 200 and r.json()["state"]["muted"] is False
        assert not projector.video_muted and not projector.audio_muted

        projector.error_status = "010020"
        await wait_for(lambda: screen.state["errors"] == {"lamp": "warning", "filter": "error"})
        projector.error_status = "000000"
        await wait_for(lambda: screen.state["errors"] == {})

        r = await act(hall, "off")
        assert r.status_code == 200 and r.json()["state"]["power"] == "cooling"
        assert projector.power == "cooling"
        await wait_for(lambda: screen.state["power"] == "off")
        assert projector.power == "off"
        # While off the projector answers ERR3 to INPT ?: the last input read stays.
        got = (await hall.client.get(DEVICE, headers=hall.as_role("viewer"))).json()
        assert got["available"] and got["state"]["input"] == "hdmi2"


async def test_unnamed_input_is_reported_by_its_code(
    tmp_path: Path, projector: PJLinkEmulator
) -> None:
    projector.power, projector.input = "on", "11"
    config = pjlink_config(tmp_path, projector.port, inputs='{ hdmi1 = "31" }')
    async with running(config) as hall:
        screen = await ready(hall)
        assert screen.state["input"] == "11"
        # The code the state shows is accepted back.
        r = await act(hall, "set_input", input="32")
        assert r.status_code == 200 and r.json()["state"]["input"] == "32"
        r = await act(hall, "set_input", input="hdmi1")
        assert r.status_code == 200 and r.json()["state"]["input"] == "hdmi1"


async def test_commands_during_warmup_and_cooldown_are_waited_out(
    tmp_path: Path, projector: PJLinkEmulator
) -> None:
    async with running(pjlink_config(tmp_path, projector.port)) as hall:
        await ready(hall)
        assert (await act(hall, "on")).status_code == 200
        assert projector.power == "warming"
        r = await act(hall, "set_input", input="hdmi1")
        assert r.status_code == 200, r.text
        assert r.json()["state"]["power"] == "on" and r.json()["state"]["input"] == "hdmi1"
        assert projector.input == "31"
        tries = [answer for command, answer in projector.log if command == "INPT 31"]
        assert tries == ["ERR3", "OK"]

        assert (await act(hall, "off")).status_code == 200
        assert projector.power == "cooling"
        r = await act(hall, "on")
        assert r.status_code == 200, r.text
        assert r.json()["state"]["power"] == "warming"
        tries = [answer for command, answer in projector.log if command == "POWR 1"]
        assert tries == ["OK", "ERR3", "OK"]


async def test_bad_inputs(tmp_path: Path, projector: PJLinkEmulator) -> None:
    async with running(pjlink_config(tmp_path, projector.port)) as hall:
        await ready(hall)
        r = await act(hall, "set_input", input="dvd")
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "bad_arguments"
        assert "'dvd'" in r.json()["error"]["message"]
        assert [command for command, _ in projector.log if command.startswith("INPT")] == [
            "INPT ?"
        ] * len([c for c, _ in projector.log if c.startswith("INPT")])

        # While off the projector refuses an input change: 409, the device is fine.
        r = await act(hall, "set_input", input="hdmi1")
        assert r.status_code == 409 and "off" in r.json()["error"]["message"]
        assert [a for c, a in projector.log if c == "INPT 31"] == ["ERR3", "ERR3"]

        projector.power = "on"
        # Configured, but the projector has no such input: it answers ERR2.
        r = await act(hall, "set_input", input="hdmi3")
        assert r.status_code == 422
        assert "'hdmi3'" in r.json()["error"]["message"]
        assert ("INPT 33", "ERR2") in projector.log
        assert hall.host.devices.get("screen-1").available


async def test_wrong_password_leaves_the_device_unavailable(tmp_path: Path) -> None:
    projector = emulator(password="right")
    await projector.start()
    try:
        async with running(pjlink_config(tmp_path, projector.port, password="wrong")) as hall:
            screen = hall.host.devices.get("screen-1")
            await wait_for(lambda: "authentication failed" in (screen.error or ""))
            got = (await hall.client.get(DEVICE, headers=hall.as_role("viewer"))).json()
            assert got["available"] is False
            assert "authentication failed" in got["error"]
            r = await act(hall, "on")
            assert r.status_code == 503
            assert projector.power == "off"
            # Retried with backoff, not in a tight loop.
            await asyncio.sleep(2.5)
            assert 2 <= projector.connections <= 5, projector.connections

            projector.options.password = "wrong"  # the projector's password now matches
            await wait_for(lambda: screen.available, timeout=10)
            assert (await act(hall, "on")).status_code == 200
    finally:
        await projector.stop()


async def test_idle_disconnect_does_not_make_the_device_unavailable(tmp_path: Path) -> None:
    projector = emulator(idle_timeout_s=0.5, power="on")
    await projector.start()
    try:
        async with running(pjlink_config(tmp_path, projector.port, poll_ms=3000)) as hall:
            screen = await ready(hall)
            bus = screen.bus
            assert bus is not None
            async with hall.host.events.subscribe() as events:
                await wait_for(lambda: projector.idle_drops >= 1)
                r = await act(hall, "set_input", input="hdmi1")
                assert r.status_code == 200 and projector.input == "31"
                # Dropped again after that action, then polled on a new connection,
                # then dropped once more.
                await wait_for(lambda: projector.idle_drops >= 3, timeout=10)
                r = await act(hall, "mute", on=True)
                assert r.status_code == 200 and projector.video_muted
                seen = [events.queue.get_nowait() for _ in range(events.queue.qsize())]
            assert not [e for e in seen if e.type == "availability"], seen
            assert screen.available
            assert bus.stats.connect_attempts == 1 and bus.stats.errors == 0
            assert bus.link.connects >= 4
    finally:
        await projector.stop()


async def test_projector_gone_and_back(tmp_path: Path, projector: PJLinkEmulator) -> None:
    async with running(pjlink_config(tmp_path, projector.port)) as hall:
        screen = await ready(hall)
        assert screen.state["power"] == "off"

        await projector.stop()
        # One poll (200 ms) plus the link timeout (300 ms), with room to spare.
        await wait_for(lambda: not screen.available, timeout=2.0)
        r = await act(hall, "on")
        assert r.status_code == 503

        # Switched on with the remote while the network was gone.
        projector.power, projector.input = "on", "11"
        await projector.start()
        # Within the bus's backoff bound (2 s), the device's probe and a poll.
        await wait_for(lambda: screen.available, timeout=6.0)
        assert screen.state["power"] == "on" and screen.state["input"] == "vga"
        assert (await act(hall, "set_input", input="hdmi2")).status_code == 200
        assert projector.input == "32"


@pytest.mark.parametrize(
    "fault,status,code",
    [
        ("garbage", 503, "protocol_error"),
        ("silent", 504, "timeout"),
        ("half", 504, "timeout"),
        ("disconnect", 503, "link_down"),
    ],
)
async def test_faults_answer_and_the_daemon_goes_on(
    tmp_path: Path, projector: PJLinkEmulator, fault: str, status: int, code: str
) -> None:
    projector.power = "on"
    async with running(pjlink_config(tmp_path, projector.port, poll_ms=3000)) as hall:
        screen = await ready(hall)
        if fault == "half":
            projector.half_replies = True
        else:
            projector.fault = Fault(fault)
        r = await act(hall, "mute", on=True)
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert error["code"] == code and error["message"]
        if fault == "half":
            assert "half a reply" in error["message"]
        assert not screen.available
        assert (await hall.client.get("/api/v1/health")).status_code == 200

        projector.fault, projector.half_replies = Fault.NONE, False
        await wait_for(lambda: screen.available, timeout=10)
        r = await act(hall, "mute", on=True)
        assert r.status_code == 200 and projector.video_muted


# -- the link on its own ----------------------------------------------------------------
async def test_link_without_a_password_for_a_projector_that_asks(
    projector: PJLinkEmulator,
) -> None:
    link = PJLinkLink.from_url(f"tcp://127.0.0.1:{projector.port}", timeout=0.5)
    await link.open()
    try:
        with pytest.raises(AuthFailed, match="authentication failed.*none configured"):
            await link.ask("POWR", "?", None)
        reply = await link.ask("POWR", "?", "secret")
        assert reply.param == "0"
    finally:
        await link.close()


async def test_link_never_takes_a_late_reply_for_the_next_one(
    projector: PJLinkEmulator,
) -> None:
    link = PJLinkLink.from_url(f"tcp://127.0.0.1:{projector.port}", timeout=0.3)
    await link.open()
    try:
        projector.power = "on"
        projector.reply_delay_s = 0.5
        with pytest.raises(NoAnswer):
            await link.ask("AVMT", "31", "secret")
        projector.reply_delay_s = 0
        await asyncio.sleep(0.4)  # the late "%1AVMT=OK" has been sent by now
        assert await link.ask("POWR", "?", "secret") == Reply("POWR", "1")
    finally:
        await link.close()


async def test_link_open_fails_on_refusal_and_on_a_silent_peer() -> None:
    port = free_port()
    link = PJLinkLink.from_url(f"tcp://127.0.0.1:{port}", timeout=0.3)
    with pytest.raises(LinkDown, match="cannot connect"):
        await link.open()

    accepted: list[asyncio.StreamWriter] = []

    async def mute_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # and never a word

    server = await asyncio.start_server(mute_peer, "127.0.0.1", port)
    try:
        with pytest.raises(LinkDown, match="no greeting"):
            await link.open()
        assert accepted
    finally:
        await link.close()
        server.close()
        for writer in accepted:
            writer.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "inputs,message",
    [
        ('{ hdmi1 = "31", dvd = "91" }', "inputs: input 'dvd': '91' is not a PJLink input code"),
        ('{ hdmi1 = "31", vga = 11 }', "inputs.vga: Input should be a valid string"),
        ('{ hdmi1 = "31", hdmi = "31" }', "inputs 'hdmi1' and 'hdmi' have one code"),
    ],
)
def test_input_codes_are_checked_with_the_config(tmp_path: Path, inputs: str, message: str) -> None:
    plugins = PluginHost()
    plugins.load(entry_points=False)
    with pytest.raises(ConfigError) as info:
        load(pjlink_config(tmp_path, 4352, inputs=inputs), plugins)
    assert message in str(info.value)
