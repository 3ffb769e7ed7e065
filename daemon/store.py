"""The store: one SQLite file in WAL mode, reached through aiosqlite.

aiosqlite hops to its thread on every await, so a unit of work is one call: `write`
and `read` run a plain function against the sqlite3 connection inside that thread, in
one transaction. Migrations are versioned per namespace so plugins add their own.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

log = logging.getLogger(__name__)
T = TypeVar("T")


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


class Store:
    def __init__(self, path: Path, *, synchronous: str = "full") -> None:
        self.path = path
        self.synchronous = synchronous
        self._db: aiosqlite.Connection | None = None

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
