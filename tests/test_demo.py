"""The demo config as `make run` starts it: emulators inside, real drivers, live state."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

import httpx
from pymodbus.client import AsyncModbusTcpClient

from tests.support import ROOT, Process, create_token_cli, free_port, spawn_daemon, wait_http


def demo_copy(tmp_path: Path) -> tuple[Path, int, int]:
    """The demo config with free ports and a store of its own, otherwise unchanged."""
    api, modbus = free_port(), free_port()
    text = (ROOT / "etc" / "gridhall.toml").read_text()
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{api}")
    text = text.replace("127.0.0.1:15020", f"127.0.0.1:{modbus}")
    # Every other emulator of the demo gets a free port too, wherever it is named.
    for port in sorted(set(re.findall(r"127\.0\.0\.1:(150\d\d)", text))):
        text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}")
    text = re.sub(r'^path = ".*"', 'path = "demo.db"', text, flags=re.M)
    path = tmp_path / "gridhall.toml"
    path.write_text(text)
    return path, api, modbus


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
