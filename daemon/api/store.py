"""`GET /api/v1/store/check`: SQLite's integrity check of the store, by the daemon
that holds it (admin).

It reads through a connection of its own, read-only, in a thread: in WAL mode a
reader sees the last commit and does not hold up the store's writer, so the hall's
actions go on while a large store is walked page by page.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from daemon.api.deps import Admin, HostDep

router = APIRouter(prefix="/store", tags=["store"])
SHOWN = 20  # problems listed; SQLite stops at 100


@router.get("/check")
async def check_store(host: HostDep, who: Admin) -> dict[str, Any]:
    """`ok` when `PRAGMA integrity_check` says so; else the first problems it names."""
    problems = await asyncio.to_thread(_integrity, host.store.path)
    return {"ok": not problems, "problems": problems[:SHOWN]}


def _integrity(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:  # too broken to be walked: that is the answer
        rows = [f"{type(exc).__name__}: {exc}"]
    finally:
        conn.close()
    return [] if rows == ["ok"] else rows
