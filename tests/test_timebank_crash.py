"""Nothing the time bank owes is lost to a kill -9, nor paid twice: the daemon as a
process, the real ticket plugin driven through its API, the time bank read through its.

The hook is called after the ticket's commit, so a crash in between loses the call
(delivery is at most once); the time bank's cursor, kept in the transaction of its
entries, and its catch-up at start make up for it. Two ways to open that window: the
time bank blocked (`GRIDHALL_BLOCK_PLUGINS`) while tickets are closed, then the daemon
killed and started with it; and tickets closed by many clients with the daemon killed
at a random moment, again and again.
"""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import Process, create_token_cli, run_clients, spawn_daemon, wait_http
from tests.ticket_support import POINT, import_district, tickets_config
from tests.timebank_support import TB

BLOCKED = {"GRIDHALL_BLOCK_PLUGINS": "plugins.timebank"}


class Desk:
    """The command center's desk and a handler, over HTTP to a daemon process."""

    def __init__(self, url: str, tokens: dict[str, str]) -> None:
        self.http = {
            role: httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            for role, token in tokens.items()
        }

    def close(self) -> None:
        for client in self.http.values():
            client.close()

    def report(self, reporter: str, key: str) -> int:
        body = {"category": "city.litter", **POINT, "channel": "resident", "reporter": reporter}
        r = self.http["dispatcher"].post("/api/v1/tickets", json={**body, "idem_key": key})
        assert r.status_code in (200, 201), r.text
        ticket: int = r.json()["id"]
        return ticket

    def step(self, ticket: int, name: str, **args: Any) -> dict[str, Any]:
        role = "handler" if name in ("accept", "report") else "dispatcher"
        r = self.http[role].post(f"/api/v1/tickets/{ticket}/{name}", json=args or None)
        assert r.status_code == 200, (name, r.status_code, r.text)
        change: dict[str, Any] = r.json()
        return change

    def loop(self, ticket: int) -> dict[str, Any]:
        """register -> dispatch (to the grid member) -> accept -> report -> verify."""
        for name in ("register", "dispatch", "accept", "report"):
            self.step(ticket, name)
        return self.step(ticket, "verify")

    def get(self, path: str, **params: Any) -> Any:
        r = self.http["organiser"].get(path, params=params)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json()

    def balance(self, account: str) -> int | None:
        r = self.http["organiser"].get(f"{TB}/accounts/{account}")
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        value: int = r.json()["balance"]
        return value

    def ledger(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.get(f"{TB}/audit", after=after, limit=1000)
            found += page["entries"]
            if page["next"] is None:
                return found
            after = page["next"]

    def tickets(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 500}
        while True:
            page = self.get("/api/v1/tickets", **params)
            found += page["tickets"]
            if page["next"] is None:
                return found
            params["before"] = page["next"]


class Hall:
    """One store, one port, a daemon process started and killed as a test says."""

    def __init__(self, tmp_path: Path, processes: list[Process]) -> None:
        self.config = tickets_config(tmp_path)
        asyncio.run(import_district(tmp_path, self.config))
        found = re.search(r'listen = "127\.0\.0\.1:(\d+)"', self.config.read_text())
        assert found is not None
        self.port = int(found.group(1))
        roles = ("dispatcher", "handler", "timebank-organiser")
        tokens = {role: create_token_cli(self.config, role) for role in roles}
        tokens["organiser"] = tokens.pop("timebank-organiser")
        self.tokens = tokens
        self.processes = processes

    def start(self, env: dict[str, str] | None = None) -> tuple[Process, Desk]:
        proc = spawn_daemon(self.config, self.port, env)
        self.processes.append(proc)
        wait_http(f"{proc.url}/api/v1/health")
        return proc, Desk(proc.url, self.tokens)

    @staticmethod
    def kill(proc: Process, desk: Desk | None) -> None:
        """SIGKILL: no shutdown, nothing flushed but what was committed. The desk is
        closed unless its clients are still running (they are closed once joined)."""
        proc.proc.kill()
        proc.proc.wait(timeout=10)
        if desk is not None:
            desk.close()


def test_tickets_closed_while_the_time_bank_was_away_are_paid_at_its_return(
    tmp_path: Path, processes: list[Process]
) -> None:
    hall = Hall(tmp_path, processes)
    proc, desk = hall.start()
    first = desk.report("R-1", "first")
    desk.loop(first)
    assert desk.balance("member:M1") == 60 and desk.balance("resident:R-1") == 30
    hall.kill(proc, desk)

    # The time bank away: the ticket plugin commits and tells nobody who pays.
    proc, desk = hall.start(BLOCKED)
    assert desk.http["organiser"].get(f"{TB}/").status_code == 404
    second = desk.report("R-2", "second")
    verified = desk.loop(second)
    assert verified["ticket"]["on_time"] is True
    reopened = desk.step(first, "reopen", reason="the litter is back")
    hall.kill(proc, desk)

    # Back, after a crash: its catch-up pays what it missed, from its cursor on.
    proc, desk = hall.start()
    assert desk.balance("resident:R-2") == 30
    assert desk.balance("member:M1") == 60  # the first close taken back, the second paid
    sources = [e["source"] for e in desk.ledger()]
    assert sources[-3:] == [
        f"ticket:{second}:report-verified:{verified['seq'] - 4}",
        f"ticket:{second}:closed-on-time:{verified['seq']}",
        f"ticket:{first}:closed-on-time:{reopened['seq']}",  # the reversal
    ]
    assert len(sources) == 5
    assert desk.get(f"{TB}/audit/check")["ok"]
    hall.kill(proc, desk)

    proc, desk = hall.start()  # nothing new: nothing paid again
    assert len(desk.ledger()) == 5
    hall.kill(proc, desk)


MIN_ROUNDS, MAX_ROUNDS = 2, 6
CLIENTS = 8


def load(desk: Desk, round_: int, stop: threading.Event) -> None:
    """Tickets round the loop from CLIENTS threads until `stop` or the daemon dies."""

    def client(worker: int) -> None:
        n = 0
        while not stop.is_set():
            try:
                desk.loop(desk.report(f"R-{round_}-{worker}-{n}", f"{round_}-{worker}-{n}"))
            except (httpx.HTTPError, AssertionError):
                return  # the daemon is gone (a cut answer may read as anything)
            n += 1

    run_clients(CLIENTS, client, stop)


def unpaid_on_disk(db: Path) -> int:
    """Changes the killed daemon committed and the time bank had not applied: the
    window between the ticket's commit and the award, caught open."""
    conn = sqlite3.connect(db)  # recovers the WAL, as a start does
    try:
        cursor = conn.execute("SELECT coalesce(max(seq), 0) FROM timebank_cursor").fetchone()[0]
        after: int = conn.execute(
            "SELECT count(*) FROM ticket_events WHERE id > ?", (cursor,)
        ).fetchone()[0]
        return after
    finally:
        conn.close()


def test_a_kill_9_mid_load_loses_no_award_and_pays_none_twice(
    tmp_path: Path, processes: list[Process]
) -> None:
    """Killed while clients close tickets, until a kill has caught at least one change
    committed and not yet applied (most rounds do: under load the hook's calls queue
    behind the commits), so the catch-up is seen to make up for it."""
    hall = Hall(tmp_path, processes)
    rnd = random.Random(11)
    caught, round_ = 0, 0
    while round_ < MIN_ROUNDS or (not caught and round_ < MAX_ROUNDS):
        proc, desk = hall.start()
        stop = threading.Event()
        loader = threading.Thread(target=load, args=(desk, round_, stop))
        loader.start()
        deadline = time.monotonic() + 30
        while len(desk.tickets()) < 20 * (round_ + 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rnd.random())
        hall.kill(proc, None)
        stop.set()
        loader.join(timeout=60)
        desk.close()  # only now: a client thread may still be mid-request
        caught += unpaid_on_disk(hall.config.with_name("gridhall.db"))

        proc, desk = hall.start()
        tickets = desk.tickets()
        assert len(tickets) >= 20 * (round_ + 1), "the load never ran"
        awards = [e for e in desk.ledger() if e["kind"] == "award"]
        paid: dict[tuple[str, str], int] = {}
        for award in awards:
            _, ticket, rule, _ = award["source"].split(":")
            paid[(ticket, rule)] = paid.get((ticket, rule), 0) + 1
        owed = {(str(t["id"]), "report-verified") for t in tickets if t["state"] != "collected"}
        owed |= {(str(t["id"]), "closed-on-time") for t in tickets if t["on_time"]}
        assert set(paid) == owed, f"round {round_}: lost or unowed awards"
        assert set(paid.values()) == {1}, f"round {round_}: an award paid twice"
        closed = sum(1 for t in tickets if t["on_time"])
        assert desk.balance("member:M1") == 60 * closed
        assert desk.get(f"{TB}/audit/check")["ok"]
        hall.kill(proc, desk)
        round_ += 1
    assert caught, f"no kill in {round_} rounds fell between a commit and its award"
