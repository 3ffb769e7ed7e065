"""Interlocks from the config, checked in Host.act for every source: the rule's matching,
a refusal with its reason through the API (power under a warming or cooling PJLink
projector), audited as refused, and a power-down sequence that waits for the
projector to cool so the interlock never has to refuse it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.config import ConfigError, load
from daemon.interlocks import InterlockConfig, Interlocks
from daemon.pluginhost import PluginHost
from drivers.modbus.emulator import ModbusEmulator
from drivers.pjlink.emulator import PJLinkEmulator, PJLinkEmulatorOptions
from tests.support import Running, free_port, relay_config, running, wait_for

HALL = """
[[device]]
id = "screen-1"
kind = "screen"
driver = "pjlink"
url = "tcp://127.0.0.1:{pjlink}"
poll_ms = 100
[device.options]
warmup_s = 5
cooldown_s = 5
busy_poll_ms = 50

[[interlock]]
id = "projector-power"
device = "relay"
action = ["off", "sequence_off"]
args = {{ channel = 3 }}
when = {{ device = "screen-1", state = {{ power = ["on", "warming", "cooling"] }} }}
reason = "screen-1 must be off and cooled before power channel 3 drops"

[[sequence]]
id = "hall"
[[sequence.step]]
device = "relay"
up = "on"
down = "off"
args = {{ channel = 3 }}
delay_ms = 20
[[sequence.step]]
device = "screen-1"
up = "on"
down = "off"
up_until = {{ power = "on" }}
down_until = {{ power = "off" }}
timeout_s = 10
"""


def rule(**over: Any) -> InterlockConfig:
    data = {
        "id": "r",
        "device": "power-1",
        "action": "off",
        "args": {"channel": 3},
        "when": {"device": "screen-1", "state": {"power": ["on", "cooling"]}},
        **over,
    }
    return InterlockConfig.model_validate(data)


def states(**by_device: Any) -> Any:
    return lambda device_id: by_device.get(device_id.replace("-", "_"))


def test_rule_matches_its_action_args_and_state() -> None:
    locks = Interlocks([rule(reason="cool first")])
    cooling = states(screen_1=(True, {"power": "cooling"}))
    off = states(screen_1=(True, {"power": "off"}))
    assert locks.check("power-1", "off", {"channel": 3}, cooling) == "cool first"
    assert locks.check("power-1", "off", {}, cooling) == "cool first"  # all channels
    assert locks.check("power-1", "off", {"channel": 2}, cooling) is None
    assert locks.check("power-1", "on", {"channel": 3}, cooling) is None
    assert locks.check("power-2", "off", {"channel": 3}, cooling) is None
    assert locks.check("power-1", "off", {"channel": 3}, off) is None


def test_unknown_state_refuses_unless_told_otherwise() -> None:
    down = states(screen_1=(False, {"power": "off"}))
    reason = Interlocks([rule()]).check("power-1", "off", {}, down)
    assert reason is not None and "not known" in reason and "screen-1" in reason
    assert Interlocks([rule(if_unknown="allow")]).check("power-1", "off", {}, down) is None
    nested = rule(when={"device": "power-2", "state": {"channels.4": True}})
    assert (
        Interlocks([nested]).check(
            "power-1", "off", {}, states(power_2=(True, {"channels": {"4": True}}))
        )
        is not None
    )
    assert (
        Interlocks([nested]).check(
            "power-1", "off", {}, states(power_2=(True, {"channels": {"4": False}}))
        )
        is None
    )


def test_config_errors_for_unknown_devices_and_actions(tmp_path: Path) -> None:
    extra = """
