"""Machine reports over MQTT (a private Mosquitto): one ticket however often a report
is repeated, every report answered on the response topic, alerts published."""

from __future__ import annotations

import json
from pathlib import Path

from daemon.clock import ManualClock
from tests.mqtt_support import Broker, Recorder, bridge_online, mqtt_section
from tests.ticket_support import local, tickets_at, tickets_config

REPORT = "hall/tickets/report"
RESPONSE = "hall/tickets/response/report"


async def test_reports_answers_and_alerts(
    tmp_path: Path, broker: Broker, recorders: list[Recorder]
) -> None:
    config = tickets_config(tmp_path, extra=mqtt_section(broker))
    clock = ManualClock(local("2026-01-05T09:00"))
    async with tickets_at(config, clock) as hall:
        await bridge_online(broker)
        rec = Recorder(broker.port, ["hall/tickets/#"])
        recorders.append(rec)
        camera = {
            "category": "security.fight",
            "description": "两人在路口打斗 (video detection)",
            "idem_key": "cam-0317:evt-88120",
            "source": "cam-0317",
            "media_url": "https://video.example/evt-88120.jpg",
        }
        # A detector repeats what it still sees; QoS 1 may deliver twice besides.
        for n in range(3):
            rec.publish(REPORT, json.dumps({**camera, "transaction": n}))
            await rec.wait(lambda m, n=n: m.topic == RESPONSE and answer_to(m.payload) == n)
        answers = [json.loads(m.payload) for m in rec.matching(lambda m: m.topic == RESPONSE)]
        assert [a["status"] for a in answers] == ["ok"] * 3
        assert [a["data"]["created"] for a in answers] == [True, False, False]
        assert len({a["data"]["id"] for a in answers}) == 1
        assert answers[0]["idem_key"] == "cam-0317:evt-88120"
        tid = answers[0]["data"]["id"]
        t = (await hall.client.get(f"/api/v1/tickets/{tid}", headers=hall.as_role("viewer"))).json()
        assert (t["channel"], t["state"]) == ("video_ai", "collected")
        assert t["history"][0]["actor"] == "mqtt:cam-0317"
        listed = await hall.client.get("/api/v1/tickets", headers=hall.as_role("viewer"))
        assert len(listed.json()["tickets"]) == 1

        # Bad reports are answered, never dropped in silence.
        rec.clear()
        for payload, words in [
            ('{"category": "security.fight", "transaction": "a"}', "idem_key"),
            ("not json", "not JSON"),
            ('{"category": "nope", "idem_key": "k1", "transaction": "c"}', "'nope'"),
            ('{"category": "security.fight", "idem_key": "k2", "lon": 117}', "lat"),
        ]:
            rec.clear()
            rec.publish(REPORT, payload)
            answer = json.loads((await rec.wait(lambda m: m.topic == RESPONSE)).payload)
            assert answer["status"] == "error", answer
            assert answer["error"]["code"] == "bad_arguments"
            assert words in answer["error"]["message"]

        # The fight is due at 11:00: its reminder (20% before) goes out on MQTT.
        rec.clear()
        await clock.move_to(local("2026-01-05T10:36"))
        alert = json.loads(
            (await rec.wait(lambda m: m.topic == "hall/tickets/alerts/reminder")).payload
        )
        assert (alert["kind"], alert["ticket"], alert["major"]) == ("reminder", tid, True)


def answer_to(payload: bytes) -> object:
    return json.loads(payload).get("transaction")
