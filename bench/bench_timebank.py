"""Awards per second in the time bank's ledger, beside a bare insert in the same store.

Measured in one run, on one SQLite file with the daemon's settings (WAL,
`synchronous = FULL`: every commit is durable when it returns):

1. bare insert: one `Store.write` that inserts one row, the least a durable write
   costs through the store (one hop to aiosqlite's thread, one fsync);
2. ledger award: one `Store.write` of `ledger.post`, what every award does: the
   source looked up (idempotency), both accounts read and their limits checked, the
   entry and its two movements inserted, both cached balances updated, the entry read
   back;
3. API award: `POST /api/v1/timebank/awards` with an `Idempotency-Key` to a daemon
   running in-process (httpx over ASGI, token check included), `--concurrent`
   requests at a time, as the 1,000-award test sends them.

1 and 2 alternate in batches of 50 so that a swing in the shared machine's load falls
on both; each is timed on its own. Printed: writes per second, p50 and p99, and the
ratio ledger / bare. Then the API's awards per second, and that the balances are
exact and the ledger's invariants hold after it.

Run: .venv/bin/python bench/bench_timebank.py [--n 2000] [--concurrent 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import platform
import sqlite3
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
from common import Aim, free_port, pct, record

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon import auth  # noqa: E402
from daemon.config import load  # noqa: E402
from daemon.pluginhost import PluginHost  # noqa: E402
from daemon.runtime import Daemon  # noqa: E402
from daemon.store import Migration, Store  # noqa: E402
from plugins.timebank import accounts, ledger  # noqa: E402
from plugins.timebank.config import ORGANISER_ROLE, TimebankConfig  # noqa: E402
from plugins.timebank.tables import MIGRATIONS  # noqa: E402

BATCH = 50
BARE = Migration("bench", 1, "CREATE TABLE bare (id INTEGER PRIMARY KEY, k TEXT, n INTEGER)")


async def store_figures(folder: Path, n: int) -> tuple[list[float], list[float]]:
    store = Store(folder / "ledger.db")
    await store.open()
    await store.migrate([*MIGRATIONS, BARE])
    config = TimebankConfig()
    people = [f"resident:b{i}" for i in range(50)]

    def setup(conn: sqlite3.Connection) -> None:
        for ref in [config.pool_account, *people]:
            accounts.open_account(conn, ref, by="bench", at=time.time())

    await store.write(setup)
    bare_ms: list[float] = []
    ledger_ms: list[float] = []
    for batch in range(0, n, BATCH):
        for i in range(batch, min(n, batch + BATCH)):
            t = time.perf_counter()
            await store.write(
                lambda c, i=i: c.execute("INSERT INTO bare (k, n) VALUES (?, ?)", (f"k{i}", i))
            )
            bare_ms.append((time.perf_counter() - t) * 1000)
        for i in range(batch, min(n, batch + BATCH)):
            p = ledger.Posting(
                "award", f"award:{i}", config.pool_account, people[i % 50], 60, "bench", 0.0
            )
            t = time.perf_counter()
            await store.write(lambda c, p=p: ledger.post(c, config, p))
            ledger_ms.append((time.perf_counter() - t) * 1000)
    check = await store.read(ledger.check)
    await store.close()
    if not check["ok"] or check["entries"] != n:
        raise SystemExit(f"FAIL: the ledger does not hold after the run: {check}")
    return bare_ms, ledger_ms


async def api_figure(folder: Path, concurrent: int) -> float:
    path = folder / "gridhall.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [api]
            listen = "127.0.0.1:{free_port()}"
            [storage]
            path = "api.db"
            """
        )
    )
    plugins = PluginHost()
    plugins.load(entry_points=False)
    daemon = Daemon(load(path, plugins), plugins)
    async with daemon.lifespan():
        token = await auth.create_token(daemon.host.store, "bench", ORGANISER_ROLE)
        transport = httpx.ASGITransport(app=daemon.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gridhall") as client:
            people = [f"resident:a{i}" for i in range(10)]
            for ref in people:
                r = await client.post(
                    "/api/v1/timebank/accounts",
                    json={"id": ref},
                    headers={"Authorization": f"Bearer {token}"},
                )
                r.raise_for_status()

            async def award(i: int) -> None:
                r = await client.post(
                    "/api/v1/timebank/awards",
                    json={"rule": "patrol", "account": people[i % 10]},
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"p{i}"},
                )
                r.raise_for_status()

            t = time.perf_counter()
            await asyncio.gather(*(award(i) for i in range(concurrent)))
            elapsed = time.perf_counter() - t
            wrong = []
            for i, ref in enumerate(people):
                r = await client.get(
                    f"/api/v1/timebank/accounts/{ref}",
                    headers={"Authorization": f"Bearer {token}"},
                )
                want = 60 * len(range(i, concurrent, 10))
                if r.json()["balance"] != want:
                    wrong.append(f"{ref} has {r.json()['balance']}, not {want}")
            check = await daemon.host.store.read(ledger.check)
            record(
                8,
                f"accounts with a wrong balance after {concurrent:,} concurrent API awards",
                len(wrong) + (not check["ok"]),
                "",
                aim=Aim("value", "==", 0),
                why="; ".join(wrong) or f"the ledger's invariants fail: {check}",
                note="the ledger's invariants (movements sum to zero, balances their sums) "
                "checked too",
            )
            if wrong:
                raise SystemExit(f"FAIL: {wrong[0]}")
            if not check["ok"]:
                raise SystemExit(f"FAIL: the ledger does not hold after the API run: {check}")
    return concurrent / elapsed


def line(name: str, samples: list[float]) -> str:
    rate = len(samples) / (sum(samples) / 1000)
    return f"{name:16}{rate:>12,.0f}{pct(samples, 50):>10.2f}{pct(samples, 99):>10.2f}"


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="writes of each kind")
    ap.add_argument("--concurrent", type=int, default=1000, help="API awards sent at once")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bare_ms, ledger_ms = await store_figures(Path(tmp), args.n)
        api_rate = await api_figure(Path(tmp), args.concurrent)
    print(
        f"bench_timebank: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, synchronous=FULL, {platform.machine()}"
    )
    print(f"{args.n:,} of each, one durable transaction each, alternating batches of {BATCH}")
    print(f"{'':16}{'writes/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    print(line("bare insert", bare_ms))
    print(line("ledger award", ledger_ms))
    ratio = pct(ledger_ms, 50) / pct(bare_ms, 50)
    print(f"ledger award / bare insert, p50: {ratio:.2f}x")
    record(
        8,
        "ledger award p50, one durable transaction",
        pct(ledger_ms, 50),
        "ms",
        pct(bare_ms, 50),
        base="a bare one-row insert through the same store (synchronous = FULL)",
    )
    record(8, f"API awards, {args.concurrent:,} at once", api_rate, "awards/s")
    print(
        f"API: {args.concurrent:,} concurrent awards at {api_rate:,.0f} awards/s; "
        "balances exact, ledger invariants hold"
    )


if __name__ == "__main__":
    asyncio.run(main())
