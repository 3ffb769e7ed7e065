"""The demo config as `make run` starts it: emulators inside, real drivers, live state."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
from pymodbus.client import AsyncModbusTcpClient

from daemon.clock import ManualClock
from tests.support import (
    Process,
    create_token_cli,
    demo_copy,
    spawn_daemon,
    wait_for,
    wait_http,
)
from tests.ticket_support import local, tickets_at


def test_demo_serves_live_devices(tmp_path: Path, processes: list[Process]) -> None:
    config, api, modbus_port = demo_copy(tmp_path)
    proc = spawn_daemon(config, api)
    processes.append(proc)
    wait_http(f"{proc.url}/api/v1/health")
    headers = {"Authorization": f"Bearer {create_token_cli(config, 'operator')}"}
    with httpx.Client(base_url=proc.url, headers=headers, timeout=5) as client:
        for _ in range(100):
            devices = client.get("/api/v1/devices").json()
            if all(d["available"] for d in devices):
                break
            time.sleep(0.05)
        kinds = {d["kind"] for d in devices}
        assert kinds >= {"power", "fan", "curtain", "screen", "matrix"}, kinds
        assert all(d["available"] for d in devices), [d for d in devices if not d["available"]]
        states = {d["id"]: d["state"] for d in devices}
        assert "channels" in states["power-1"] and states["curtain-1"]["moving"] is None
        assert client.get("/api/v1/health").json()["status"] == "ok"
        r = client.post("/api/v1/devices/power-1/actions/on", json={"channel": 1})
        assert r.status_code == 200 and r.json()["state"]["channels"]["1"] is True
        assert states["matrix-1"]["routes"] == {"1": 0, "2": 0, "3": 0, "4": 0}
        r = client.post("/api/v1/devices/matrix-1/actions/route", json={"input": 5, "output": 2})
        assert r.status_code == 200 and r.json()["state"]["routes"]["2"] == 5
        # The seats on the KVM: a layout, and the secure computer out of an operator's reach.
        seats = client.get("/api/v1/seats").json()
        assert [s["id"] for s in seats["seats"]] == ["dispatch-1", "dispatch-2"]
        r = client.post("/api/v1/seats/dispatch-1/layouts/patrol/recall")
        assert r.status_code == 200 and r.json()["layout"] == "patrol", r.text
        r = client.post(
            "/api/v1/seats/dispatch-1/route", json={"console": 3, "computer": "secure-pc"}
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"

    async def read_coil() -> bool:
        # An independent Modbus client reads the emulator the daemon started.
        client = AsyncModbusTcpClient("127.0.0.1", port=modbus_port)
        await client.connect()
        result = await client.read_coils(0, count=1, device_id=1)
        client.close()
        return bool(result.bits[0])

    assert asyncio.run(read_coil()) is True
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(timeout=5) == 0


async def test_a_major_case_gone_overdue_puts_the_map_on_the_wall(tmp_path: Path) -> None:
    """The hall meets the governance: the demo's drill (a major case due in two
    minutes) goes overdue, and the wall-map scene routes the map computer (input 2) to
    the video wall (output 1) on the Extron emulator, and the wall display to HDMI 1."""
    config, _, _ = demo_copy(tmp_path)
    clock = ManualClock(local("2026-03-02T10:00"))
    async with tickets_at(config, clock) as hall:
        await wait_for(lambda: all(d.available for d in hall.host.devices), timeout=30)
        matrix = hall.host.devices.get("matrix-1")
        assert matrix.state["routes"]["1"] == 0
        r = await hall.client.post(
            "/api/v1/tickets",
            json={"category": "drill.major", "description": "演练: 重大事件"},
            headers=hall.as_role("reporter"),
        )
        assert r.status_code == 201, r.text
        await clock.settle()
        await clock.move_to(local("2026-03-02T10:02"))
        await wait_for(lambda: matrix.state["routes"]["1"] == 2, timeout=10)
        await wait_for(lambda: hall.host.devices.get("screen-2").state.get("input") == "hdmi1")
        runs = await hall.client.get("/api/v1/scenes/wall-map", headers=hall.as_role("viewer"))
        assert runs.json()["last_run"]["cause"] == f"ticket:{r.json()['id']}:overdue"
