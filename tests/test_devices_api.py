"""Device actions through the HTTP API, checked on the Modbus server's own side."""

from __future__ import annotations

from drivers.emulators.modbus import ModbusEmulator
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
