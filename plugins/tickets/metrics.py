"""The ticket plugin's metrics: tickets by state and the open ones past their deadline.

Counting a million tickets by state on every scrape would hold the store's thread for
a scan each time, so the counts are read once (on the first scrape, with the newest
change's `seq`) and then kept from the changes the plugin tells, skipping any the
count already holds. Overdue depends on the clock, not on changes: it is one count on
the open tickets' partial index per scrape, the board's own clause.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily, Metric

from plugins.tickets.queries import Filters

if TYPE_CHECKING:
    from daemon.host import Host


class TicketMetrics:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.by_state: Counter[str] | None = None  # None until the first scrape
        self.loaded_seq = 0  # the newest change the counts read from the store hold
        self.overdue = 0
        self._heard: list[dict[str, Any]] | None = None  # changes told while loading
        self._lock = asyncio.Lock()

    def changed(self, change: dict[str, Any]) -> None:
        """A committed change, as `gridhall_ticket_changed` tells it."""
        if self.by_state is None:
            if self._heard is not None:
                self._heard.append(change)
            return
        if change["seq"] <= self.loaded_seq:
            return  # committed before the counts were read: already in them
        if change["from"] is not None:
            self.by_state[change["from"]] -= 1
        self.by_state[change["to"]] += 1

    async def refresh(self) -> None:
        now = self.host.clock.now().timestamp()
        clauses, params = Filters(overdue=True).where(now)
        where = " AND ".join(clauses)
        overdue_sql = f"SELECT count(*) FROM tickets INDEXED BY tickets_open_board WHERE {where}"
        async with self._lock:
            load = self.by_state is None
            if load:
                self._heard = []

            def read(conn: sqlite3.Connection) -> tuple[Any, int]:
                loaded = None
                if load:
                    states = conn.execute("SELECT state, count(*) FROM tickets GROUP BY state")
                    seq = conn.execute("SELECT coalesce(max(id), 0) FROM ticket_events")
                    loaded = (Counter(dict(states.fetchall())), seq.fetchone()[0])
                return loaded, conn.execute(overdue_sql, params).fetchone()[0]

            loaded, self.overdue = await self.host.store.read(read)
            if loaded is not None:
                heard, self._heard = self._heard or [], None
                self.by_state, self.loaded_seq = loaded
                for change in heard:
                    self.changed(change)

    def collect(self) -> Iterator[Metric]:
        states = GaugeMetricFamily(
            "gridhall_tickets", "Tickets in each workflow state.", labels=["state"]
        )
        for state, n in sorted((self.by_state or {}).items()):
            states.add_metric([state], n)
        yield states
        yield GaugeMetricFamily(
            "gridhall_tickets_overdue", "Open tickets past their deadline.", self.overdue
        )
