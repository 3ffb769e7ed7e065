"""Taking a period's measures on a running daemon: counts, unit names, rates.

One read per request (one hop to the store's thread): the rollup's sums over the
period's days, or the direct query where the rollup cannot cut the period, and the
names of the units. The rollup is made ready once, on first use (`ready`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from daemon.host import Host
from plugins.tickets import rollup, whistle_measures
from plugins.tickets.measures import COUNTERS, DIMS, direct_sql, rates, rollup_sql
from plugins.tickets.measures_config import MeasuresConfig
from plugins.tickets.periods import Period

Counts = dict[tuple[str, str], dict[str, int]]


def read_counts(
    conn: sqlite3.Connection,
    period: Period,
    bounds: tuple[float, float],
    response_s: float,
    *,
    direct: bool,
) -> Counts:
    """Counters per (dim, key) over the period: from the rollup, or `direct`ly."""
    counts: Counts = {}
    if not direct:
        for dim, key, *values in conn.execute(rollup_sql(), rollup.buckets(period)):
            counts[(dim, key)] = dict(zip(COUNTERS, values, strict=True))
        return counts
    params = {"start": bounds[0], "end": bounds[1], "response_s": response_s}
    for part in ("registered", "due"):
        sql, names = direct_sql(part)
        for dim, key, *values in conn.execute(sql, params):
            unit = counts.setdefault((dim, key), dict.fromkeys(COUNTERS, 0))
            unit.update(zip(names, values, strict=True))
    return counts


def unit_names(conn: sqlite3.Connection, dims: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Names to show beside the ids: departments from the ticket tables, streets and
    members from the grid registry's (absent when the grid plugin is blocked)."""
    names: dict[str, dict[str, str]] = {
        "department": dict(conn.execute("SELECT id, name FROM ticket_departments").fetchall())
    }
    queries = {
        "street": "SELECT code, name FROM grid_nodes WHERE level = 'street'",
        "member": "SELECT id, name FROM grid_people",
    }
    for dim, sql in queries.items():
        if dim in dims:
            try:
                names[dim] = dict(conn.execute(sql).fetchall())
            except sqlite3.OperationalError:
                names[dim] = {}
    return names


class MeasureService:
    def __init__(self, host: Host, config: MeasuresConfig) -> None:
        self.host = host
        self.config = config
        self.offset_s: int | None = None  # what the rollup was built with, once ready
        self._lock = asyncio.Lock()

    @property
    def response_s(self) -> float:
        return self.config.response_hours * 3600

    async def ready(self) -> bool:
        """Build the rollup if the settings or definitions changed (seconds on a large
        store, once); True when it was rebuilt now."""
        if self.offset_s is not None:
            return False
        async with self._lock:
            if self.offset_s is not None:
                return False
            offset = rollup.offset_of(self.host.calendar.tz)
            rebuilt = await self.host.store.write(
                lambda conn: rollup.ensure(conn, offset, self.response_s)
            )
            self.offset_s = offset
            return rebuilt

    async def counts(
        self, period: Period, dims: tuple[str, ...] = DIMS, *, direct: bool = False
    ) -> tuple[Counts, dict[str, dict[str, str]], str]:
        await self.ready()
        tz = self.host.calendar.tz
        assert self.offset_s is not None
        direct = direct or not rollup.fits(period, tz, self.offset_s)
        bounds = period.bounds(tz)

        def read(conn: sqlite3.Connection) -> tuple[Counts, dict[str, dict[str, str]]]:
            return (
                read_counts(conn, period, bounds, self.response_s, direct=direct),
                unit_names(conn, dims),
            )

        counts, names = await self.host.store.read(read)
        return counts, names, "direct" if direct else "rollup"

    async def take(
        self, period: Period, dims: tuple[str, ...] = DIMS, *, direct: bool = False
    ) -> dict[str, Any]:
        """The period's measures: the district, and each unit of each of `dims`."""
        counts, names, source = await self.counts(period, dims, direct=direct)
        bounds = period.bounds(self.host.calendar.tz)
        whistles = await self.host.store.read(lambda conn: whistle_measures.assess(conn, bounds))
        out: dict[str, Any] = {
            "period": period.to_dict(self.host.calendar.tz),
            "source": source,
            "district": self.unit(
                "district", "", counts.get(("district", ""), dict.fromkeys(COUNTERS, 0)), names
            ),
        }
        for dim in dims:
            if dim != "district":
                out[dim] = [
                    self.unit(dim, key, c, names)
                    for (d, key), c in sorted(counts.items())
                    if d == dim
                ]
        out["whistles"] = whistles  # one whistle, one assessment (whistle_measures.py)
        return out

    def unit(
        self, dim: str, key: str, counts: dict[str, int], names: dict[str, dict[str, str]]
    ) -> dict[str, Any]:
        return {
            "key": key or None,
            "name": names.get(dim, {}).get(key) or (key if key else None),
            "counts": counts,
            "rates": rates(counts, list(self.config.satisfied)),
        }
