"""The SD card: the idle demo daemon writes nothing to its store while its devices are
polled, counted by SQLite itself (`total_changes` of the daemon's connection) and by
the WAL file, which every commit would grow; an action, the control, is seen by both."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support import demo_copy, running, wait_for

POLLS = 3  # poll cycles of every device on every bus


async def test_an_idle_daemon_writes_nothing_for_poll_after_poll(tmp_path: Path) -> None:
    config, _, _ = demo_copy(tmp_path)
    async with running(config) as hall:
        host = hall.host
        await wait_for(lambda: all(d.available for d in host.devices), timeout=20)
        # Start-up's own writes: the schedules' catch-up runs once its device is up.
        await wait_for(lambda: all(e.pending is None for e in host.schedules.entries.values()))

        def changes(conn: sqlite3.Connection) -> int:
            return conn.total_changes

        wal = Path(f"{host.config.db_path}-wal")
        before, wal_before = await host.store.read(changes), wal.stat().st_size
        per_bus = {
            bus.id: (bus.stats.exchanges, sum(1 for d in host.devices if d.bus is bus))
            for bus in host.devices.buses.values()
        }
        await wait_for(
            lambda: all(
                host.devices.buses[b].stats.exchanges >= start + POLLS * polled
                for b, (start, polled) in per_bus.items()
            ),
            timeout=30,
        )
        assert await host.store.read(changes) == before
        assert wal.stat().st_size == wal_before

        op = hall.as_role("operator")
        r = await hall.client.post(
            "/api/v1/devices/power-2/actions/on", json={"channel": 1}, headers=op
        )
        assert r.status_code == 200
        assert await host.store.read(changes) == before + 1  # its audit row
        assert wal.stat().st_size > wal_before
