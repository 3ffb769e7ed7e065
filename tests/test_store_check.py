"""`GET /api/v1/store/check`: SQLite's integrity check by the running daemon (admin)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daemon.api.store import _integrity
from tests.support import bare_config, running


async def test_the_daemon_checks_its_own_store(tmp_path: Path) -> None:
    async with running(bare_config(tmp_path)) as hall:
        r = await hall.client.get("/api/v1/store/check", headers=hall.as_role("admin"))
        assert r.status_code == 200
        assert r.json() == {"ok": True, "problems": []}
        r = await hall.client.get("/api/v1/store/check", headers=hall.as_role("facility"))
        assert r.status_code == 403


def test_a_damaged_store_is_named_not_passed(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("CREATE INDEX t_v ON t(v)")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(f"row {i:05}" * 8,) for i in range(2000)])
    conn.commit()
    conn.close()
    assert _integrity(path) == []
    data = bytearray(path.read_bytes())
    page = 4096
    for at in range(len(data) - 3 * page, len(data) - page, 97):  # an index's pages, scribbled
        data[at] ^= 0x5A
    path.write_bytes(bytes(data))
    problems = _integrity(path)
    assert problems and problems != ["ok"], problems
