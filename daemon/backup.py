"""`gridhall backup` and `gridhall restore`: SQLite's online backup, both ways.

The backup API copies the store page by page under SQLite's own locks, so a backup
taken while the daemon writes is a consistent snapshot (WAL included), never a torn
file copy. A restore replaces the store only while no daemon holds it: the daemon
keeps an advisory lock (`<store>.lock`) for as long as it runs, and its caches (grids,
schedules, scenes) would not see a store swapped underneath. The store being
replaced is itself backed up first, so a restore loses nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from daemon.store import StoreError

PAGES_PER_STEP = 256  # lets the daemon's writers in between steps of a large backup


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Copied:
    path: Path
    bytes: int
    tables: int
    rows: int


def lock_path(store: Path) -> Path:
    return store.with_name(store.name + ".lock")


@contextlib.contextmanager
def held_by_daemon(store: Path) -> Iterator[None]:
    """Held by a running daemon for its whole life: `restore` refuses while it is."""
    path = lock_path(store)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open the store {store}: {exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"another gridhall daemon is running on {store}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _daemon_running(store: Path) -> bool:
    path = lock_path(store)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _check(conn: sqlite3.Connection, what: Path) -> tuple[int, int]:
    """integrity_check, and that this is a gridhall store: (tables, rows)."""
    result = conn.execute("PRAGMA integrity_check").fetchall()
    if result != [("ok",)]:
        problems = "; ".join(r[0] for r in result[:5])
        raise BackupError(f"{what} fails SQLite's integrity check: {problems}")
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    if "migrations" not in tables:
        raise BackupError(f"{what} is not a gridhall store (it has no migrations table)")
    rows = sum(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)
    return len(tables), rows


def _copy(source: sqlite3.Connection, target_path: Path, journal_mode: str) -> None:
    """Through SQLite, not a file copy: the target's -wal and -shm are dealt with."""
    target = sqlite3.connect(target_path)
    try:
        source.backup(target, pages=PAGES_PER_STEP)
        target.execute(f"PRAGMA journal_mode={journal_mode}")
    finally:
        target.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(store: Path, dest: Path) -> Copied:
    """Copy the store to `dest` (a file, or a folder to put a dated file in), safely
    while the daemon runs. The copy is checked before it takes its name."""
    if not store.exists():
        raise BackupError(f"no store at {store}")
    if dest.is_dir():
        dest = dest / f"gridhall-{time.strftime('%Y%m%d-%H%M%S')}.db"
    if dest.exists():
        raise BackupError(f"{dest} exists; give a new name or a folder")
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(store)  # read only by use: mode=ro cannot open a WAL file alone
    try:
        source.execute("PRAGMA busy_timeout=5000")
        # A standalone file: no -wal beside it to lose on the way to another machine.
        _copy(source, partial, "DELETE")
    finally:
        source.close()
    copy = sqlite3.connect(partial)
    try:
        tables, rows = _check(copy, partial)
    finally:
        copy.close()
    _fsync(partial)
    partial.rename(dest)
    _fsync(dest.parent)
    return Copied(dest, dest.stat().st_size, tables, rows)


def restore(store: Path, source_path: Path) -> tuple[Copied, Path | None]:
    """Replace the store with a backup; the store replaced is kept beside it first.
    Returns what was restored and where the previous store went (None if there was
    none). Refused while a daemon runs on the store."""
    if not source_path.is_file():
        raise BackupError(f"no backup at {source_path}")
    if _daemon_running(store):
        raise BackupError(
            f"a gridhall daemon is running on {store}; stop it first "
            "(systemctl stop gridhall), restore, then start it again"
        )
    source = sqlite3.connect(source_path)
    try:
        tables, rows = _check(source, source_path)
        previous = None
        if store.exists():
            stamp = time.strftime("%Y%m%d-%H%M%S")
            previous = store.with_name(f"{store.name}.before-restore-{stamp}")
            backup(store, previous)
        store.parent.mkdir(parents=True, exist_ok=True)
        _copy(source, store, "WAL")
    finally:
        source.close()
    return Copied(store, store.stat().st_size, tables, rows), previous
