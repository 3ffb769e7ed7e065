"""`relay-curtain` through the HTTP API, checked on the relay board's own coils.

The curtain drives channels 5 (open) and 6 (close) of the board "relay" (unit 1, coils
4 and 5). A full run takes travel_s = 1.0 s (plus the 10 % end-stop margin).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.config import ConfigError, load
from daemon.pluginhost import PluginHost
from drivers.modbus.emulator import ModbusEmulator
from tests.support import Running, free_port, relay_config, running, wait_for

CURTAIN = """
[[device]]
id = "curtain"
kind = "curtain"
driver = "relay-curtain"
name = "Window curtain"
poll_ms = 100
[device.options]
relay = "relay"
open_channel = 5
close_channel = 6
travel_s = 1.0
reverse_pause_ms = 50
"""
OPEN_COIL = 4  # channel 5 on unit 1


def curtain_config(tmp_path: Path, modbus: ModbusEmulator, extra: str = "") -> Path:
    return relay_config(tmp_path, modbus.port, extra=CURTAIN + extra)


async def pair(modbus: ModbusEmulator) -> list[bool]:
    """The (open, close) coils as the board has them."""
    return await modbus.coils(1, OPEN_COIL, 2)


async def act(hall: Running, device: str, action: str, **args: Any) -> Any:
    return await hall.client.post(
        f"/api/v1/devices/{device}/actions/{action}", json=args, headers=hall.as_role("operator")
    )


@contextlib.asynccontextmanager
async def started(path: Path) -> AsyncIterator[Running]:
    async with running(path) as hall:
        await wait_for(lambda: all(d.available for d in hall.host.devices))
        yield hall


class CoilSampler:
    """Reads the board's side of the pair every few ms, as the motor would see it."""

    def __init__(self, modbus: ModbusEmulator) -> None:
        self.modbus = modbus
        self.seen: list[tuple[float, bool, bool]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            opening, closing = await pair(self.modbus)
            self.seen.append((time.monotonic(), opening, closing))
            await asyncio.sleep(0.002)

    async def __aenter__(self) -> CoilSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.wait([self._task])

    def both_on(self) -> bool:
        return any(o and c for _, o, c in self.seen)

    def on_time(self, index: int) -> float:
        """How long the coil (1 open, 2 close) was seen on, in total."""
        return sum(b[0] - a[0] for a, b in zip(self.seen, self.seen[1:], strict=False) if a[index])


async def idle(curtain: Any) -> None:
    await wait_for(lambda: curtain.state["moving"] is None, timeout=5.0)


async def test_open_close_stop_on_the_coils(tmp_path: Path, modbus: ModbusEmulator) -> None:
    async with started(curtain_config(tmp_path, modbus)) as hall:
        curtain = hall.host.devices.get("curtain")
        relay = hall.host.devices.get("relay")
        assert curtain.state == {"position": 0, "moving": None}  # never seen: closed

        r = await act(hall, "curtain", "open")
        assert r.status_code == 200, r.text
        # Answered once the board confirmed the motor on.
        assert r.json()["state"]["moving"] == "opening"
        assert await pair(modbus) == [True, False]
        assert relay.state["channels"]["5"] is True  # the board's state says so too
        await idle(curtain)
        assert curtain.state == {"position": 100, "moving": None}  # end stop: re-synced
        assert await pair(modbus) == [False, False]

        r = await act(hall, "curtain", "close")
        assert r.json()["state"]["moving"] == "closing"
        assert await pair(modbus) == [False, True]
        await asyncio.sleep(0.4)
        r = await act(hall, "curtain", "stop")
        assert r.status_code == 200
        state = r.json()["state"]
        assert state["moving"] is None and 10 <= state["position"] <= 90  # estimated
        assert await pair(modbus) == [False, False]

        # Stop with nothing running still switches the pair off, verified.
        await modbus.set_coils(1, OPEN_COIL + 1, [True])
        r = await act(hall, "curtain", "stop")
        assert r.status_code == 200 and await pair(modbus) == [False, False]


async def test_set_position_runs_the_right_way_for_the_right_time(
    tmp_path: Path, modbus: ModbusEmulator
) -> None:
    async with started(curtain_config(tmp_path, modbus)) as hall:
        curtain = hall.host.devices.get("curtain")
        async with hall.host.events.subscribe() as sub, CoilSampler(modbus) as coils:
            r = await act(hall, "curtain", "set_position", position=40)
            assert r.json()["state"]["moving"] == "opening"
            await idle(curtain)
        assert curtain.state == {"position": 40, "moving": None}
        assert await pair(modbus) == [False, False]
        # Opened for about 0.4 s of the 1 s travel: well short of the end stop.
        assert 0 < coils.on_time(1) < 0.9 and coils.on_time(2) == 0
        # Progress went out as it went, upwards, ending at the target.
        positions = []
        while not sub.queue.empty():
            event = sub.queue.get_nowait()
            if event.type == "state" and event.source == "curtain":
                positions.append(event.data["position"])
        assert positions == sorted(positions) and positions[-1] == 40

        async with CoilSampler(modbus) as coils:
            r = await act(hall, "curtain", "set_position", position=20)
            assert r.json()["state"]["moving"] == "closing"
            await idle(curtain)
        assert curtain.state["position"] == 20
        assert coils.on_time(1) == 0 and 0 < coils.on_time(2) < 0.9

        # Already there: nothing runs.
        async with CoilSampler(modbus) as coils:
            r = await act(hall, "curtain", "set_position", position=20)
            assert r.json()["state"] == {"position": 20, "moving": None}
            await asyncio.sleep(0.05)
        assert not any(o or c for _, o, c in coils.seen)


async def test_direction_changes_never_put_both_coils_on(
    tmp_path: Path, modbus: ModbusEmulator
) -> None:
    async with started(curtain_config(tmp_path, modbus)) as hall:
        curtain = hall.host.devices.get("curtain")
        async with CoilSampler(modbus) as coils:
            for action, args in [
                ("open", {}),
                ("close", {}),
                ("set_position", {"position": 90}),
                ("open", {}),
                ("close", {}),
                ("stop", {}),
            ]:
                r = await act(hall, "curtain", action, **args)
                assert r.status_code == 200, r.text
                await asyncio.sleep(0.12)
            # Commands racing each other are taken one at a time.
            results = await asyncio.gather(
                act(hall, "curtain", "open"),
                act(hall, "curtain", "close"),
                act(hall, "curtain", "open"),
            )
            assert [r.status_code for r in results] == [200, 200, 200]
            await idle(curtain)
        assert not coils.both_on()
        assert any(o for _, o, _ in coils.seen) and any(c for _, _, c in coils.seen)
        assert await pair(modbus) == [False, False]


async def test_the_board_refuses_both_channels_of_a_curtain(
    tmp_path: Path, modbus: ModbusEmulator
) -> None:
    async with started(curtain_config(tmp_path, modbus)) as hall:
        assert (await act(hall, "curtain", "open")).status_code == 200
        r = await act(hall, "relay", "on", channel=6)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "refused"
        assert "curtain" in r.json()["error"]["message"]
        r = await act(hall, "relay", "on")  # every channel at once: both of the pair
        assert r.status_code == 409
        assert await pair(modbus) == [True, False]

        assert (await act(hall, "curtain", "stop")).status_code == 200
        # Either channel alone is the board's business; the second is refused.
        assert (await act(hall, "relay", "on", channel=6)).status_code == 200
        assert (await act(hall, "relay", "on", channel=5)).status_code == 409
        assert await pair(modbus) == [False, True]
        # Off is never refused.
        assert (await act(hall, "relay", "off")).status_code == 200


async def test_a_sequence_that_would_put_both_on_is_refused_before_it_starts(
    tmp_path: Path, modbus: ModbusEmulator
) -> None:
    # A board with no sequence of its own: sequence_on switches every channel.
    board = """
    [[device]]
    id = "strip"
    kind = "power"
    driver = "modbus-relay"
    bus = "gw"
    unit = 2
    poll_ms = 100
    [device.options]
    channels = 4
    [[device]]
    id = "curtain-2"
    kind = "curtain"
    driver = "relay-curtain"
    [device.options]
    relay = "strip"
    open_channel = 3
    close_channel = 4
    travel_s = 1.0
    """
    async with started(curtain_config(tmp_path, modbus, board)) as hall:
        r = await act(hall, "strip", "sequence_on")
        assert r.status_code == 409 and "curtain-2" in r.json()["error"]["message"]
        assert await modbus.coils(2, 0, 4) == [False] * 4  # not one step was taken


async def test_position_survives_a_restart_and_shutdown_stops_the_motor(
    tmp_path: Path, modbus: ModbusEmulator
) -> None:
    path = curtain_config(tmp_path, modbus)
    async with started(path) as hall:
        curtain = hall.host.devices.get("curtain")
        await act(hall, "curtain", "set_position", position=40)
        await idle(curtain)
    async with started(path) as hall:
        curtain = hall.host.devices.get("curtain")
        assert curtain.state == {"position": 40, "moving": None}
        assert (await act(hall, "curtain", "open")).json()["state"]["moving"] == "opening"
        await asyncio.sleep(0.3)
    # The daemon stopped mid-run: it switched the motor off on its way out.
    assert await pair(modbus) == [False, False]
    async with started(path) as hall:
        state = hall.host.devices.get("curtain").state
        assert state["moving"] is None and 45 <= state["position"] <= 95


async def test_board_lost_mid_run_and_back(tmp_path: Path, modbus: ModbusEmulator) -> None:
    async with started(curtain_config(tmp_path, modbus)) as hall:
        curtain = hall.host.devices.get("curtain")
        relay = hall.host.devices.get("relay")
        assert (await act(hall, "curtain", "open")).status_code == 200
        await asyncio.sleep(0.3)

        await modbus.stop()
        # The board's poll (200 ms) plus the timeout (300 ms), then the curtain's poll.
        await wait_for(lambda: not relay.available and not curtain.available, timeout=2.0)
        await idle(curtain)  # the run ended where it was believed to be
        position = curtain.state["position"]
        assert 10 <= position <= 90
        r = await act(hall, "curtain", "close")
        assert r.status_code == 503

        await modbus.start()
        back = time.monotonic()
        # reconnect_max_ms is 2 s: back within that plus a poll and a connect.
        await wait_for(lambda: relay.available and curtain.available, timeout=3.5)
        assert time.monotonic() - back < 3.5
        assert curtain.state == {"position": position, "moving": None}
        assert await pair(modbus) == [False, False]
        assert (await act(hall, "curtain", "close")).status_code == 200


async def test_a_channel_found_on_at_start_is_switched_off(
    tmp_path: Path, modbus: ModbusEmulator
) -> None:
    # The previous daemon died mid-run: the board still drives the motor.
    await modbus.set_coils(1, OPEN_COIL, [True])
    async with started(curtain_config(tmp_path, modbus)) as hall:
        assert hall.host.devices.get("curtain").state["moving"] is None
        assert await pair(modbus) == [False, False]


def config_issues(path: Path) -> list[tuple[str, str]]:
    """(the text of the line named, the message) of every issue of the config."""
    plugins = PluginHost()
    plugins.load(entry_points=False)
    with pytest.raises(ConfigError) as caught:
        load(path, plugins)
    text = path.read_text().splitlines()
    return [(text[i.line - 1].strip(), i.message) for i in caught.value.issues]


def curtain(ident: str, relay: str, open_channel: int, close_channel: int) -> str:
    return f"""
    [[device]]
    id = "{ident}"
    kind = "curtain"
    driver = "relay-curtain"
    [device.options]
    relay = "{relay}"
    open_channel = {open_channel}
    close_channel = {close_channel}
    travel_s = 8
    """


def test_bad_relay_references_are_config_errors_on_their_lines(tmp_path: Path) -> None:
    extra = "".join(
        [
            curtain("c1", "nope", 5, 6),
            curtain("c2", "c2", 5, 6),
            curtain("c3", "relay", 7, 9),
            curtain("c4", "relay", 5, 6),
            curtain("c5", "relay", 6, 8),
            curtain("c6", "relay", 2, 3),  # the board's sequence switches on 1, 2 and 3
        ]
    )
    issues = config_issues(relay_config(tmp_path, free_port(), extra=extra))
    assert issues == [
        ('relay = "nope"', "relay 'nope' is not a device (relay boards: relay)"),
        (
            'relay = "c2"',
            "device 'c2' is a 'relay-curtain', which has no relays a curtain can drive",
        ),
        ("close_channel = 9", "close_channel 9: relay 'relay' has 8"),
        ('relay = "relay"', "channels [6] already drive 'c4'"),
        (
            'relay = "relay"',
            "the sequence of relay 'relay' switches on both of these channels: "
            "its sequence_on would be refused",
        ),
    ]


def test_the_same_channel_twice_is_a_config_error(tmp_path: Path) -> None:
    extra = curtain("c1", "relay", 5, 5)
    [(line, message)] = config_issues(relay_config(tmp_path, free_port(), extra=extra))
    assert line == "[device.options]" and "the same channel" in message


def test_the_estimate_never_passes_the_runs_target() -> None:
    """A timer that wakes late (a busy machine) must not report 42 on the way to 40."""
    from drivers.curtain import travel

    up = travel.run_toward("opening", 0.0, 40.0, now=0.0, travel_s=1.0, margin=0.1)
    assert abs(up.position(0.2, 1.0) - 20.0) < 1e-9
    assert up.position(0.5, 1.0) == 40.0
    down = travel.run_toward("closing", 60.0, 20.0, now=0.0, travel_s=1.0, margin=0.1)
    assert down.position(1.0, 1.0) == 20.0
    full = travel.run_toward("opening", 90.0, travel.OPEN, now=0.0, travel_s=1.0, margin=0.1)
    assert full.position(5.0, 1.0) == travel.OPEN
