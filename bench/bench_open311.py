"""Open311 beside the ticket core's own API, on a real `gridhall run` process.

1. Filing. A report through `POST /open311/v2/requests.json` (form-encoded, an
   api_key looked up in the store, the attributes checked against the service
   definition, the core's create path) beside the same report through
   `POST /api/v1/tickets` (JSON, a Bearer token), one at a time over one keep-alive
   connection, alternating; p50/p99 of each and the ratio (the cost of the door).
2. Reading. A store with `--tickets` (1,200) tickets of the last 90 days: the spec's
   largest answer, `GET /open311/v2/requests.json` and `.xml` (1,000 requests), beside
   the core's `GET /api/v1/tickets?limit=500` (a page of its own rows, as JSON), per
   1,000 rows; and the ratio XML/JSON (what ElementTree costs over json).

Run: .venv/bin/python bench/bench_open311.py [--rounds 300] [--tickets 1200]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench_tickets import CATEGORY, Daemon
from common import pct, print_table, record

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(client: httpx.Client, method: str, url: str, expect: int, **kw: object) -> float:
    t0 = time.perf_counter()
    r = client.request(method, url, **kw)  # type: ignore[arg-type]
    took = (time.perf_counter() - t0) * 1000
    if r.status_code != expect:
        raise SystemExit(f"{method} {url}: {r.status_code} {r.text[:300]}")
    return took


def fill(db: Path, n: int) -> None:
    """`n` tickets of the last 90 days, as the workflow leaves them."""
    from plugins.tickets import synthetic

    now = time.time()
    conn = sqlite3.connect(db)
    fates = [
        synthetic.Fate(
            id=100_000 + i,
            created_at=now - 80 * 86400 + i * 60,
            due_at=now - 80 * 86400 + i * 60 + 7200,
            category=CATEGORY,
            department="police",
            lon=117.4 + i * 1e-5,
            lat=39.1,
        )
        for i in range(n)
    ]
    with conn:
        synthetic.insert(conn, fates)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--tickets", type=int, default=1200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "open311.db"
        daemon = Daemon(folder, db)
        token = daemon.gridhall("token", "create", "--role", "reporter", "--name", "bench")
        key = daemon.gridhall("tickets", "open311-key", "create", "--name", "bench")
        fill(db, args.tickets)  # the store exists: the commands above migrated it
        daemon.start()
        try:
            with httpx.Client(base_url=daemon.url, timeout=30) as client:
                filing(client, token, key, args.rounds)
                reading(client, token, max(20, args.rounds // 10))
        finally:
            daemon.stop()


def filing(client: httpx.Client, token: str, key: str, rounds: int) -> None:
    bearer = {"Authorization": f"Bearer {token}"}
    form = {"api_key": key, "service_code": CATEGORY, "lat": "39.1", "long": "117.4"}
    form["description"] = "bench"
    core: list[float] = []
    door: list[float] = []
    for i in range(rounds + 20):  # the first 20 warm up (routes, caches)
        body = {"category": CATEGORY, "lon": 117.4, "lat": 39.1, "description": f"b{i}"}
        a = timed(client, "POST", "/api/v1/tickets", 201, headers=bearer, json=body)
        b = timed(client, "POST", "/open311/v2/requests.json", 201, data=form)
        if i >= 20:
            core.append(a)
            door.append(b)
    print(f"filing a report, one at a time, {rounds} each, alternating (ms)")
    print_table(
        "", {"POST /api/v1/tickets (baseline)": core, "POST /open311/v2/requests.json": door}
    )
    print(f"open311 / core (p50): {pct(door, 50) / pct(core, 50):.2f} x")
    record(
        7,
        "filing a report through Open311, p50",
        pct(door, 50),
        "ms",
        pct(core, 50),
        base="POST /api/v1/tickets, one at a time, alternating",
    )


def reading(client: httpx.Client, token: str, rounds: int) -> None:
    bearer = {"Authorization": f"Bearer {token}"}
    got = client.get("/open311/v2/requests.json").json()
    assert len(got) == 1000, len(got)
    runs: dict[str, list[float]] = {"core": [], "json": [], "xml": []}
    for i in range(rounds + 3):
        c = timed(client, "GET", "/api/v1/tickets", 200, params={"limit": 500}, headers=bearer)
        j = timed(client, "GET", "/open311/v2/requests.json", 200)
        x = timed(client, "GET", "/open311/v2/requests.xml", 200)
        if i >= 3:
            runs["core"].append(c * 2)  # per 1,000 rows
            runs["json"].append(j)
            runs["xml"].append(x)
    print(f"reading requests, per 1,000 rows, {rounds} rounds, alternating (ms)")
    labels = {
        "core": "GET /api/v1/tickets?limit=500 (x2, baseline)",
        "json": "GET /open311/v2/requests.json (1,000)",
        "xml": "GET /open311/v2/requests.xml (1,000)",
    }
    print_table("", {label: runs[kind] for kind, label in labels.items()})
    p = {k: pct(v, 50) for k, v in runs.items()}
    print(f"json / core: {p['json'] / p['core']:.2f} x, xml / json: {p['xml'] / p['json']:.2f} x")
    base = "GET /api/v1/tickets?limit=500, per 1,000 rows"
    record(7, "Open311 GET requests.json, 1,000 rows, p50", p["json"], "ms", p["core"], base=base)
    record(7, "Open311 GET requests.xml, 1,000 rows, p50", p["xml"], "ms", p["core"], base=base)


if __name__ == "__main__":
    main()
