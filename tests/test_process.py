"""The daemon as a process: READY over the notify socket, SIGTERM, SSE, a store it cannot
write. Kill -9 under load: tests/test_crash_consistency.py."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import httpx

from tests.support import (
    Process,
    ThreadedEmulator,
    create_token_cli,
    free_port,
    relay_config,
    spawn_daemon,
    wait_http,
)


def notify_socket(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    return sock, path


def start(tmp_path: Path, modbus_port: int, processes: list[Process], **env: str) -> Process:
    port = free_port()
    config = relay_config(tmp_path, modbus_port, api_port=port)
    proc = spawn_daemon(config, port, env)
    processes.append(proc)
    return proc


def test_ready_watchdog_and_sigterm(
    tmp_path: Path, modbus_thread: ThreadedEmulator, processes: list[Process]
) -> None:
    sock, path = notify_socket(tmp_path)
    proc = start(
        tmp_path, modbus_thread.port, processes, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000"
    )
    messages = []
    while "READY=1" not in messages:
        messages.append(sock.recv(256).decode())
    # READY means the API is bound: it answers now, without waiting.
    assert httpx.get(f"{proc.url}/api/v1/health", timeout=2).status_code == 200
    assert sock.recv(256).decode() == "WATCHDOG=1"
    started = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(timeout=5) == 0
    assert time.monotonic() - started < 2.0
    rest = []
    sock.settimeout(0.5)
    try:
        while True:
            rest.append(sock.recv(256).decode())
    except TimeoutError:
        pass
    sock.close()
    assert "STOPPING=1" in rest


def test_nothing_sent_without_notify_socket(
    tmp_path: Path, modbus_thread: ThreadedEmulator, processes: list[Process]
) -> None:
    proc = start(tmp_path, modbus_thread.port, processes)
    wait_http(f"{proc.url}/api/v1/health")
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(timeout=5) == 0


def wait_until_available(url: str, headers: dict[str, str], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        devices = httpx.get(f"{url}/api/v1/devices", headers=headers, timeout=2).json()
        if all(d["available"] for d in devices):
            return
        time.sleep(0.05)
    raise AssertionError("devices never became available")


def test_events_stream_over_http(
    tmp_path: Path, modbus_thread: ThreadedEmulator, processes: list[Process]
) -> None:
    proc = start(tmp_path, modbus_thread.port, processes)
    wait_http(f"{proc.url}/api/v1/health")
    token = create_token_cli(proc.config, "operator")
    headers = {"Authorization": f"Bearer {token}"}
    wait_until_available(proc.url, headers)
    seen: list[tuple[str, dict]] = []
    with httpx.Client(base_url=proc.url, headers=headers, timeout=10) as client:
        with client.stream("GET", "/api/v1/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            event = None
            posted = False
            for line in lines:
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    seen.append((event or "", json.loads(line.removeprefix("data: "))))
                    if event == "snapshot" and not posted:
                        r = client.post("/api/v1/devices/relay/actions/on", json={"channel": 6})
                        assert r.status_code == 200
                        posted = True
                    if event == "state" and seen[-1][1]["data"]["channels"]["6"]:
                        break
    kinds = [k for k, _ in seen]
    assert kinds[0] == "snapshot"
    assert seen[0][1]["devices"][0]["id"] == "relay"
    assert "state" in kinds
    assert modbus_thread.call(modbus_thread.emulator.coils(1, 5, 1)) == [True]
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(timeout=5) == 0


def test_a_store_that_cannot_be_written_stops_the_start(
    tmp_path: Path, modbus_thread: ThreadedEmulator, processes: list[Process]
) -> None:
    """Not a daemon that says READY and then fails every action: exit 1, and why."""
    (tmp_path / "not-a-dir").write_text("")
    port = free_port()
    config = relay_config(tmp_path, modbus_thread.port, api_port=port)
    config.write_text(config.read_text().replace('path = "gridhall.db"', 'path = "not-a-dir/x.db"'))
    proc = spawn_daemon(config, port)
    processes.append(proc)
    assert proc.proc.wait(timeout=30) == 1
    assert "cannot open the store" in proc.output()
