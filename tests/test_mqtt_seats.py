"""Seats over a real Mosquitto: retained seat state, layouts recalled over MQTT with
exactly-once answers, the rights applied to the `mqtt` source, and Home Assistant
discovery of the layouts, kept right as layouts are saved."""

from __future__ import annotations

import json
from pathlib import Path

from drivers.ihse.emulator import DracoEmulator
from tests.mqtt_support import Broker, Recorder, bridge_online, mqtt_section
from tests.seats_support import connects, seats_config, seats_ready
from tests.support import running

DISCOVERY = "homeassistant/+/hall/+/config"


async def test_layouts_over_mqtt_and_their_discovery(
    tmp_path: Path, draco: DracoEmulator, broker: Broker, recorders: list[Recorder]
) -> None:
    config = seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}", extra=mqtt_section(broker))
    async with running(config) as hall:
        await seats_ready(hall)
        await bridge_online(broker)
        rec = Recorder(broker.port, ["hall/seats/#", "hall/kvm/response/#", DISCOVERY])
        recorders.append(rec)

        # Home Assistant: a select of seat-1's layouts and a button each.
        select = await rec.wait(lambda m: m.topic.endswith("/seat_seat-1_layout/config"))
        assert json.loads(select.payload)["options"] == ["dispatch", "patrol", "secure"]
        button = await rec.wait(lambda m: m.topic.endswith("/seat_seat-1_layout_patrol/config"))
        assert json.loads(json.loads(button.payload)["payload_press"]) == {"layout": "patrol"}

        # The button's press recalls the layout; the answer carries the transaction.
        press = json.loads(json.loads(button.payload)["payload_press"])
        rec.publish("hall/seats/seat-1/set/recall", json.dumps(press | {"transaction": "t-1"}))
        answer = await rec.wait(lambda m: m.topic == "hall/seats/seat-1/response/recall")
        body = json.loads(answer.payload)
        assert body["status"] == "ok" and body["transaction"] == "t-1", body
        assert draco.consoles[1] == (2, "full") and draco.consoles[2] == (3, "video")
        sent = len(connects(draco))
        # The same transaction again (a QoS 1 redelivery): answered, not done again.
        rec.clear()
        rec.publish("hall/seats/seat-1/set/recall", json.dumps(press | {"transaction": "t-1"}))
        again = await rec.wait(lambda m: m.topic == "hall/seats/seat-1/response/recall")
        assert json.loads(again.payload) == body and len(connects(draco)) == sent

        # The seat's state is retained, and says which layout its consoles show.
        late = Recorder(broker.port, ["hall/seats/seat-1/state"])
        recorders.append(late)
        state = await late.wait(lambda m: json.loads(m.payload)["layout"] == "patrol")
        assert state.retain and json.loads(state.payload)["available"] is True

        # MQTT acts as `mqtt` with the operator role: the secure PC is out of reach,
        # by a seat's route and by the matrix's own command alike.
        rec.publish(
            "hall/seats/seat-1/set/route", json.dumps({"console": 4, "computer": "secure-pc"})
        )
        refused = await rec.wait(lambda m: m.topic == "hall/seats/seat-1/response/route")
        error = json.loads(refused.payload)["error"]
        assert error["code"] == "forbidden" and "mqtt (operator)" in error["message"]
        rec.publish("hall/kvm/set/route", json.dumps({"input": 4, "output": 3}))
        device_answer = await rec.wait(lambda m: m.topic == "hall/kvm/response/route")
        assert json.loads(device_answer.payload)["error"]["code"] == "forbidden"
        assert len(connects(draco)) == sent and draco.routes[4] == 0

        # A layout saved through the API gets its button.
        r = await hall.client.put(
            "/api/v1/seats/seat-1/layouts/night",
            json={"name": "Night shift"},
            headers=hall.as_role("facility"),
        )
        assert r.status_code == 200, r.text
        night = await rec.wait(lambda m: m.topic.endswith("/seat_seat-1_layout_night/config"))
        assert json.loads(night.payload)["name"] == "Night shift"
        await rec.wait(
            lambda m: (
                m.topic.endswith("/seat_seat-1_layout/config")
                and "night" in json.loads(m.payload)["options"]
            )
        )
