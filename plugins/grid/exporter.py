"""Exporting the registry in the files `gridhall grid import` reads, so an export
imported into an empty store gives the same registry (tested round trip).

Exports hold personal fields in full: they are for moving the register between
systems, by someone who can read the store file anyway; the CLI audits each one. The
roster is the current one: the history of assignments stays in the store.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from plugins.grid.progress import Progress
from plugins.grid.rows import COLUMNS

QUERIES = {
    "members": "SELECT a.person, p.name, coalesce(p.id_number, ''), coalesce(p.phone, ''), "
    "a.grid, a.role, coalesce(a.helper_kind, ''), a.since FROM grid_assignments a "
    "JOIN grid_people p ON p.id = a.person WHERE a.until IS NULL ORDER BY a.grid, a.id",
    "buildings": "SELECT code, address, lon, lat, grid FROM grid_buildings ORDER BY code",
    "dwellings": "SELECT code, building, address FROM grid_dwellings ORDER BY code",
    "residents": "SELECT id, name, id_number, coalesce(phone, ''), dwelling FROM grid_residents "
    "ORDER BY id",
    "organisations": "SELECT id, name, coalesce(credit_code, ''), address, lon, lat, grid "
    "FROM grid_organisations ORDER BY id",
}


def export(conn: sqlite3.Connection, out: Path, stream: TextIO) -> dict[str, int]:
    """Write every file into `out`, in one read transaction (a consistent snapshot)."""
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    conn.execute("BEGIN")
    try:
        counts["grids"] = _grids(conn, out / "grids.geojson", stream)
        for kind, sql in QUERIES.items():
            rows = conn.execute(sql).fetchall()
            bar = Progress(stream, f"{kind}.csv", len(rows))
            with (out / f"{kind}.csv").open("w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(COLUMNS[kind])
                writer.writerows(["" if v is None else v for v in row] for row in rows)
            bar.advance(len(rows))
            bar.close()
            counts[kind] = len(rows)
    finally:
        conn.execute("COMMIT")
    return counts


def _grids(conn: sqlite3.Connection, path: Path, stream: TextIO) -> int:
    rows = conn.execute(
        "SELECT code, name, type, unit, geometry FROM grid_nodes ORDER BY length(code), code"
    ).fetchall()
    bar = Progress(stream, path.name, len(rows))
    with path.open("w", encoding="utf-8") as f:
        features = [
            ({"code": code, "name": name, "type": type_, "unit": unit}, json.loads(geometry))
            for code, name, type_, unit, geometry in rows
        ]
        write_features(f, features)
    bar.advance(len(rows))
    bar.close()
    return len(rows)


def write_features(f: TextIO, features: Iterable[tuple[dict[str, Any], Any]]) -> None:
    """A FeatureCollection with one feature per line, so import errors name a line."""
    f.write('{"type": "FeatureCollection", "features": [\n')
    first = True
    for props, geometry in features:
        kept = {k: v for k, v in props.items() if v is not None}
        feature = {"type": "Feature", "properties": kept, "geometry": geometry}
        f.write(
            ("" if first else ",\n")
            + json.dumps(feature, ensure_ascii=False, separators=(",", ":"))
        )
        first = False
    f.write("\n]}\n")
