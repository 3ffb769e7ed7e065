"""What the time bank's tests share: a ledger on a real SQLite connection with the
plugin's own migrations, a daemon with an organiser token, the real ticket plugin's
loop driven through its API, and a stand-in for the ticket plugin's side of the hooks.

`TicketDesk` is not the ticket plugin and has no API: it walks tickets through the
real workflow (`plugins.tickets.workflow.next_state`) and speaks the two documented
hooks, `gridhall_ticket_changed` (it calls it, or "loses" the call) and
`gridhall_ticket_changes` (it answers it, with each ticket as it is now), with change
records of exactly the documented shape. It stays for what the real plugin never does
on purpose: deliver a change twice, late, or not at all.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from daemon import auth
from daemon.clock import ManualClock
from daemon.hookspecs import hookimpl
from daemon.host import Host
from daemon.pluginhost import PluginHost
from plugins.tickets.workflow import next_state
from plugins.timebank import accounts
from plugins.timebank.config import ORGANISER_ROLE
from plugins.timebank.tables import MIGRATIONS
from tests.support import Running, bare_config, running
from tests.ticket_support import import_district, step, tickets_at, tickets_config

TB = "/api/v1/timebank"


def ledger_conn() -> sqlite3.Connection:
    """An in-memory store with the time bank's tables, as the migrations make them."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for m in MIGRATIONS:
        conn.executescript(m.sql)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """What `Store.write` does around its function."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def open_accounts(conn: sqlite3.Connection, *refs: str, family: str | None = None) -> None:
    with transaction(conn):
        for ref in refs:
            accounts.open_account(conn, ref, by="test", at=time.time(), family=family)


def balances(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT id, balance FROM timebank_accounts").fetchall())


@asynccontextmanager
async def timebank(
    tmp_path: Path, extra: str = "", plugins: PluginHost | None = None
) -> AsyncIterator[Running]:
    """A daemon with no devices, `extra` in its config, and an organiser token."""
    async with running(bare_config(tmp_path, extra), plugins) as hall:
        hall.tokens[ORGANISER_ROLE] = await auth.create_token(
            hall.host.store, "organiser-1", ORGANISER_ROLE
        )
        yield hall


def organiser(hall: Running, key: str | None = None) -> dict[str, str]:
    headers = hall.as_role(ORGANISER_ROLE)
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


class TicketDesk:
    """The ticket plugin's side of the hooks, and nothing else (see the module doc)."""

    def __init__(self) -> None:
        self.tickets: dict[int, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []  # each change with the ticket after it
        self.answered = 0  # gridhall_ticket_changes calls

    def new_ticket(self, ticket_id: int, **fields: Any) -> dict[str, Any]:
        now = time.time()
        ticket = {
            "id": ticket_id,
            "category": "city.litter",
            "tier": "simple",
            "major": False,
            "state": "collected",
            "channel": "resident",
            "grid": "12011000100101",
            "street": "120110001",
            "department": None,
            "member": "m-7",  # the grid's member on duty, who handles a simple case
            "handler": None,
            "reporter": None,
            "created_at": now,
            "due_at": now + 7200,
            "closed_at": None,
            "on_time": None,
            **fields,
        }
        self.tickets[ticket_id] = ticket
        return ticket

    async def change(
        self,
        host: Host,
        ticket_id: int,
        transition: str,
        *,
        deliver: bool = True,
        data: dict[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Commit a transition (the workflow must allow it) and call the hook, unless
        `deliver` is False: the call lost to a crash after the commit."""
        ticket = self.tickets.get(ticket_id) or self.new_ticket(ticket_id)
        before = ticket["state"]
        after = "collected" if transition == "collect" else next_state(before, transition)
        ticket.update(fields, state=after)
        change = {
            "seq": len(self.history) + 1,
            "at": time.time(),
            "actor": "desk-1",
            "transition": transition,
            "from": None if transition == "collect" else before,
            "to": after,
            "data": data or {},
            "ticket": dict(ticket),
        }
        self.history.append(change)
        if deliver:
            await self.deliver(host, change)
        return change

    async def deliver(self, host: Host, change: dict[str, Any]) -> None:
        await host.plugins.ticket_changed(change, host)

    @hookimpl
    def gridhall_ticket_changes(self, after: int, limit: int) -> list[dict[str, Any]]:
        self.answered += 1
        found = [c for c in self.history if c["seq"] > after][:limit]
        return [{**c, "ticket": dict(self.tickets[c["ticket"]["id"]])} for c in found]


async def balance(hall: Running, account: str) -> int | None:
    """An account's balance through the API; None when it was never opened."""
    r = await hall.client.get(f"{TB}/accounts/{account}", headers=hall.as_role("viewer"))
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    value: int = r.json()["balance"]
    return value


async def entries(hall: Running) -> list[dict[str, Any]]:
    """Every ledger entry, oldest first, through the audit."""
    r = await hall.client.get(f"{TB}/audit", headers=organiser(hall))
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["entries"]
    return found


# -- the real ticket plugin, through its API ------------------------------------------


@asynccontextmanager
async def hall_with_tickets(
    tmp_path: Path, clock: ManualClock, extra: str = ""
) -> AsyncIterator[Running]:
    """The daemon with its built-in grid, ticket and time bank plugins, the test
    district imported (member Mn on duty in grid 0n), `clock` as the host's clock,
    `extra` in the config, and a token for every ticket role and the organiser."""
    config = tickets_config(tmp_path, extra)
    await import_district(tmp_path, config)
    async with tickets_at(config, clock) as hall:
        hall.tokens[ORGANISER_ROLE] = await auth.create_token(
            hall.host.store, "organiser-1", ORGANISER_ROLE
        )
        yield hall


async def transition(hall: Running, ticket: int, name: str, **args: Any) -> dict[str, Any]:
    """One transition through the ticket API with its least role; its change record."""
    role = "handler" if name in ("accept", "report") else "dispatcher"
    r = await step(hall, ticket, name, role, **args)
    assert r.status_code == 200, (name, r.status_code, r.text)
    change: dict[str, Any] = r.json()
    return change


async def close(hall: Running, ticket: int, **dispatch: Any) -> dict[str, Any]:
    """register -> dispatch (`dispatch`: its arguments) -> accept -> report back ->
    verify, through the ticket API; the verify's change record."""
    await transition(hall, ticket, "register")
    await transition(hall, ticket, "dispatch", **dispatch)
    await transition(hall, ticket, "accept")
    await transition(hall, ticket, "report")
    return await transition(hall, ticket, "verify")
