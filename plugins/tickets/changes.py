"""The change record other plugins see, built from `ticket_events`, and how it is told.

The shape is a contract (daemon/hookspecs.py, `gridhall_ticket_changed`): `{"seq",
"at", "actor", "transition", "from", "to", "data", "ticket"}`, `seq` being the history
row's id and `ticket` the summary below. It is told after the commit, to the hook and
as the event `tickets.changed`; `gridhall_ticket_changes` replays the same records.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import sqlite3
from typing import TYPE_CHECKING, Any

from daemon.hookspecs import TICKET_FIELDS

if TYPE_CHECKING:
    from daemon.host import Host

NAME = "tickets"

# The ticket as a change carries it: the hook's documented keys, in their order.
SUMMARY = TICKET_FIELDS
_SUMMARY_SQL = ", ".join(f"t.{c}" for c in SUMMARY)
_EVENT_SQL = "e.id, e.at, e.actor, e.transition, e.from_state, e.to_state, e.data"


def summary(values: tuple[Any, ...] | sqlite3.Row) -> dict[str, Any]:
    ticket = dict(zip(SUMMARY, values, strict=True))
    ticket["major"] = bool(ticket["major"])
    if ticket["on_time"] is not None:
        ticket["on_time"] = bool(ticket["on_time"])
    return ticket


def _change(event: tuple[Any, ...], ticket: tuple[Any, ...]) -> dict[str, Any]:
    seq, at, actor, transition, from_state, to_state, data = event
    return {
        "seq": seq,
        "at": at,
        "actor": actor,
        "transition": transition,
        "from": from_state,
        "to": to_state,
        "data": json.loads(data) if data else {},
        "ticket": summary(ticket),
    }


# The history row of a change; with its id given when a batch numbers its own.
INSERT_EVENT = (
    "INSERT INTO ticket_events (id, ticket, at, actor, transition, from_state, to_state, "
    "note, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def event_values(
    seq: int | None,
    ticket: int,
    *,
    at: float,
    actor: str,
    transition: str,
    from_state: str | None,
    to_state: str,
    note: str | None,
    data: dict[str, Any],
) -> tuple[Any, ...]:
    """The values of INSERT_EVENT (`seq` None: the next id)."""
    text = json.dumps(data, ensure_ascii=False) if data else None
    return (seq, ticket, at, actor, transition, from_state, to_state, note, text)


def made(event: tuple[Any, ...], seq: int, ticket_row: dict[str, Any]) -> dict[str, Any]:
    """The change record of history values (`event_values`) written as `seq`, the
    ticket being `ticket_row` after it."""
    _, _, at, actor, transition, from_state, to_state, _, _ = event
    change = _change(
        (seq, at, actor, transition, from_state, to_state, None),
        tuple(ticket_row[k] for k in SUMMARY),
    )
    change["data"] = json.loads(event[8]) if event[8] else {}
    return change


def record(conn: sqlite3.Connection, event: tuple[Any, ...]) -> dict[str, Any]:
    """Write the history row `event` (`event_values`, seq None) inside its
    transaction; the change record, the ticket as it is now."""
    seq = conn.execute(INSERT_EVENT, event).lastrowid
    assert seq is not None
    cur = conn.execute(f"SELECT {_SUMMARY_SQL} FROM tickets t WHERE t.id = ?", (event[1],))
    return made(event, seq, dict(zip(SUMMARY, cur.fetchone(), strict=True)))


def changes_after(conn: sqlite3.Connection, after: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {_EVENT_SQL}, {_SUMMARY_SQL} FROM ticket_events e "
        "JOIN tickets t ON t.id = e.ticket WHERE e.id > ? ORDER BY e.id LIMIT ?",
        (after, limit),
    ).fetchall()
    return [_change(row[:7], row[7:]) for row in rows]


# Set while the teller delivers: a listener that makes a change of its own (a plugin
# that answers a verify with a transition) queues it behind the one it is hearing.
_telling: contextvars.ContextVar[bool] = contextvars.ContextVar("telling", default=False)


class Teller:
    """Tells committed changes to the hook and the event stream one at a time, in the
    order they were committed: the store answers its writers in the order they ran, and
    they queue here in that order, so a listener that awaits never sees a later change
    before an earlier one. A caller waits until its change was told, unless it is itself
    a listener (that would wait on itself)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def tell(self, change: dict[str, Any]) -> None:
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((change, done))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tickets-changes")
        if not _telling.get():
            await done

    async def _run(self) -> None:
        host = self.host
        _telling.set(True)
        while True:
            change, done = await self._queue.get()
            try:
                await host.plugins.ticket_changed(change, host)  # each listener's failure is logged
                host.publish(NAME, "changed", change)
            finally:
                if not done.done():
                    done.set_result(None)

    async def stop(self) -> None:
        """At shutdown; a change not told yet is lost (delivery is at most once)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def announce(host: Host, change: dict[str, Any]) -> None:
    """After the commit: the hook, then the event stream (SSE, other plugins), in
    commit order (`Teller`)."""
    from plugins.tickets import live

    await live.get(host).teller(host).tell(change)
