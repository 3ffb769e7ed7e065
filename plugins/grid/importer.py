"""Importing a district's registry from GeoJSON and CSV, all or nothing.

Everything happens inside one `Store.write`: the files are read and checked, and
only when no row in any file is wrong are the tables written, with executemany. A
bad file therefore imports nothing, and the report names every bad row by
`FILE:LINE`, plus each gap and overlap of the boundaries with its area.

A file replaces what its table held: the registry comes whole from the source
system. Members are the exception: the roster closes the assignments it no longer
lists and opens the new ones, so the history of who served a grid is kept.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from shapely.geometry.base import BaseGeometry

from plugins.grid import codes, formats, rows
from plugins.grid.config import BASIC, GridConfig
from plugins.grid.geometry import GridIndex, Node, check_tiling, polygon_from_geojson
from plugins.grid.progress import Progress
from plugins.grid.rows import GRID_TYPES, Run

FILES = {
    "grids.geojson": "grids",
    "members.csv": "members",
    "buildings.csv": "buildings",
    "dwellings.csv": "dwellings",
    "residents.csv": "residents",
    "organisations.csv": "organisations",
}
ORDER = tuple(FILES.values())


class ImportRefused(Exception):
    """The import was rolled back; `problems` are `FILE:LINE: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s); nothing was imported")
        self.problems = problems


def collect(paths: Iterable[Path]) -> dict[str, Path]:
    """kind -> file, from files and directories named as in FILES."""
    found: dict[str, Path] = {}
    for path in paths:
        candidates = [path / name for name in FILES] if path.is_dir() else [path]
        for p in candidates:
            if path.is_dir() and not p.exists():
                continue
            if p.name not in FILES:
                raise ImportRefused([f"{p}: unknown file; expected one of {', '.join(FILES)}"])
            if not p.exists():
                raise ImportRefused([f"{p}: no such file"])
            found[FILES[p.name]] = p
    if not found:
        raise ImportRefused([f"none of {', '.join(FILES)} in {', '.join(map(str, paths))}"])
    return found


@dataclass
class Grid:
    code: str
    parent: str | None
    level: str
    name: str
    type: str | None
    unit: str | None
    geom: BaseGeometry
    geometry: str


def run_import(
    conn: sqlite3.Connection,
    config: GridConfig,
    files: dict[str, Path],
    *,
    stream: TextIO,
    today: str,
    by: str,
) -> dict[str, int]:
    """Check every file, then write them all; ImportRefused (nothing written) if any
    row is wrong. Call inside `Store.write`, whose rollback undoes a refused import."""
    run = Run(conn, config, files, stream, today, by)
    _load_existing(run)
    steps: dict[str, Callable[[Run], None]] = {
        "grids": _grids,
        "members": rows.members,
        "buildings": rows.buildings,
        "dwellings": rows.dwellings,
        "residents": rows.residents,
        "organisations": rows.organisations,
    }
    for kind in ORDER:
        if kind in files:
            steps[kind](run)
    if run.problems:
        raise ImportRefused(run.problems)
    _write(run)
    return {kind: len(run.rows[kind]) for kind in ORDER if kind in files}


def _load_existing(run: Run) -> None:
    """What the files do not replace comes from the store, so references resolve."""
    conn = run.conn
    if "grids" not in run.files:
        _existing_grids(run)
    if "buildings" not in run.files:
        for code, grid, address in conn.execute("SELECT code, grid, address FROM grid_buildings"):
            run.buildings[code] = grid
            run.addresses[address] = grid
    if "dwellings" not in run.files:
        run.dwellings = dict(conn.execute("SELECT code, grid FROM grid_dwellings").fetchall())


def _existing_grids(run: Run) -> None:
    conn = run.conn
    run.grid_levels = dict(conn.execute("SELECT code, level FROM grid_nodes").fetchall())
    basic = conn.execute("SELECT code, geometry FROM grid_nodes WHERE level = ?", (BASIC,))
    run.index = GridIndex(
        [(code, polygon_from_geojson(json.loads(g))) for code, g in basic.fetchall()]
    )


def _grids(run: Run) -> None:
    kind, path = "grids", run.files["grids"]
    width, depth = run.config.sequence_width, run.config.depth
    try:
        features = formats.read_features(path)
    except formats.FileError as exc:
        run.bad(kind, exc.line, exc.message)
        run.rows[kind] = []
        # Check the other files against the grids there are, not against none (which
        # would call every building and roster row bad for the grid file's fault).
        _existing_grids(run)
        return
    bar = Progress(run.stream, path.name, len(features))
    grids: dict[str, Grid] = {}
    lines: dict[str, int] = {}
    for line, feature in features:
        bar.advance()
        try:
            grid = _grid(feature, width, depth)
        except ValueError as exc:
            run.bad(kind, line, str(exc))
            continue
        if grid.code in grids:
            run.bad(kind, line, f"grid code {grid.code} also at line {lines[grid.code]}")
            continue
        grids[grid.code], lines[grid.code] = grid, line
    bar.close()
    for code, grid in grids.items():
        if grid.parent is not None and grid.parent not in grids:
            run.bad(kind, lines[code], f"{code}: its parent {grid.parent} is not in the file")
    nodes = [Node(g.code, g.parent, g.level, g.geom) for g in grids.values()]
    covering = run.config.levels[: run.config.levels.index(BASIC)]
    for problem in check_tiling(nodes, covering, run.config.tolerance_m2):
        run.bad(kind, lines[problem.codes[0]], str(problem))
    run.grid_levels = {code: g.level for code, g in grids.items()}
    run.index = GridIndex([(c, g.geom) for c, g in grids.items() if g.level == BASIC])
    ordered = sorted(grids.values(), key=lambda g: (len(g.code), g.code))  # parents first
    run.rows[kind] = [
        (g.code, g.parent, g.level, g.name, g.type, g.unit, g.geometry) for g in ordered
    ]


def _grid(feature: Any, width: int, depth: int) -> Grid:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise ValueError("not a GeoJSON Feature")
    props = feature.get("properties") or {}
    code = str(props.get("code", "")).strip()
    if not code:
        raise ValueError("the feature has no `code` property")
    found = codes.problems(code, width, depth)
    if found:
        raise ValueError("; ".join(found))
    level = codes.level_of(code, width) or ""
    name = str(props.get("name") or "").strip()
    if not name:
        raise ValueError(f"{code}: the feature has no `name`")
    grid_type, unit = props.get("type"), props.get("unit")
    if level == BASIC:
        if grid_type not in GRID_TYPES:
            raise ValueError(f"{code}: type {grid_type!r} is not one of {', '.join(GRID_TYPES)}")
        if grid_type == "exclusive" and not unit:
            raise ValueError(f"{code}: an exclusive grid names its `unit` (a school, a hospital)")
    elif grid_type is not None:
        raise ValueError(f"{code}: only basic grids have a type; a {level} has none")
    try:
        geom = polygon_from_geojson(feature.get("geometry"))
    except ValueError as exc:
        raise ValueError(f"{code}: {exc}") from None
    return Grid(
        code,
        codes.parent_of(code, width),
        level,
        name,
        grid_type,
        str(unit) if unit else None,
        geom,
        json.dumps(feature["geometry"], separators=(",", ":")),
    )


INSERTS = {
    "grids": "INSERT INTO grid_nodes (code, parent, level, name, type, unit, geometry) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
    "buildings": "INSERT INTO grid_buildings (code, grid, address, lon, lat) "
    "VALUES (?, ?, ?, ?, ?)",
    "dwellings": "INSERT INTO grid_dwellings (code, building, grid, address) VALUES (?, ?, ?, ?)",
    "residents": "INSERT INTO grid_residents (id, name, id_number, phone, dwelling, grid) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "organisations": "INSERT INTO grid_organisations "
    "(id, name, credit_code, address, lon, lat, grid) VALUES (?, ?, ?, ?, ?, ?, ?)",
}
TABLE = {
    "grids": "grid_nodes",
    "buildings": "grid_buildings",
    "dwellings": "grid_dwellings",
    "residents": "grid_residents",
    "organisations": "grid_organisations",
}


def _write(run: Run) -> None:
    conn = run.conn
    # References are checked once, at the end, against the whole new registry: a
    # re-imported tree may keep the codes that history and residents point at.
    conn.execute("PRAGMA defer_foreign_keys = ON")
    replaced = [kind for kind in ORDER if kind in run.files and kind in TABLE]
    for kind in reversed(replaced):
        conn.execute(f"DELETE FROM {TABLE[kind]}")
    bar = Progress(run.stream, "writing", sum(len(run.rows[k]) for k in run.files))
    for kind in replaced:
        conn.executemany(INSERTS[kind], run.rows[kind])
        bar.advance(len(run.rows[kind]))
    if "members" in run.files:
        _write_roster(run)
        bar.advance(len(run.rows["members"]))
    bar.close()
    dangling: dict[str, int] = defaultdict(int)
    for table, _rowid, parent, _fk in conn.execute("PRAGMA foreign_key_check"):
        dangling[f"{table} -> {parent}"] += 1
    if dangling:
        raise ImportRefused(
            [
                f"{n} row(s) of {link} would point at rows this import removes; "
                "import those files too"
                for link, n in sorted(dangling.items())
            ]
        )


def _write_roster(run: Run) -> None:
    """Close the assignments the roster no longer lists, open the new ones."""
    conn = run.conn
    conn.executemany(
        "INSERT INTO grid_people (id, name, id_number, phone) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET name = excluded.name, "
        "id_number = excluded.id_number, phone = excluded.phone",
        run.rows["people"],
    )
    current = {
        (person, grid, role, kind): rowid
        for rowid, person, grid, role, kind in conn.execute(
            "SELECT id, person, grid, role, helper_kind FROM grid_assignments WHERE until IS NULL"
        )
    }
    wanted = {(p, g, r, k): since for p, g, r, k, since in run.rows["members"]}
    conn.executemany(
        "UPDATE grid_assignments SET until = ? WHERE id = ?",
        [(run.today, rowid) for key, rowid in current.items() if key not in wanted],
    )
    conn.executemany(
        "INSERT INTO grid_assignments (person, grid, role, helper_kind, since, by) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(*key, since, run.by) for key, since in wanted.items() if key not in current],
    )
