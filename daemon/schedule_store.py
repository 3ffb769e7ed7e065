"""Schedules in the store: the config's seed, the API's edits, what was run.

One row per schedule: `spec` is the version in force, `seed` the config's version
last applied (NULL for a schedule the API made), `deleted` marks a seeded schedule
the API deleted (kept, so an unchanged config does not bring it back), and
`settled_until` the time up to which every run was dealt with (catch-up starts
there). Each function is one transaction; an API edit and its audit row commit
together, so an answered edit is always in the trail.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

from daemon import audit
from daemon.errors import Refused
from daemon.schedules import ScheduleConfig
from daemon.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    spec: ScheduleConfig
    origin: str  # "config": the config's version is in force; "api": an API edit is
    settled_until: dt.datetime | None


async def seed(store: Store, specs: Iterable[ScheduleConfig], *, fresh: bool) -> str:
    """Apply the config's schedules, the config being their seed; say what changed.

    A schedule the config names is (re)written when the config's version differs
    from the one last applied: a change in the file wins over earlier API edits, and
    an unchanged file leaves API edits (and API deletions) alone. A schedule the file
    dropped goes, unless the API edited it since: then the API owns it. `fresh` (at
    start): a new schedule is owed its latest run (catch-up); after a reload it
    starts from now."""
    seeds = {s.id: s.model_dump_json() for s in specs}
    now = time.time()

    def run(conn: sqlite3.Connection) -> str:
        rows = {
            r[0]: (r[1], r[2], r[3])
            for r in conn.execute("SELECT id, spec, seed, deleted FROM schedules")
        }
        added, changed, dropped = [], [], []
        for sid, body in seeds.items():
            row = rows.get(sid)
            if row is None:
                conn.execute(
                    "INSERT INTO schedules (id, spec, seed, settled_until, updated_at, "
                    "updated_by) VALUES (?, ?, ?, ?, ?, 'config')",
                    (sid, body, body, None if fresh else now, now),
                )
                added.append(sid)
            elif row[1] != body:
                conn.execute(
                    "UPDATE schedules SET spec = ?, seed = ?, deleted = 0, updated_at = ?, "
                    "updated_by = 'config' WHERE id = ?",
                    (body, body, now, sid),
                )
                changed.append(sid)
        for sid, (spec, old_seed, deleted) in rows.items():
            if old_seed is not None and sid not in seeds:
                if spec == old_seed or deleted:
                    conn.execute("DELETE FROM schedules WHERE id = ?", (sid,))
                    dropped.append(sid)
                else:
                    conn.execute("UPDATE schedules SET seed = NULL WHERE id = ?", (sid,))
        return "; ".join(
            f"{what} {', '.join(ids)}"
            for what, ids in (("added", added), ("changed", changed), ("dropped", dropped))
            if ids
        )

    return await store.write(run)


async def load(store: Store) -> list[Row]:
    rows = await store.fetchall(
        "SELECT id, spec, seed, settled_until FROM schedules WHERE deleted = 0 ORDER BY id"
    )
    found = []
    for row in rows:
        try:
            spec = ScheduleConfig.model_validate_json(row["spec"])
        except ValueError as exc:  # written by another version: say so, keep going
            log.error("schedule %s in the store is invalid: %s", row["id"], exc)
            continue
        settled = row["settled_until"]
        found.append(
            Row(
                spec,
                "config" if row["seed"] == row["spec"] else "api",
                None if settled is None else dt.datetime.fromtimestamp(settled, dt.UTC),
            )
        )
    return found


async def settle(store: Store, schedule_id: str, slot: dt.datetime) -> None:
    def run(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE schedules SET settled_until = ? WHERE id = ?",
            (slot.timestamp(), schedule_id),
        )

    await store.write(run)


async def insert(store: Store, spec: ScheduleConfig, who: str) -> None:
    """A new schedule from the API; it owes nothing from before now. Refused (409)
    when the id is in use; the id of a deleted seeded schedule may be taken again."""
    body, now = spec.model_dump_json(), time.time()

    def run(conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT deleted FROM schedules WHERE id = ?", (spec.id,)).fetchone()
        if row is not None and not row[0]:
            raise Refused(f"schedule {spec.id!r} exists; PUT changes it")
        conn.execute(
            "INSERT INTO schedules (id, spec, settled_until, updated_at, updated_by) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, "
            "deleted = 0, settled_until = excluded.settled_until, "
            "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (spec.id, body, now, now, who),
        )
        audit.insert(conn, who=who, what="schedule.create", target=f"schedule:{spec.id}",
                     args=spec.model_dump(mode="json"))  # fmt: skip

    await store.write(run)


async def replace(store: Store, spec: ScheduleConfig, who: str) -> bool:
    """False when there is no such schedule."""
    body = spec.model_dump_json()

    def run(conn: sqlite3.Connection) -> bool:
        cur = conn.execute(
            "UPDATE schedules SET spec = ?, updated_at = ?, updated_by = ? "
            "WHERE id = ? AND deleted = 0",
            (body, time.time(), who, spec.id),
        )
        if cur.rowcount:
            audit.insert(conn, who=who, what="schedule.update", target=f"schedule:{spec.id}",
                         args=spec.model_dump(mode="json"))  # fmt: skip
        return bool(cur.rowcount)

    return await store.write(run)


async def remove(store: Store, schedule_id: str, who: str) -> bool:
    """False when there is no such schedule."""

    def run(conn: sqlite3.Connection) -> bool:
        tombstoned = conn.execute(
            "UPDATE schedules SET deleted = 1, updated_at = ?, updated_by = ? "
            "WHERE id = ? AND seed IS NOT NULL AND deleted = 0",
            (time.time(), who, schedule_id),
        ).rowcount
        deleted = conn.execute(
            "DELETE FROM schedules WHERE id = ? AND seed IS NULL", (schedule_id,)
        ).rowcount
        if tombstoned or deleted:
            audit.insert(conn, who=who, what="schedule.delete", target=f"schedule:{schedule_id}")
        return bool(tombstoned or deleted)

    return await store.write(run)
