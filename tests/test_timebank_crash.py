"""Nothing the time bank owes is lost to a kill -9, nor paid twice: the daemon as a
process, the real ticket plugin driven through its API, the time bank read through its.

The hook is called after the ticket's commit, so a crash in between loses the call
(delivery is at most once); the time bank's cursor, kept in the transaction of its
entries, and its catch-up at start make up for it. Here the window is held open on
purpose: the time bank blocked (`GRIDHALL_BLOCK_PLUGINS`) while tickets are closed and
reopened, then the daemon killed and started with it. Kills at random moments under
load, until one falls in the window: tests/test_crash_consistency.py.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx

from tests.support import Process, create_token_cli, spawn_daemon, wait_http
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
    def kill(proc: Process, desk: Desk) -> None:
        """SIGKILL: no shutdown, nothing flushed but what was committed."""
        proc.proc.kill()
        proc.proc.wait(timeout=10)
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
