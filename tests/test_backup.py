"""`gridhall backup` while the daemon writes, and `gridhall restore` once it stopped."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.support import (
    ROOT,
    Process,
    ThreadedEmulator,
    create_token_cli,
    free_port,
    relay_config,
    spawn_daemon,
    wait_http,
)


def gridhall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args], cwd=ROOT, capture_output=True, text=True
    )


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def audit_ids(path: Path) -> set[int]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM audit")}
    finally:
        conn.close()


def test_backup_under_load_then_restore(
    tmp_path: Path, modbus_thread: ThreadedEmulator, processes: list[Process]
) -> None:
    port = free_port()
    config = relay_config(tmp_path, modbus_thread.port, api_port=port)
    store = tmp_path / "gridhall.db"
    token = create_token_cli(config)
    proc = spawn_daemon(config, port)
    processes.append(proc)
    wait_http(f"{proc.url}/api/v1/health")
    headers = {"Authorization": f"Bearer {token}"}

    # Actions keep writing audit rows while the backup runs.
    answered: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=proc.url, headers=headers, timeout=5) as client:
            n = 0
            while not stop.is_set():
                r = client.post("/api/v1/devices/relay/actions/on", json={"channel": 1 + n % 4})
                if r.status_code == 200:
                    answered.append(n)
                n += 1

    writer = threading.Thread(target=load)
    writer.start()
    try:
        while len(answered) < 20:
            stop.wait(0.05)
        before = len(answered)
        out = gridhall("backup", str(tmp_path / "copy.db"), "-c", str(config))
        assert out.returncode == 0, out.stderr
        while len(answered) < before + 10:  # the daemon kept writing through it
            stop.wait(0.05)
    finally:
        stop.set()
        writer.join()
    assert "copy.db:" in out.stdout and "rows" in out.stdout
    copy = tmp_path / "copy.db"
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    # Every action answered before the backup started is in it.
    assert len(audit_ids(copy)) >= before

    # A restore is refused while the daemon runs, and changes nothing.
    refused = gridhall("restore", str(copy), "-c", str(config))
    assert refused.returncode == 1
    assert "daemon is running" in refused.stderr
    proc.proc.terminate()
    assert proc.proc.wait(timeout=10) == 0
    live_rows = audit_ids(store)
    assert len(live_rows) > len(audit_ids(copy))  # writes after the backup

    restored = gridhall("restore", str(copy), "-c", str(config))
    assert restored.returncode == 0, restored.stderr
    assert dump(store) == dump(copy)
    # The store it replaced was kept, whole.
    kept = sorted(tmp_path.glob("gridhall.db.before-restore-*"))
    assert len(kept) == 1 and audit_ids(kept[0]) == live_rows

    # The daemon starts on the restored store.
    proc = spawn_daemon(config, port)
    processes.append(proc)
    wait_http(f"{proc.url}/api/v1/health")
    r = httpx.get(f"{proc.url}/api/v1/audit", headers=headers, timeout=5)
    assert r.status_code == 200


def test_bad_backups_are_refused(tmp_path: Path, modbus_thread: ThreadedEmulator) -> None:
    config = relay_config(tmp_path, modbus_thread.port)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    out = gridhall("restore", str(garbage), "-c", str(config))
    assert out.returncode == 1 and "restore failed" in out.stderr
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    out = gridhall("restore", str(other), "-c", str(config))
    assert out.returncode == 1 and "not a gridhall store" in out.stderr
    out = gridhall("backup", str(tmp_path / "x.db"), "-c", str(config))
    assert out.returncode == 1 and "no store" in out.stderr
    assert not (tmp_path / "gridhall.db").exists()


def test_a_second_daemon_on_the_same_store_is_refused(
    tmp_path: Path, modbus_thread: ThreadedEmulator, processes: list[Process]
) -> None:
    port = free_port()
    config = relay_config(tmp_path, modbus_thread.port, api_port=port)
    first = spawn_daemon(config, port)
    processes.append(first)
    wait_http(f"{first.url}/api/v1/health")
    second = spawn_daemon(config, free_port())
    processes.append(second)
    assert second.proc.wait(timeout=20) == 1
    assert "another gridhall daemon is running" in second.output()
    assert first.proc.poll() is None
