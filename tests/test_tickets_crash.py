"""A ticket answered 201 is on disk: the daemon as a process, 32 clients posting
reports, killed with SIGKILL mid-load, again and again on the same store."""

from __future__ import annotations

import random
import re
import sqlite3
import threading
import time
from pathlib import Path

import httpx

from tests.support import Process, create_token_cli, run_clients, spawn_daemon, wait_http
from tests.ticket_support import tickets_config

ROUNDS = 4
CLIENTS = 32


def load(
    proc: Process, token: str, round_: int, stop: threading.Event, answered: dict[str, int]
) -> None:
    """Reports from CLIENTS threads until `stop` or the daemon dies; `answered` gets
    idem_key -> the id of every report answered 201."""
    lock = threading.Lock()

    def client(worker: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=proc.url, headers=headers, timeout=5) as http:
            n = 0
            while not stop.is_set():
                key = f"r{round_}-w{worker}-{n}"
                body = {"category": "security.fight", "idem_key": key, "description": key}
                try:
                    r = http.post("/api/v1/tickets", json=body)
                except httpx.HTTPError:
                    return  # the daemon is gone
                if r.status_code == 201:
                    with lock:
                        answered[key] = r.json()["id"]
                n += 1

    run_clients(CLIENTS, client, stop, join_s=20)


def test_every_201_survives_kill_9_again_and_again(
    tmp_path: Path, processes: list[Process]
) -> None:
    config = tickets_config(tmp_path)
    found = re.search(r'listen = "127\.0\.0\.1:(\d+)"', config.read_text())
    assert found is not None
    port = int(found.group(1))
    token = create_token_cli(config, "reporter")
    every: dict[str, int] = {}
    rnd = random.Random(7)
    for round_ in range(ROUNDS):
        proc = spawn_daemon(config, port)
        processes.append(proc)
        wait_http(f"{proc.url}/api/v1/health")
        stop = threading.Event()
        result: dict[str, int] = {}
        loader = threading.Thread(target=load, args=(proc, token, round_, stop, result))
        loader.start()
        # Killed somewhere in the middle of the load, once it runs (the first requests
        # on a shared machine may take a while: FastAPI builds its routes lazily).
        deadline = time.monotonic() + 30
        while len(result) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rnd.random())
        proc.proc.kill()
        proc.proc.wait(timeout=10)
        stop.set()
        loader.join(timeout=30)
        assert len(result) >= 50, f"round {round_}: the load never ran ({len(result)})"
        every.update(result)

        db = sqlite3.connect(tmp_path / "gridhall.db")  # recovers the WAL, as a start does
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = dict(db.execute("SELECT idem_key, id FROM tickets").fetchall())
            collected = db.execute("SELECT ticket FROM ticket_events WHERE transition = 'collect'")
            history = {t for (t,) in collected}
        finally:
            db.close()
        lost = {k: i for k, i in every.items() if stored.get(k) != i}
        assert not lost, f"round {round_}: {len(lost)} ticket(s) answered 201 are gone"
        assert set(every.values()) <= history  # each with its history row
        # A report whose answer was cut by the kill may be in, unanswered: never more.
        assert len(stored) - len(every) <= CLIENTS * (round_ + 1)
