"""The MQTT bridge against a real Mosquitto: commands move a real Modbus emulator,
state and availability arrive retained, results come back with the request's
transaction (and MQTT 5 correlation data), and the daemon survives a broker restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from daemon.hookspecs import hookimpl
from daemon.pluginhost import PluginHost
from drivers.modbus.emulator import ModbusEmulator
from tests.mqtt_support import Broker, Recorder, bridge_online, mqtt_section
from tests.support import relay_config, running, wait_for


def config(tmp_path: Path, modbus: ModbusEmulator, broker: Broker, extra: str = "") -> Path:
    return relay_config(tmp_path, modbus.port, extra=mqtt_section(broker, extra=extra))


async def audit_rows(hall: object, action: str) -> list[dict[str, object]]:
    rows = await hall.host.store.fetchall(  # type: ignore[attr-defined]
        "SELECT * FROM audit WHERE cause = 'mqtt' AND what = ?", (action,)
    )
    return [dict(r) for r in rows]


async def test_a_command_moves_the_board_and_its_result_comes_back(
    tmp_path: Path, modbus: ModbusEmulator, broker: Broker, recorders: list[Recorder]
) -> None:
    async with running(config(tmp_path, modbus, broker)) as hall:
        await wait_for(lambda: all(d.available for d in hall.host.devices))
        await bridge_online(broker)
        rec = Recorder(broker.port, ["hall/relay/response/#"])
        recorders.append(rec)
        rec.publish("hall/relay/set/on", json.dumps({"channel": 2, "transaction": "t-1"}))
        response = await rec.wait(lambda m: m.topic == "hall/relay/response/on")
        body = json.loads(response.payload)
        assert body["status"] == "ok" and body["transaction"] == "t-1"
        assert body["data"]["channels"]["2"] is True
        assert (await modbus.coils(1, 0, 8))[1] is True  # the board itself, channel 2
        rows = await audit_rows(hall, "on")
        assert [(r["who"], r["result"], r["target"]) for r in rows] == [("mqtt", "ok", "relay")]

        # The state is retained: a subscriber that comes later gets it at once.
        late = Recorder(broker.port, ["hall/relay/state", "hall/relay/availability"])
        recorders.append(late)
        state = await late.wait(
            lambda m: m.topic == "hall/relay/state" and json.loads(m.payload)["channels"]["2"]
        )
        assert state.retain
        avail = await late.wait(lambda m: m.topic == "hall/relay/availability")
        assert avail.retain and avail.payload == b"online"


async def test_errors_mqtt5_correlation_and_the_generic_set_topic(
    tmp_path: Path, modbus: ModbusEmulator, broker: Broker, recorders: list[Recorder]
) -> None:
    async with running(config(tmp_path, modbus, broker, 'protocol = "5"\n')) as hall:
        await wait_for(lambda: all(d.available for d in hall.host.devices))
        await bridge_online(broker)
        rec = Recorder(broker.port, ["hall/+/response/#", "replies/#"])
        recorders.append(rec)

        # MQTT 5: the answer also goes to the request's response topic, correlated.
        rec.publish(
            "hall/relay/set",
            json.dumps({"action": "on", "channel": 3}),
            response_topic="replies/me",
            correlation=b"\x01corr",
        )
        reply = await rec.wait(lambda m: m.topic == "replies/me")
        assert reply.correlation == b"\x01corr"
        assert json.loads(reply.payload)["data"]["channels"]["3"] is True
        assert (await modbus.coils(1, 0, 8))[2] is True

        # Bad arguments are answered with the API's error code, nothing is sent.
        rec.publish("hall/relay/set/on", json.dumps({"channel": 99, "transaction": 7}))
        bad = await rec.wait(
            lambda m: m.topic == "hall/relay/response/on" and b'"transaction":7' in m.payload
        )
        assert json.loads(bad.payload)["error"]["code"] == "bad_arguments"
        rec.publish("hall/relay/set/on", b"not json")
        await rec.wait(lambda m: b"not JSON" in m.payload)
        rec.publish("hall/nosuch/set/on", b"{}")
        gone = await rec.wait(lambda m: m.topic == "hall/nosuch/response/on")
        assert json.loads(gone.payload)["error"]["code"] == "not_found"


async def test_a_redelivered_transaction_is_carried_out_once(
    tmp_path: Path, modbus: ModbusEmulator, broker: Broker, recorders: list[Recorder]
) -> None:
    async with running(config(tmp_path, modbus, broker)) as hall:
        await wait_for(lambda: all(d.available for d in hall.host.devices))
        await bridge_online(broker)
        rec = Recorder(broker.port, ["hall/relay/response/#"])
        recorders.append(rec)
        for _ in range(2):  # what a QoS 1 redelivery looks like to the daemon
            rec.publish("hall/relay/set/off", json.dumps({"channel": 1, "transaction": "dup"}))
        await wait_for(lambda: len(rec.matching(lambda m: b'"dup"' in m.payload)) == 2)
        answers = {m.payload for m in rec.matching(lambda m: b'"dup"' in m.payload)}
        assert len(answers) == 1  # the same answer twice
        assert len(await audit_rows(hall, "off")) == 1


async def test_the_broker_restarts_and_everything_comes_back(
    tmp_path: Path, modbus: ModbusEmulator, broker: Broker, recorders: list[Recorder]
) -> None:
    async with running(config(tmp_path, modbus, broker)) as hall:
        bridge = hall.daemon.mqtt
        await wait_for(lambda: all(d.available for d in hall.host.devices))
        await wait_for(lambda: bridge.client.connected)
        # A watcher with a session of its own: what the daemon publishes while the
        # watcher reconnects is queued for it, and arrives without the retain flag
        # (a live publish, not a retained copy), so it proves the daemon sent it again.
        watcher = Recorder(
            broker.port, ["hall/#", "homeassistant/#"], client_id="watcher", session_s=300
        )
        recorders.append(watcher)
        await watcher.wait(lambda m: m.topic == "hall/relay/state")

        broker.stop()
        watcher.clear()
        await wait_for(lambda: not bridge.client.connected)
        await asyncio.sleep(5)
        broker.start()

        # At once, before the daemon is back: a QoS 1 command. The daemon's session
        # outlived the restart, so the broker keeps the command for it.
        sender = Recorder(broker.port, ["hall/relay/response/#"])
        recorders.append(sender)
        sender.publish(
            "hall/relay/set/on", json.dumps({"channel": 5, "transaction": "after"}), qos=1
        )

        response = await sender.wait(lambda m: b'"after"' in m.payload, timeout=30)
        assert json.loads(response.payload)["status"] == "ok"
        assert bridge.client.connects == 2
        assert (await modbus.coils(1, 0, 8))[4] is True

        live = lambda topic: lambda m: m.topic == topic and not m.retain  # noqa: E731
        await watcher.wait(live("hall/relay/state"), timeout=30)
        await watcher.wait(live("hall/relay/availability"), timeout=30)
        await watcher.wait(live("hall/bridge/state"), timeout=30)
        await watcher.wait(
            lambda m: (
                m.topic.startswith("homeassistant/switch/hall/relay_channel_") and not m.retain
            ),
            timeout=30,
        )
        # Exactly once: one audit row, one answer (nothing more comes after a pause).
        await asyncio.sleep(1.0)
        assert len(sender.matching(lambda m: b'"after"' in m.payload)) == 1
        rows = [r for r in await audit_rows(hall, "on") if '"channel": 5' in str(r["args"])]
        assert len(rows) == 1


async def test_home_assistant_online_resends_discovery_and_gone_entities_are_cleared(
    tmp_path: Path, modbus: ModbusEmulator, broker: Broker, recorders: list[Recorder]
) -> None:
    # A config left from a device that is no longer in the config file.
    old = Recorder(broker.port, [])
    recorders.append(old)
    gone = "homeassistant/switch/hall/oldrelay_channel_1/config"
    old.publish(gone, json.dumps({"name": "old"}), retain=True)
    # Home Assistant is there before gridhall starts, so it sees the config cleared.
    ha = Recorder(broker.port, ["homeassistant/#"])
    recorders.append(ha)
    await ha.wait(lambda m: m.topic == gone and m.retain)

    async with running(config(tmp_path, modbus, broker)) as hall:
        await wait_for(lambda: all(d.available for d in hall.host.devices))
        await bridge_online(broker)
        cleared = await ha.wait(lambda m: m.topic == gone and m.payload == b"")
        assert cleared is not None
        first = await ha.wait(lambda m: m.topic.endswith("relay_channel_8/config"))
        assert json.loads(first.payload)["unique_id"] == "hall_relay_channel_8"
        late = Recorder(broker.port, ["homeassistant/switch/hall/+/config"])
        recorders.append(late)
        kept = await late.wait(lambda m: m.topic.endswith("relay_channel_8/config"))
        assert kept.retain  # sent retained: a Home Assistant that starts later has it
        assert not late.matching(lambda m: m.topic == gone)  # nothing retained is left

        ha.clear()
        ha.publish("homeassistant/status", "online")
        again = await ha.wait(lambda m: m.topic.endswith("relay_channel_8/config") and not m.retain)
        assert json.loads(again.payload)["command_topic"] == "hall/relay/set"


class EchoPlugin:
    """A throwaway plugin: subscribes to a topic of its own and answers on another."""

    def __init__(self) -> None:
        self.connected = 0

    @hookimpl
    def gridhall_mqtt_connected(self, mqtt: Any) -> None:
        self.connected += 1

        async def echo(topic: str, payload: bytes) -> None:
            mqtt.publish(f"{mqtt.base_topic}/echo/out", {"got": payload.decode()})

        mqtt.subscribe(f"{mqtt.base_topic}/echo/in", echo)


async def test_a_plugin_subscribes_and_publishes(
    tmp_path: Path, modbus: ModbusEmulator, broker: Broker, recorders: list[Recorder]
) -> None:
    plugins = PluginHost()
    plugins.load(entry_points=False)
    plugin = EchoPlugin()
    plugins.register(plugin, name="echo")
    try:
        async with running(config(tmp_path, modbus, broker), plugins) as hall:
            await wait_for(lambda: plugin.connected == 1)
            assert hall.daemon.mqtt.client.connected
            rec = Recorder(broker.port, ["hall/echo/out"])
            recorders.append(rec)
            # A subscription takes effect when the broker has it, a moment after the
            # hook returned: ask until the plugin answers.
            for _ in range(100):
                rec.publish("hall/echo/in", "ticket 7")
                if rec.matching(lambda m: m.topic == "hall/echo/out"):
                    break
                await asyncio.sleep(0.2)
            out = await rec.wait(lambda m: m.topic == "hall/echo/out")
            assert json.loads(out.payload) == {"got": "ticket 7"}
    finally:
        plugins.unregister("echo")


SCENE = """
[[scene]]
id = "open"
name = "Open the hall"
[[scene.step]]
device = "relay"
action = "on"
args = { channel = 5 }
[[scene.step]]
device = "relay"
action = "on"
args = { channel = 6 }
"""


async def test_a_scene_runs_from_mqtt_and_is_discovered_as_a_scene(
    tmp_path: Path, modbus: ModbusEmulator, broker: Broker, recorders: list[Recorder]
) -> None:
    path = relay_config(tmp_path, modbus.port, extra=mqtt_section(broker) + SCENE)
    async with running(path) as hall:
        await wait_for(lambda: all(d.available for d in hall.host.devices))
        await bridge_online(broker)
        rec = Recorder(broker.port, ["hall/scenes/+/response", "homeassistant/scene/#"])
        recorders.append(rec)
        found = await rec.wait(lambda m: m.topic.startswith("homeassistant/scene/"))
        config = json.loads(found.payload)
        assert found.retain and config["command_topic"] == "hall/scenes/open/run"
        assert config["name"] == "Open the hall"

        # Home Assistant activates it with payload_on; a repeated transaction runs once.
        rec.publish("hall/scenes/open/run", json.dumps({"transaction": "s-1"}))
        answer = await rec.wait(lambda m: m.topic == "hall/scenes/open/response")
        body = json.loads(answer.payload)
        assert body["status"] == "ok" and body["transaction"] == "s-1"
        await wait_for(lambda: hall.host.devices.get("relay").state["channels"]["6"], timeout=10)
        assert (await modbus.coils(1, 4, 2)) == [True, True]
        # The same transaction again (a QoS 1 redelivery): answered again, not run again.
        rec.publish("hall/scenes/open/run", json.dumps({"transaction": "s-1"}))
        await wait_for(lambda: len(rec.matching(lambda m: m.topic.endswith("/response"))) == 2)
        await asyncio.sleep(0.3)
        rows = await hall.host.store.fetchall(
            "SELECT count(*) AS n FROM audit WHERE cause = 'scene:open' AND what = 'on'"
        )
        assert rows[0]["n"] == 2  # two steps, one run

        rec.publish("hall/scenes/nope/run", "{}")
        missing = await rec.wait(lambda m: m.topic == "hall/scenes/nope/response")
        assert json.loads(missing.payload)["status"] == "error"
