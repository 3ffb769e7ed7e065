"""The `mqtt` driver against a fake Tasmota on a real Mosquitto: the API and gridhall's
own MQTT commands switch its relays, each exactly once, its button is heard, and a
config that points it anywhere but a broker is refused with its line."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.config import ConfigError, load
from daemon.pluginhost import PluginHost
from drivers.mqtt.emulator import TasmotaEmulator, TasmotaOptions
from tests.mqtt_support import Broker, Recorder, bridge_online, mqtt_section
from tests.support import free_port, running, wait_for


@pytest.fixture
async def tasmota(broker: Broker) -> AsyncIterator[TasmotaEmulator]:
    emu = TasmotaEmulator("127.0.0.1", broker.port, TasmotaOptions(topic="hall-fans", relays=2))
    await emu.start()
    yield emu
    await emu.stop()


def config(tmp_path: Path, broker: Broker, url: str | None = None, bridge: bool = True) -> Path:
    text = f"""
    [api]
    listen = "127.0.0.1:{free_port()}"
    [storage]
    path = "gridhall.db"
    [[device]]
    id = "fans"
    kind = "power"
    driver = "mqtt"
    url = "{url or broker.url}"
    name = "Fan relays"
    poll_ms = 500
    [device.options]
    channels = 2
    command_topic = "cmnd/hall-fans/POWER{{channel}}"
    state_topic = "stat/hall-fans/POWER{{channel}}"
    """
    path = tmp_path / "gridhall.toml"
    path.write_text(textwrap.dedent(text) + (mqtt_section(broker) if bridge else ""))
    return path


async def test_the_api_and_mqtt_switch_a_tasmota_once_each(
    tmp_path: Path, broker: Broker, tasmota: TasmotaEmulator, recorders: list[Recorder]
) -> None:
    async with running(config(tmp_path, broker)) as hall:
        fans = hall.host.devices.get("fans")
        await wait_for(lambda: fans.available)
        assert fans.state == {"channels": {"1": False, "2": False}, "sequencing": False}

        r = await hall.client.post(
            "/api/v1/devices/fans/actions/on", json={"channel": 2}, headers=hall.as_role("operator")
        )
        assert r.status_code == 200, r.text
        assert r.json()["state"]["channels"] == {"1": False, "2": True}
        assert tasmota.relays == [False, True] and tasmota.switched == 1

        # gridhall's own MQTT command, through the bridge, to the relay on MQTT.
        await bridge_online(broker)
        rec = Recorder(broker.port, ["hall/fans/response/#"])
        recorders.append(rec)
        rec.publish("hall/fans/set/on", json.dumps({"channel": 1, "transaction": "f1"}))
        answer = await rec.wait(lambda m: b'"f1"' in m.payload)
        assert json.loads(answer.payload)["status"] == "ok"
        assert tasmota.relays == [True, True] and tasmota.switched == 2

        tasmota.press(2)  # the relay's own button
        await wait_for(lambda: fans.state["channels"]["2"] is False)


async def test_a_silent_relay_is_unavailable_and_comes_back(
    tmp_path: Path, broker: Broker, tasmota: TasmotaEmulator
) -> None:
    async with running(config(tmp_path, broker, bridge=False)) as hall:
        fans = hall.host.devices.get("fans")
        await wait_for(lambda: fans.available)
        await tasmota.stop()
        await wait_for(lambda: not fans.available)
        r = await hall.client.post(
            "/api/v1/devices/fans/actions/on", json={}, headers=hall.as_role("operator")
        )
        assert r.status_code == 503
        await tasmota.start()
        await wait_for(lambda: fans.available, timeout=20)


def test_the_driver_needs_a_broker_url(tmp_path: Path, broker: Broker) -> None:
    plugins = PluginHost()
    plugins.load(entry_points=False)
    with pytest.raises(ConfigError) as err:
        load(config(tmp_path, broker, url="tcp://127.0.0.1:1883", bridge=False), plugins)
    assert "needs an mqtt:// URL" in str(err.value)
