"""The demo config as `make run` starts it: emulators inside, real drivers, live state."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
from pymodbus.client import AsyncModbusTcpClient

from tests.support import Process, create_token_cli, demo_copy, spawn_daemon, wait_http


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
