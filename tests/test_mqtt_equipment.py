"""Equipment on MQTT relays through the HTTP API, checked on a fake Tasmota on a real
Mosquitto: a `relay-curtain` on two relays of an `mqtt` device (never both on, whoever
asks), and the `mqtt` driver as a fan, with and without speed steps."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from drivers.mqtt.emulator import TasmotaEmulator, TasmotaOptions
from tests.mqtt_support import Broker
from tests.support import Running, free_port, running, wait_for
from tests.test_curtain import config_issues


async def emulator(broker: Broker, topic: str, relays: int) -> TasmotaEmulator:
    emu = TasmotaEmulator("127.0.0.1", broker.port, TasmotaOptions(topic=topic, relays=relays))
    await emu.start()
    return emu


@pytest.fixture
async def tasmotas(broker: Broker) -> AsyncIterator[dict[str, TasmotaEmulator]]:
    emus = {
        "curtain": await emulator(broker, "curtain-relays", 2),
        "ifan": await emulator(broker, "ifan", 1),
        "plainfan": await emulator(broker, "plainfan", 1),
    }
    yield emus
    for emu in emus.values():
        await emu.stop()


def config(tmp_path: Path, broker: Broker) -> Path:
    text = f"""
    [api]
    listen = "127.0.0.1:{free_port()}"
    [storage]
    path = "gridhall.db"

    [[device]]
    id = "relays"
    kind = "power"
    driver = "mqtt"
    url = "{broker.url}"
    poll_ms = 500
    [device.options]
    channels = 2
    command_topic = "cmnd/curtain-relays/POWER{{channel}}"
    state_topic = "stat/curtain-relays/POWER{{channel}}"

    [[device]]
    id = "curtain"
    kind = "curtain"
    driver = "relay-curtain"
    poll_ms = 100
    [device.options]
    relay = "relays"
    open_channel = 1
    close_channel = 2
    travel_s = 1.0
    reverse_pause_ms = 50

    [[device]]
    id = "ifan"
    kind = "fan"
    driver = "mqtt"
    url = "{broker.url}"
    poll_ms = 500
    [device.options]
    command_topic = "cmnd/ifan/POWER"
    state_topic = "stat/ifan/POWER"
    speed_topic = "cmnd/ifan/FanSpeed"
    speed_state_topic = "stat/ifan/RESULT"
    speed_steps = 3

    [[device]]
    id = "plainfan"
    kind = "fan"
    driver = "mqtt"
    url = "{broker.url}"
    poll_ms = 500
    [device.options]
    command_topic = "cmnd/plainfan/POWER"
    state_topic = "stat/plainfan/POWER"
    """
    path = tmp_path / "gridhall.toml"
    path.write_text(textwrap.dedent(text))
    return path


async def act(hall: Running, device: str, action: str, **args: Any) -> Any:
    return await hall.client.post(
        f"/api/v1/devices/{device}/actions/{action}", json=args, headers=hall.as_role("operator")
    )


async def test_a_curtain_on_mqtt_relays_never_has_both_on(
    tmp_path: Path, broker: Broker, tasmotas: dict[str, TasmotaEmulator]
) -> None:
    relays = tasmotas["curtain"]
    async with running(config(tmp_path, broker)) as hall:
        curtain = hall.host.devices.get("curtain")
        await wait_for(lambda: all(d.available for d in hall.host.devices), timeout=10)

        r = await act(hall, "curtain", "open")
        assert r.status_code == 200, r.text
        assert r.json()["state"]["moving"] == "opening"
        assert relays.relays == [True, False]
        await wait_for(lambda: curtain.state["moving"] is None, timeout=5)
        assert curtain.state == {"position": 100, "moving": None}
        assert relays.relays == [False, False]  # switched off at the end of the run

        r = await act(hall, "curtain", "set_position", position=40)
        assert r.json()["state"]["moving"] == "closing"
        assert relays.relays == [False, True]
        # Reversing mid-run: the closing relay goes off before the opening one goes on.
        r = await act(hall, "curtain", "open")
        assert r.status_code == 200 and relays.relays == [True, False]

        # The relay device itself refuses the other channel while the curtain opens.
        r = await act(hall, "relays", "on", channel=2)
        assert r.status_code == 409, r.text
        assert "curtain" in r.json()["error"]["message"]
        assert (await act(hall, "relays", "on")).status_code == 409  # both at once
        assert (await act(hall, "relays", "sequence_on")).status_code == 409
        assert relays.relays == [True, False]

        r = await act(hall, "curtain", "stop")
        assert r.status_code == 200 and r.json()["state"]["moving"] is None
        assert relays.relays == [False, False]
        # One channel alone is the relay's business; the second is refused.
        assert (await act(hall, "relays", "on", channel=2)).status_code == 200
        assert (await act(hall, "relays", "on", channel=1)).status_code == 409
        assert (await act(hall, "relays", "off")).status_code == 200
        assert relays.relays == [False, False]

        # Commands racing each other are taken one at a time.
        results = await asyncio.gather(
            act(hall, "curtain", "close"), act(hall, "curtain", "open"), act(hall, "relays", "on")
        )
        assert sorted(r.status_code for r in results) == [200, 200, 409]
        await act(hall, "curtain", "stop")
    assert relays.history and (True, True) not in relays.history
    assert (True, False) in relays.history and (False, True) in relays.history


async def test_a_fan_with_speed_steps(
    tmp_path: Path, broker: Broker, tasmotas: dict[str, TasmotaEmulator]
) -> None:
    ifan = tasmotas["ifan"]
    async with running(config(tmp_path, broker)) as hall:
        fan = hall.host.devices.get("ifan")
        await wait_for(lambda: fan.available, timeout=10)
        assert fan.state == {"on": False, "percent": 0}

        r = await act(hall, "ifan", "set_speed", percent=50)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == {"on": True, "percent": 67}  # step 2 of 3
        assert ifan.fan_speed == 2 and ifan.relays == [True]

        r = await act(hall, "ifan", "set_speed", percent=10)
        assert r.json()["state"] == {"on": True, "percent": 33}  # a low speed still turns
        assert ifan.fan_speed == 1

        r = await act(hall, "ifan", "off")
        assert r.json()["state"] == {"on": False, "percent": 0} and ifan.relays == [False]
        r = await act(hall, "ifan", "on")
        assert r.json()["state"] == {"on": True, "percent": 33}  # at the last speed
        r = await act(hall, "ifan", "set_speed", percent=0)
        assert r.json()["state"] == {"on": False, "percent": 0} and ifan.relays == [False]
        # A fan has no channels and no power sequence.
        assert (await act(hall, "ifan", "sequence_on")).status_code == 404


async def test_a_fan_without_speed_control_is_on_or_off(
    tmp_path: Path, broker: Broker, tasmotas: dict[str, TasmotaEmulator]
) -> None:
    plain = tasmotas["plainfan"]
    async with running(config(tmp_path, broker)) as hall:
        fan = hall.host.devices.get("plainfan")
        await wait_for(lambda: fan.available, timeout=10)

        r = await act(hall, "plainfan", "set_speed", percent=50)
        assert r.status_code == 422, r.text
        assert "this fan has no speed control" in r.json()["error"]["message"]
        assert plain.relays == [False] and plain.switched == 0

        r = await act(hall, "plainfan", "set_speed", percent=100)
        assert r.json()["state"] == {"on": True, "percent": 100} and plain.relays == [True]
        r = await act(hall, "plainfan", "set_speed", percent=0)
        assert r.json()["state"] == {"on": False, "percent": 0} and plain.relays == [False]
        r = await act(hall, "plainfan", "on")
        assert r.json()["state"] == {"on": True, "percent": 100}
        plain.press(1)  # its own button
        await wait_for(lambda: fan.state == {"on": False, "percent": 0})


def test_mqtt_fans_and_curtains_are_checked_on_their_lines(tmp_path: Path, broker: Broker) -> None:
    extra = f"""
    [[device]]
    id = "twofan"
    kind = "fan"
    driver = "mqtt"
    url = "{broker.url}"
    [device.options]
    channels = 2
    speed_topic = "cmnd/twofan/FanSpeed"

    [[device]]
    id = "speedy"
    kind = "power"
    driver = "mqtt"
    url = "{broker.url}"
    [device.options]
    speed_topic = "cmnd/speedy/FanSpeed"

    [[device]]
    id = "c1"
    kind = "curtain"
    driver = "relay-curtain"
    [device.options]
    relay = "ifan"
    open_channel = 1
    close_channel = 2
    travel_s = 5

    [[device]]
    id = "c2"
    kind = "curtain"
    driver = "relay-curtain"
    [device.options]
    relay = "relays"
    open_channel = 2
    close_channel = 3
    travel_s = 5
    """
    path = config(tmp_path, broker)
    path.write_text(path.read_text() + textwrap.dedent(extra))
    assert config_issues(path) == [
        ("[device.options]", "speed_topic and speed_state_topic go together"),
        ("channels = 2", "a fan is one relay: channels = 1"),
        ('speed_topic = "cmnd/speedy/FanSpeed"', "speed_topic: only a fan has a speed"),
        ('relay = "ifan"', "device 'ifan' is a 'mqtt', which has no relays a curtain can drive"),
        ('relay = "relays"', "channels [2] already drive 'curtain'"),
        ("close_channel = 3", "close_channel 3: relay 'relays' has 2"),
    ]
