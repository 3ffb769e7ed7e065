"""Device actions through the HTTP API, checked on the Modbus server's own side."""

from __future__ import annotations

import asyncio
import json

from drivers.modbus.emulator import ModbusEmulator
from tests.support import Running, wait_for


async def test_health_needs_no_token(hall: Running) -> None:
    r = await hall.client.get("/api/v1/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


async def test_devices_list_live_state(hall: Running, modbus: ModbusEmulator) -> None:
    await modbus.set_coils(1, 4, [True])  # someone else switched channel 5
    await wait_for(lambda: hall.host.devices.get("relay").state["channels"]["5"])
    r = await hall.client.get("/api/v1/devices", headers=hall.as_role("viewer"))
    assert r.status_code == 200
    [dev] = r.json()
    assert dev["id"] == "relay" and dev["kind"] == "power" and dev["available"] is True
    assert dev["state"]["channels"]["5"] is True
    assert dev["state"]["sequencing"] is False


async def test_on_channel_turns_coil_on_in_server(hall: Running, modbus: ModbusEmulator) -> None:
    r = await hall.client.post(
        "/api/v1/devices/relay/actions/on", json={"channel": 1}, headers=hall.as_role("operator")
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"]["channels"]["1"] is True
    assert (await modbus.coils(1, 0, 8)) == [True] + [False] * 7


async def test_all_off_and_sequence(hall: Running, modbus: ModbusEmulator) -> None:
    op = hall.as_role("operator")
    assert (
        await hall.client.post("/api/v1/devices/relay/actions/on", headers=op)
    ).status_code == 200
    assert await modbus.coils(1, 0, 8) == [True] * 8
    r = await hall.client.post("/api/v1/devices/relay/actions/off", headers=op)
    assert r.status_code == 200 and not any(r.json()["state"]["channels"].values())
    r = await hall.client.post("/api/v1/devices/relay/actions/sequence_on", headers=op)
    assert r.status_code == 200
    assert await modbus.coils(1, 0, 8) == [True, True, True] + [False] * 5


async def test_bad_arguments_are_422_with_the_field(hall: Running) -> None:
    op = hall.as_role("operator")
    r = await hall.client.post("/api/v1/devices/relay/actions/on", json={"chanel": 1}, headers=op)
    assert r.status_code == 422
    assert "chanel" in r.json()["error"]["message"]
    r = await hall.client.post("/api/v1/devices/relay/actions/on", json={"channel": 9}, headers=op)
    assert r.status_code == 422 and "9" in r.json()["error"]["message"]
    r = await hall.client.post("/api/v1/devices/relay/actions/on", content=b"{", headers=op)
    assert r.status_code == 422 and "JSON" in r.json()["error"]["message"]
    r = await hall.client.post("/api/v1/devices/relay/actions/on", json=[1], headers=op)
    assert r.status_code == 422


async def test_unknown_device_and_action_are_404(hall: Running) -> None:
    op = hall.as_role("operator")
    r = await hall.client.post("/api/v1/devices/nope/actions/on", headers=op)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await hall.client.post("/api/v1/devices/relay/actions/explode", headers=op)
    assert r.status_code == 404 and "sequence_on" in r.json()["error"]["message"]


async def test_running_sequence_refuses_other_actions_with_409(
    hall: Running, modbus: ModbusEmulator
) -> None:
    op = hall.as_role("operator")
    async with hall.host.events.subscribe() as sub:
        sequence = asyncio.create_task(
            hall.client.post("/api/v1/devices/relay/actions/sequence_on", headers=op)
        )
        await wait_for(lambda: hall.host.devices.get("relay").state["sequencing"])
        r = await hall.client.post("/api/v1/devices/relay/actions/off", headers=op)
        assert r.status_code == 409
        assert "sequence" in r.json()["error"]["message"]
        assert (await sequence).status_code == 200
        progress = []
        while not sub.queue.empty():
            event = sub.queue.get_nowait()
            if event.type == "state" and event.source == "relay":
                progress.append([n for n, on in event.data["channels"].items() if on])
    # The sequence's steps went out as events, one channel more each time.
    assert [["1"], ["1", "2"], ["1", "2", "3"]] == [p for p in progress if p][:3]
    # And the refusal is in the audit, with its reason.
    r = await hall.client.get(
        "/api/v1/audit", params={"target": "relay"}, headers=hall.as_role("admin")
    )
    refused = [row for row in r.json() if row["result"] == "refused"]
    assert refused and "sequence" in refused[0]["detail"]


async def test_sequence_off_runs_in_reverse(hall: Running, modbus: ModbusEmulator) -> None:
    op = hall.as_role("operator")
    await hall.client.post("/api/v1/devices/relay/actions/sequence_on", headers=op)
    order: list[str] = []
    async with hall.host.events.subscribe() as sub:
        r = await hall.client.post("/api/v1/devices/relay/actions/sequence_off", headers=op)
        assert r.status_code == 200
        previous = {"1", "2", "3"}
        while not sub.queue.empty():
            event = sub.queue.get_nowait()
            if event.type == "state" and event.source == "relay":
                now = {n for n, on in event.data["channels"].items() if on}
                order.extend(sorted(previous - now))
                previous = now
    assert order == ["3", "2", "1"]
    assert await modbus.coils(1, 0, 8) == [False] * 8


async def test_actions_are_audited_with_who_and_cause(hall: Running) -> None:
    await hall.client.post(
        "/api/v1/devices/relay/actions/on", json={"channel": 7}, headers=hall.as_role("operator")
    )
    r = await hall.client.get("/api/v1/audit", headers=hall.as_role("admin"))
    row = r.json()[0]
    assert row["who"] == "test-operator" and row["what"] == "on" and row["target"] == "relay"
    assert row["cause"] == "api" and row["result"] == "ok"
    assert json.loads(row["args"]) == {"channel": 7}
