"""The store: one SQLite file in WAL mode, reached through aiosqlite.

aiosqlite hops to its thread on every await, so a unit of work is one call: `write`
and `read` run a plain function against the sqlite3 connection inside that thread, in
one transaction. Migrations are versioned per namespace so plugins add their own.

With `synchronous=FULL` every COMMIT waits for an fsync, so many small writers at once
(32 clients creating tickets) would queue one fsync each. `write_grouped` is the group
commit: the writers that arrive while a commit is on the disk are run together in the
next transaction, each in a SAVEPOINT of its own (a failure undoes only its own work),
and all are answered after that one COMMIT. Durable when it returns, as `write`.
`write_many` is the same for writers of one kind (reports becoming tickets): those
queued together are handed to their function as one list, one savepoint and a few
`executemany` for all of them instead of a handful of statements each, since every
statement is a hand-over of the GIL between this thread and the event loop's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

log = logging.getLogger(__name__)
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741
_ALONE: Any = object()  # a `write_grouped` writer: not one of a `write_many` kind


class StoreError(Exception):
    """The store cannot be opened or written (a read-only path, a full disk)."""


@dataclass(frozen=True)
class Migration:
    namespace: str  # "core", or the plugin's name
    version: int  # applied in order, once
    sql: str  # one or more statements
    description: str = ""


CORE_MIGRATIONS = [
    Migration(
        "core",
        1,
        """
        CREATE TABLE tokens (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            revoked_at REAL
        );
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            who TEXT NOT NULL,
            what TEXT NOT NULL,
            target TEXT,
            args TEXT,
            cause TEXT NOT NULL,
            result TEXT NOT NULL,
            detail TEXT
        );
        CREATE INDEX audit_at ON audit(at);
        CREATE INDEX audit_target ON audit(target, at);
        """,
        "tokens and the audit trail",
    ),
    Migration(
        "core",
        2,
        """
        CREATE TABLE device_memory (
            device TEXT PRIMARY KEY,
            data TEXT NOT NULL,
            at REAL NOT NULL
        );
        """,
        "what drivers keep across restarts",
    ),
    Migration(
        "core",
        3,
        """
        CREATE TABLE scenes (
            kind TEXT NOT NULL,
            id TEXT NOT NULL,
            body TEXT NOT NULL,
            origin TEXT NOT NULL,
            updated_at REAL NOT NULL,
            updated_by TEXT,
            PRIMARY KEY (kind, id)
        );
        """,
        "scenes and sequences: the config's seed and the API's edits",
    ),
    Migration(
        "core",
        4,
        """
        CREATE TABLE schedules (
            id TEXT PRIMARY KEY,
            spec TEXT NOT NULL,
            seed TEXT,
            deleted INTEGER NOT NULL DEFAULT 0,
            settled_until REAL,
            updated_at REAL NOT NULL,
            updated_by TEXT
        );
        """,
        "schedules: the config's seed (seed), the API's edits (spec), what was run",
    ),
    Migration(
        "core",
        5,
        """
        CREATE TABLE scene_runs (
            scene TEXT PRIMARY KEY,
            run TEXT NOT NULL,
            status TEXT NOT NULL,
            outcome TEXT NOT NULL,
            ended_at REAL NOT NULL
        );
        """,
        "each scene's last run, step by step, kept across restarts",
    ),
    Migration(
        "core",
        6,
        """
        CREATE TABLE seat_layouts (
            seat TEXT NOT NULL,
            owner TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT,
            routes TEXT NOT NULL,
            origin TEXT NOT NULL,
            updated_at REAL NOT NULL,
            updated_by TEXT,
            PRIMARY KEY (seat, owner, id)
        );
        CREATE TABLE seat_operators (
            seat TEXT PRIMARY KEY,
            operator TEXT NOT NULL,
            since REAL NOT NULL
        );
        """,
        "seats: layouts (owner '' the seat's, else an operator's own) and who sits where",
    ),
]


@dataclass(eq=False)  # hashed by identity: a writer is a key of its own
class _Grouped:
    """One caller of `write_grouped` (`item` is _ALONE) or of `write_many`: its
    function, its item, and the future it waits on."""

    fn: Callable[..., Any]
    future: asyncio.Future[Any]
    item: Any = _ALONE
    outcome: tuple[bool, Any] = field(default=(False, None))  # (ok, result or exception)


class Store:
    def __init__(self, path: Path, *, synchronous: str = "full") -> None:
        self.path = path
        self.synchronous = synchronous
        self._db: aiosqlite.Connection | None = None
        self._grouped: list[_Grouped] = []
        self._flusher: asyncio.Task[None] | None = None
        self.group_stats = GroupStats()

    async def open(self) -> None:
        """Open, and prove the file can be written: a store that cannot take a write
        must stop the start, not fail every acknowledged action later."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per unit of work.
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            await self._db.executescript(
                f"""
                PRAGMA journal_mode=WAL;
                PRAGMA synchronous={self.synchronous.upper()};
                PRAGMA foreign_keys=ON;
                PRAGMA busy_timeout=5000;
                BEGIN IMMEDIATE;
                ROLLBACK;
                """
            )
        except (OSError, sqlite3.Error) as exc:
            await self.close()
            raise StoreError(f"cannot open the store {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._flusher is not None:  # what was queued is committed, then answered
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def _in_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        # aiosqlite's worker runs `fn` in its own thread with the real connection; the
        # public API has no other way to make several statements one hop.
        conn = self.db
        return await conn._execute(lambda: fn(conn._conn))  # type: ignore[no-untyped-call,no-any-return]

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one IMMEDIATE transaction; committed (durable) when this returns."""

        def unit(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._in_thread(unit)

    async def write_grouped(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in a transaction shared with the other grouped writers queued now,
        inside a SAVEPOINT of its own; committed (durable) when this returns. `fn`'s
        exception undoes its own statements only, and is raised here. `fn` must not
        commit, roll back or release savepoints it did not make."""
        result: T = await self._queue(_Grouped(fn, asyncio.get_running_loop().create_future()))
        return result

    async def write_many(
        self, fn: Callable[[sqlite3.Connection, list[I]], list[T | Exception]], item: I
    ) -> T:
        """Queue `item` for `fn`, committed with the group: the items of one `fn`
        (the same function object) queued together reach it as one list, in the order
        they came, in one savepoint. `fn(conn, items)` returns one result per item; an
        `Exception` in that list is raised to its item's caller alone. If `fn` raises,
        its savepoint is rolled back and all its items fail. Durable when this returns."""
        loop = asyncio.get_running_loop()
        result: T = await self._queue(_Grouped(fn, loop.create_future(), item))
        return result

    async def _queue(self, entry: _Grouped) -> Any:
        self._grouped.append(entry)
        if self._flusher is None:
            # A task of its own, not the first caller: a caller that is cancelled (a
            # client gone) must not strand the others' answers.
            self._flusher = asyncio.create_task(self._flush(), name="store-group-commit")
        # A caller cancelled here cancels only its future; its write still commits.
        return await entry.future

    async def _flush(self) -> None:
        try:
            while self._grouped:
                batch, self._grouped = self._grouped, []
                try:
                    # Answered in the order the writes ran, so that what they wrote
                    # (a history's ids) reaches its callers in order.
                    batch = await self._in_thread(functools.partial(_run_group, batch=batch))
                except BaseException as exc:  # BEGIN or COMMIT failed: nothing is in
                    for item in batch:
                        item.outcome = (False, exc)
                self.group_stats.add(len(batch))
                for item in batch:
                    ok, value = item.outcome
                    if item.future.done():
                        continue
                    if ok:
                        item.future.set_result(value)
                    else:
                        item.future.set_exception(value)
        finally:
            self._flusher = None

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._in_thread(fn)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        def run(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            cur = conn.execute(sql, tuple(params))
            cur.row_factory = sqlite3.Row
            return cur.fetchall()

        return await self._in_thread(run)

    async def migrate(self, migrations: Iterable[Migration]) -> list[Migration]:
        """Apply the migrations not yet applied; return those applied now."""
        ordered = sorted(migrations, key=lambda m: (m.namespace != "core", m.namespace, m.version))

        def run(conn: sqlite3.Connection) -> list[Migration]:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations (namespace TEXT NOT NULL, "
                "version INTEGER NOT NULL, applied_at REAL NOT NULL, "
                "PRIMARY KEY (namespace, version))"
            )
            done = set(conn.execute("SELECT namespace, version FROM migrations").fetchall())
            applied = []
            for m in ordered:
                if (m.namespace, m.version) in done:
                    continue
                # executescript would commit the open transaction: run statements one by one.
                for statement in _statements(m.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO migrations (namespace, version, applied_at) VALUES (?, ?, ?)",
                    (m.namespace, m.version, time.time()),
                )
                applied.append(m)
            return applied

        applied = await self.write(run)
        for m in applied:
            log.info("migration %s/%d applied: %s", m.namespace, m.version, m.description)
        return applied


@dataclass
class GroupStats:
    """How the group commit batched: commits and writers (for benches and health)."""

    commits: int = 0
    writes: int = 0
    largest: int = 0

    def add(self, n: int) -> None:
        self.commits += 1
        self.writes += n
        self.largest = max(self.largest, n)


def _run_group(conn: sqlite3.Connection, *, batch: list[_Grouped]) -> list[_Grouped]:
    """In the store's thread: one transaction, one savepoint per writer (per kind, for
    `write_many`). Outcomes are set only once COMMIT succeeded; if it fails, the caller
    fails them all. Returns the writers in the order they ran."""
    units: dict[Any, list[_Grouped]] = {}
    for entry in batch:  # in arrival order; a kind's items go with its first
        units.setdefault(entry if entry.item is _ALONE else entry.fn, []).append(entry)
    outcomes: list[tuple[_Grouped, tuple[bool, Any]]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for members in units.values():
            conn.execute("SAVEPOINT grouped")
            try:
                outcomes += zip(members, _run_unit(conn, members), strict=True)
            except Exception as exc:
                if not conn.in_transaction:
                    # SQLite rolled the whole transaction back itself (disk full, I/O
                    # error): the earlier writers' work is gone too.
                    raise
                conn.execute("ROLLBACK TO grouped")
                outcomes += [(m, (False, exc)) for m in members]
            conn.execute("RELEASE grouped")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    for entry, outcome in outcomes:
        entry.outcome = outcome
    return [entry for entry, _ in outcomes]


def _run_unit(conn: sqlite3.Connection, members: list[_Grouped]) -> list[tuple[bool, Any]]:
    first = members[0]
    if first.item is _ALONE:
        return [(True, first.fn(conn))]
    results = first.fn(conn, [m.item for m in members])
    if len(results) != len(members):
        raise RuntimeError(f"{first.fn!r} gave {len(results)} results for {len(members)} items")
    return [(not isinstance(r, Exception), r) for r in results]


def _statements(sql: str) -> list[str]:
    """Split a script into statements, trusting sqlite3.complete_statement for ends."""
    statements, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements
