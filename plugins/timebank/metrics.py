"""The time bank's metrics, read in one call per scrape.

Accounts and their balances by kind: the pool pays every reward, so its balance is
the negative of what the others hold, and the sum over all kinds is the ledger's
invariant, zero (`gridhall_timebank_balance` summed). Entries are append-only, so
their count is a counter that survives restarts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from daemon.host import Host


def _read(conn: sqlite3.Connection) -> dict[str, Any]:
    return {
        "accounts": conn.execute(
            "SELECT kind, count(*), coalesce(sum(balance), 0) FROM timebank_accounts "
            "GROUP BY kind ORDER BY kind"
        ).fetchall(),
        # Append-only, no gaps (rowids are not reused while rows exist): the last id counts.
        "entries": conn.execute("SELECT coalesce(max(id), 0) FROM timebank_entries").fetchone()[0],
        "flagged": conn.execute(
            "SELECT count(*) FROM timebank_entries INDEXED BY timebank_entries_flagged "
            "WHERE flagged IS NOT NULL"
        ).fetchone()[0],
        "refused": conn.execute("SELECT count(*) FROM timebank_refused").fetchone()[0],
    }


class TimebankMetrics:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.read: dict[str, Any] = {"accounts": [], "entries": 0, "flagged": 0, "refused": 0}

    async def refresh(self) -> None:
        self.read = await self.host.store.read(_read)

    def collect(self) -> Iterator[Metric]:
        accounts = GaugeMetricFamily(
            "gridhall_timebank_accounts", "Accounts, by kind.", labels=["kind"]
        )
        balance = GaugeMetricFamily(
            "gridhall_timebank_balance",
            "What the accounts of each kind hold; summed over kinds it is always 0.",
            labels=["kind"],
        )
        for kind, n, held in self.read["accounts"]:
            accounts.add_metric([kind], n)
            balance.add_metric([kind], held)
        yield accounts
        yield balance
        yield CounterMetricFamily(
            "gridhall_timebank_entries", "Ledger entries posted.", self.read["entries"]
        )
        yield GaugeMetricFamily(
            "gridhall_timebank_flagged", "Entries flagged for review.", self.read["flagged"]
        )
        yield CounterMetricFamily(
            "gridhall_timebank_refused", "Automatic awards a limit kept out.", self.read["refused"]
        )
