"""The store's group commit: writers queued together share one transaction and one
fsync, each in a savepoint of its own, and each is answered only after the COMMIT."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.store import Migration, Store

TABLE = Migration("test", 1, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE);")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "s.db")
    await s.open()
    await s.migrate([TABLE])
    yield s
    await s.close()


def insert(value: str) -> object:
    def fn(conn: sqlite3.Connection) -> int:
        return int(conn.execute("INSERT INTO t (v) VALUES (?)", (value,)).lastrowid or 0)

    return fn


def on_disk(path: Path) -> list[str]:
    """What another connection reads: only committed rows."""
    db = sqlite3.connect(path)
    try:
        return sorted(v for (v,) in db.execute("SELECT v FROM t"))
    finally:
        db.close()


async def test_writers_at_once_share_a_commit(store: Store, tmp_path: Path) -> None:
    ids = await asyncio.gather(*(store.write_grouped(insert(f"v{i}")) for i in range(50)))
    assert sorted(ids) == list(range(1, 51))
    assert on_disk(tmp_path / "s.db") == sorted(f"v{i}" for i in range(50))
    # All 50 queued before the first flush ran: one transaction, not fifty fsyncs.
    assert store.group_stats.writes == 50
    assert store.group_stats.commits <= 2, store.group_stats


async def test_a_failing_writer_undoes_only_its_own_work(store: Store, tmp_path: Path) -> None:
    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (v) VALUES ('half')")
        conn.execute("INSERT INTO t (v) VALUES ('a')")  # UNIQUE: 'a' is queued first

    results = await asyncio.gather(
        store.write_grouped(insert("a")),
        store.write_grouped(half_then_fail),
        store.write_grouped(insert("b")),
        return_exceptions=True,
    )
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert results[0] == 1 and isinstance(results[2], int)
    assert on_disk(tmp_path / "s.db") == ["a", "b"]  # no 'half'
    assert store.group_stats.commits == 1


async def test_a_failed_commit_fails_every_writer_of_the_group(
    store: Store, tmp_path: Path
) -> None:
    """A deferred constraint breaks at COMMIT: nothing of the group is in, and nobody
    is told otherwise."""
    await store.write(
        lambda c: c.execute(
            "CREATE TABLE child (p INTEGER REFERENCES t(id) DEFERRABLE INITIALLY DEFERRED)"
        )
    )

    def dangling(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO child (p) VALUES (999)")

    results = await asyncio.gather(
        store.write_grouped(insert("x")),
        store.write_grouped(dangling),
        return_exceptions=True,
    )
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results), results
    assert on_disk(tmp_path / "s.db") == []
    # The store goes on: the next group commits.
    assert await store.write_grouped(insert("y")) >= 1
    assert on_disk(tmp_path / "s.db") == ["y"]


async def test_a_cancelled_writer_strands_nobody(store: Store, tmp_path: Path) -> None:
    first = asyncio.create_task(store.write_grouped(insert("gone")))
    others = [asyncio.create_task(store.write_grouped(insert(f"o{i}"))) for i in range(5)]
    await asyncio.sleep(0)
    first.cancel()
    assert len(await asyncio.gather(*others)) == 5
    with pytest.raises(asyncio.CancelledError):
        await first
    # Cancelling the wait does not undo the write: it was queued, and it committed.
    assert on_disk(tmp_path / "s.db") == ["gone", "o0", "o1", "o2", "o3", "o4"]


async def test_close_commits_what_was_queued(tmp_path: Path) -> None:
    s = Store(tmp_path / "c.db")
    await s.open()
    await s.migrate([TABLE])
    pending = [asyncio.create_task(s.write_grouped(insert(f"c{i}"))) for i in range(3)]
    await asyncio.sleep(0)
    await s.close()
    assert [t.result() for t in pending] == [1, 2, 3]
    assert on_disk(tmp_path / "c.db") == ["c0", "c1", "c2"]


def insert_many(conn: sqlite3.Connection, values: list[str]) -> list[object]:
    """A `write_many` kind: one executemany for every item; 'bad-*' items refused."""
    calls.append(list(values))
    good = [v for v in values if not v.startswith("bad")]
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(v,) for v in good])
    return [ValueError(f"refused {v}") if v.startswith("bad") else v.upper() for v in values]


calls: list[list[str]] = []


async def test_writers_of_one_kind_share_one_call(store: Store, tmp_path: Path) -> None:
    calls.clear()
    results = await asyncio.gather(
        store.write_many(insert_many, "a"),
        store.write_grouped(insert("single")),  # a writer of its own, in the same commit
        store.write_many(insert_many, "bad-b"),
        store.write_many(insert_many, "c"),
        return_exceptions=True,
    )
    assert results[0] == "A" and results[3] == "C" and isinstance(results[1], int)
    assert isinstance(results[2], ValueError) and str(results[2]) == "refused bad-b"
    assert calls == [["a", "bad-b", "c"]]  # one call, in the order they came
    assert on_disk(tmp_path / "s.db") == ["a", "c", "single"]
    assert store.group_stats.commits == 1


async def test_a_kind_that_raises_fails_its_items_alone(store: Store, tmp_path: Path) -> None:
    def explode(conn: sqlite3.Connection, values: list[str]) -> list[object]:
        conn.executemany("INSERT INTO t (v) VALUES (?)", [(v,) for v in values])
        raise RuntimeError("broken kind")

    results = await asyncio.gather(
        store.write_many(explode, "x"),
        store.write_many(explode, "y"),
        store.write_grouped(insert("kept")),
        return_exceptions=True,
    )
    assert [str(r) for r in results[:2]] == ["broken kind", "broken kind"]
    assert on_disk(tmp_path / "s.db") == ["kept"]  # x and y rolled back with their savepoint


async def test_writers_are_answered_in_the_order_they_ran(store: Store) -> None:
    """A kind runs with its first item: b, queued after the single writer, ran before
    it, and is answered before it (a history's ids reach their callers in order)."""
    calls.clear()
    answered: list[str] = []
    tasks = [
        asyncio.create_task(store.write_many(insert_many, "a")),
        asyncio.create_task(store.write_grouped(insert("single"))),
        asyncio.create_task(store.write_many(insert_many, "b")),
    ]
    for name, task in zip("a single b".split(), tasks, strict=True):
        task.add_done_callback(lambda _, name=name: answered.append(name))
    await asyncio.gather(*tasks)
    assert answered == ["a", "b", "single"]
