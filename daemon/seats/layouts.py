"""Layouts in the store: a seat's own (owner "") and each operator's (owner: the name).

The config seeds the seats' layouts; the API saves layouts from the current routes.
As with scenes, a layout saved through the API over one of the config's wins until it
is deleted, which brings the config's back; one the config drops goes at the next
start or SIGHUP. Everything is held in memory too (layouts are few), so a recall
costs no store round trip before its routes go out.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from daemon.errors import NotFound, Refused
from daemon.seats.config import LayoutRoute, SeatConfig
from daemon.store import Store

SEAT = ""  # the owner of a seat's own layouts
PROFILE = "profile"  # an operator's layout kept at logout and restored at login

Key = tuple[str, str, str]  # (seat, owner, id)
# What commits with an edit in its transaction: its audit row, so that no edit is in
# force without its row, whenever a kill comes.
Also = Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class Layout:
    seat: str
    owner: str
    id: str
    name: str | None
    routes: tuple[LayoutRoute, ...]
    origin: str  # "config" or "api"
    updated_at: float
    updated_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name or self.id,
            "owner": self.owner or None,
            "routes": [r.model_dump() for r in self.routes],
            "origin": self.origin,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }


def _row(layout: Layout) -> tuple[Any, ...]:
    routes = json.dumps([r.model_dump() for r in layout.routes])
    return (
        layout.seat,
        layout.owner,
        layout.id,
        layout.name,
        routes,
        layout.origin,
        layout.updated_at,
        layout.updated_by,
    )


def _layout(row: Any) -> Layout:
    seat, owner, ident, name, routes, origin, at, by = row
    parsed = tuple(LayoutRoute.model_validate(r) for r in json.loads(routes))
    return Layout(seat, owner, ident, name, parsed, origin, at, by)


_UPSERT = (
    "INSERT INTO seat_layouts (seat, owner, id, name, routes, origin, updated_at, updated_by) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(seat, owner, id) DO UPDATE SET "
    "name = excluded.name, routes = excluded.routes, origin = excluded.origin, "
    "updated_at = excluded.updated_at, updated_by = excluded.updated_by"
)


class Layouts:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._all: dict[Key, Layout] = {}
        self._seeds: dict[Key, Layout] = {}

    async def seed(self, seats: Iterable[SeatConfig]) -> None:
        """Bring the store in line with the config's layouts, then hold them all."""
        now = time.time()
        self._seeds = {
            (seat.id, SEAT, lay.id): Layout(
                seat.id, SEAT, lay.id, lay.name, tuple(lay.routes), "config", now, "config"
            )
            for seat in seats
            for lay in seat.layouts
        }
        seeds = self._seeds

        def run(conn: sqlite3.Connection) -> list[Any]:
            stored = {
                (s, o, i): origin
                for s, o, i, origin in conn.execute(
                    "SELECT seat, owner, id, origin FROM seat_layouts"
                )
            }
            for key, origin in stored.items():
                if origin == "config" and key not in seeds:
                    conn.execute(
                        "DELETE FROM seat_layouts WHERE seat = ? AND owner = ? AND id = ?", key
                    )
            conn.executemany(_UPSERT, [_row(s) for k, s in seeds.items() if stored.get(k) != "api"])
            return conn.execute(
                "SELECT seat, owner, id, name, routes, origin, updated_at, updated_by "
                "FROM seat_layouts"
            ).fetchall()

        self._all = {
            (lay.seat, lay.owner, lay.id): lay for lay in map(_layout, await self.store.write(run))
        }

    def of(self, seat: str, owner: str = SEAT) -> list[Layout]:
        """A seat's own layouts (or an operator's at the seat): the config's first, in
        its order, then the others by id."""
        order = {key: n for n, key in enumerate(self._seeds)}
        found = [lay for (s, o, _), lay in self._all.items() if s == seat and o == owner]
        return sorted(found, key=lambda lay: (order.get((seat, owner, lay.id), len(order)), lay.id))

    def find(self, seat: str, owner: str, ident: str) -> Layout | None:
        return self._all.get((seat, owner, ident))

    def get(self, seat: str, owner: str, ident: str) -> Layout:
        found = self.find(seat, owner, ident)
        if found is None:
            whose = f"{owner}'s" if owner else "the seat's"
            raise NotFound(f"seat {seat} has no layout {ident!r} of {whose}")
        return found

    async def put(
        self,
        seat: str,
        owner: str,
        ident: str,
        name: str | None,
        routes: list[LayoutRoute],
        who: str,
        also: Also | None = None,
    ) -> Layout:
        """Save a layout; `also` (its audit row) commits in the same transaction."""
        layout = Layout(seat, owner, ident, name, tuple(routes), "api", time.time(), who)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(_UPSERT, _row(layout))
            if also is not None:
                also(conn)

        await self.store.write(run)
        self._all[(seat, owner, ident)] = layout
        return layout

    async def delete(
        self, seat: str, owner: str, ident: str, also: Also | None = None
    ) -> Layout | None:
        """Drop a layout saved through the API; the config's version, if any, comes
        back (and is returned). A layout only the config defines is refused (409)."""
        key = (seat, owner, ident)
        layout = self.get(seat, owner, ident)
        if layout.origin == "config":
            raise Refused(f"layout {ident} of {seat} comes from the config: edit the file")
        seed = self._seeds.get(key)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM seat_layouts WHERE seat = ? AND owner = ? AND id = ?", key)
            if seed is not None:
                conn.execute(_UPSERT, _row(seed))
            if also is not None:
                also(conn)

        await self.store.write(run)
        if seed is None:
            del self._all[key]
        else:
            self._all[key] = seed
        return seed


@dataclass(frozen=True)
class Seated:
    operator: str
    since: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.operator, "since": self.since}


class Presence:
    """Who is logged in at which seat, kept across restarts."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.at: dict[str, Seated] = {}

    async def load(self) -> None:
        rows = await self.store.fetchall("SELECT seat, operator, since FROM seat_operators")
        self.at = {r["seat"]: Seated(r["operator"], r["since"]) for r in rows}

    async def sit(self, seat: str, operator: str, also: Also) -> Seated:
        seated = Seated(operator, time.time())

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO seat_operators (seat, operator, since) VALUES (?, ?, ?)",
                (seat, operator, seated.since),
            )
            also(conn)

        await self.store.write(run)
        self.at[seat] = seated
        return seated

    async def leave(self, seat: str, also: Also) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM seat_operators WHERE seat = ?", (seat,))
            also(conn)

        await self.store.write(run)
        self.at.pop(seat, None)