[[interlock]]
id = "bad"
device = "relay"
action = "explode"
when = { device = "nowhere", state = { power = "on" } }
"""
    path = relay_config(tmp_path, 1, extra=extra)
    plugins = PluginHost()
    plugins.load(entry_points=False)
    with pytest.raises(ConfigError) as err:
        load(path, plugins)
    messages = [str(i) for i in err.value.issues]
    lines = path.read_text().splitlines()
    explode = next(n for n, t in enumerate(lines, 1) if "explode" in t)
    when = next(n for n, t in enumerate(lines, 1) if "nowhere" in t)
    assert any(f":{explode}: " in m and "no action 'explode'" in m for m in messages), messages
    assert any(f":{when}: " in m and "no device 'nowhere'" in m for m in messages), messages


@pytest.fixture
async def projector() -> AsyncIterator[PJLinkEmulator]:
    emu = PJLinkEmulator(
        "127.0.0.1", free_port(), PJLinkEmulatorOptions(warmup_s=0.6, cooldown_s=0.6)
    )
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def hall(
    tmp_path: Path, modbus: ModbusEmulator, projector: PJLinkEmulator
) -> AsyncIterator[Running]:
    config = relay_config(tmp_path, modbus.port, extra=HALL.format(pjlink=projector.port))
    async with running(config) as r:
        await wait_for(lambda: all(d.available for d in r.host.devices))
        yield r


async def test_power_under_a_warming_or_cooling_projector_is_refused_with_its_reason(
    hall: Running, modbus: ModbusEmulator, projector: PJLinkEmulator
) -> None:
    op = hall.as_role("operator")
    screen = hall.host.devices.get("screen-1")

    async def post(device: str, action: str, **args: Any) -> Any:
        return await hall.client.post(
            f"/api/v1/devices/{device}/actions/{action}", json=args, headers=op
        )

    assert (await post("relay", "on")).status_code == 200
    assert (await post("screen-1", "on")).status_code == 200
    await wait_for(lambda: screen.state["power"] in ("warming", "on"))
    for args in ({"channel": 3}, {}):
        r = await post("relay", "off", **args)
        assert r.status_code == 409, r.text
        assert r.json()["error"] == {
            "code": "refused",
            "message": "screen-1 must be off and cooled before power channel 3 drops",
        }
    assert await modbus.coils(1, 2, 1) == [True]  # nothing was sent
    assert (await post("relay", "off", channel=2)).status_code == 200  # another channel

    await wait_for(lambda: projector.power == "on")
    await wait_for(lambda: screen.state["power"] == "on")
    assert (await post("screen-1", "off")).status_code == 200
    await wait_for(lambda: screen.state["power"] == "cooling")
    r = await post("relay", "off", channel=3)
    assert r.status_code == 409 and "cooled" in r.json()["error"]["message"]
    await wait_for(lambda: screen.state["power"] == "off")
    assert (await post("relay", "off", channel=3)).status_code == 200
    assert await modbus.coils(1, 2, 1) == [False]

    rows = (
        await hall.client.get(
            "/api/v1/audit", params={"target": "relay"}, headers=hall.as_role("admin")
        )
    ).json()
    refused = [r for r in rows if r["result"] == "refused"]
    assert len(refused) == 3 and all("cooled" in r["detail"] for r in refused)

    listed = (await hall.client.get("/api/v1/interlocks", headers=op)).json()
    assert [(i["id"], i["device"], i["action"]) for i in listed] == [
        ("projector-power", "relay", ["off", "sequence_off"])
    ]


async def test_power_down_sequence_waits_for_the_projector_to_cool(
    hall: Running, modbus: ModbusEmulator, projector: PJLinkEmulator
) -> None:
    op = hall.as_role("operator")
    r = await hall.client.post("/api/v1/scenes/hall-up/run?wait=true", headers=op)
    assert r.json()["status"] == "done", r.json()
    assert projector.power == "on" and await modbus.coils(1, 2, 1) == [True]

    r = await hall.client.post("/api/v1/scenes/hall-down/run?wait=true", headers=op)
    run = r.json()
    assert run["status"] == "done", run
    screen_step, power_step = run["steps"]
    assert screen_step["what"] == "screen-1 off until power=off"
    # The channel dropped only after the projector had cooled (about 0.6 s), so the
    # interlock had nothing to refuse.
    assert power_step["started_at"] >= screen_step["ended_at"]
    assert screen_step["ended_at"] - screen_step["started_at"] >= 0.5
    assert projector.power == "off" and await modbus.coils(1, 2, 1) == [False]


async def test_cancelled_while_the_projector_cools_reports_what_was_done(
    hall: Running, modbus: ModbusEmulator, projector: PJLinkEmulator
) -> None:
    op = hall.as_role("operator")
    r = await hall.client.post("/api/v1/scenes/hall-up/run?wait=true", headers=op)
    assert r.json()["status"] == "done"
    r = await hall.client.post("/api/v1/scenes/hall-down/run", headers=op)
    assert r.status_code == 202
    await wait_for(lambda: projector.power == "cooling")
    run = (await hall.client.post("/api/v1/scenes/hall-down/cancel", headers=op)).json()
    assert run["status"] == "cancelled"
    screen_step, power_step = run["steps"]
    # The projector was told to go off (it is cooling); the wait was cut short; the
    # channel was never touched and is still on.
    assert screen_step["status"] == "cancelled" and screen_step["action_done"] is True
    assert power_step["status"] == "cancelled" and power_step["action_done"] is False
    assert await modbus.coils(1, 2, 1) == [True]
    assert projector.power in ("cooling", "off")
