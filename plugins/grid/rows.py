"""Checking the CSV rows of an import: people and places, and the grid each is tied to.

Each checker reads its file through `Run.rows_of` (which knows the lines), records a
problem per bad row, and keeps the good rows for the writer. References resolve
against the other files of the same import first, then against the store, so a
building may come in today and its dwellings tomorrow.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from plugins.grid import formats
from plugins.grid.config import BASIC, GridConfig
from plugins.grid.progress import Progress

if TYPE_CHECKING:
    from plugins.grid.geometry import GridIndex

GRID_TYPES = ("residential", "rural", "park", "exclusive")
MEMBER_ROLES = ("member", "chief", "helper")
# Jizhou's "eight" helpers.
HELPER_KINDS = (
    "party_member",
    "elder",
    "volunteer",
    "representative",
    "legal",
    "urban_management",
    "market_supervision",
    "fire_safety",
)
COLUMNS = {
    "members": ("person", "name", "id_number", "phone", "grid", "role", "helper_kind", "since"),
    "buildings": ("code", "address", "lon", "lat", "grid"),
    "dwellings": ("code", "building", "address"),
    "residents": ("id", "name", "id_number", "phone", "dwelling"),
    "organisations": ("id", "name", "credit_code", "address", "lon", "lat", "grid"),
}


@dataclass
class Run:
    """One import: what the files say, what the store already holds, what is wrong."""

    conn: sqlite3.Connection
    config: GridConfig
    files: dict[str, Path]
    stream: TextIO
    today: str
    by: str
    problems: list[str] = field(default_factory=list)
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    grid_levels: dict[str, str] = field(default_factory=dict)
    index: GridIndex | None = None
    buildings: dict[str, str] = field(default_factory=dict)  # code -> grid
    addresses: dict[str, str] = field(default_factory=dict)  # address -> grid
    dwellings: dict[str, str] = field(default_factory=dict)  # code -> grid

    def bad(self, kind: str, line: int, message: str) -> None:
        where = f"{self.files[kind].name}:{line}" if line else self.files[kind].name
        self.problems.append(f"{where}: {message}")

    def rows_of(self, kind: str) -> Iterator[tuple[int, dict[str, str]]]:
        path = self.files[kind]
        bar = Progress(self.stream, path.name, formats.count_rows(path))
        try:
            for line, row in formats.read_csv(path, COLUMNS[kind]):
                bar.advance()
                if "__error__" in row:
                    self.bad(kind, line, row["__error__"])
                else:
                    yield line, row
        except formats.FileError as exc:
            self.bad(kind, exc.line, exc.message)
        finally:
            bar.close()


def _is_basic(run: Run, code: str) -> bool:
    return run.grid_levels.get(code) == BASIC


def _point(row: dict[str, str]) -> tuple[float, float] | None | str:
    """(lon, lat), None when both are empty, or what is wrong with them."""
    lon, lat = row.get("lon", ""), row.get("lat", "")
    if not lon and not lat:
        return None
    try:
        x, y = float(lon), float(lat)
    except ValueError:
        return f"lon/lat {lon!r}, {lat!r} are not numbers"
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        return f"lon/lat {x}, {y} are out of range"
    return x, y


def _place(run: Run, row: dict[str, str], by_address: bool) -> tuple[str, Any, Any] | str:
    """The grid a building or an organisation belongs to: the `grid` column if given,
    else its address's building (organisations), else its point. An error string if
    none of these gives a basic grid."""
    point = _point(row)
    if isinstance(point, str):
        return point
    lon, lat = point if point else (None, None)
    grid = row.get("grid", "")
    if grid:
        if not _is_basic(run, grid):
            return f"grid {grid} is not a basic grid"
        return grid, lon, lat
    if by_address and row.get("address") in run.addresses:
        return run.addresses[row["address"]], lon, lat
    if point is None:
        return "no grid, no known address and no point: the row is tied to nothing"
    found = run.index.lookup(point[0], point[1]) if run.index is not None else None
    if found is None:
        return f"point {point[0]}, {point[1]} is in no grid"
    return found, lon, lat


def members(run: Run) -> None:
    rows: list[tuple[Any, ...]] = []
    seen: dict[tuple[str, str], int] = {}
    people: dict[str, tuple[str, str, str | None, str | None]] = {}
    for line, row in run.rows_of("members"):
        errs = []
        grid, role, kind = row["grid"], row["role"], row["helper_kind"] or None
        if not _is_basic(run, grid):
            errs.append(f"grid {grid!r} is not a basic grid")
        if role not in MEMBER_ROLES:
            errs.append(f"role {role!r} is not one of {', '.join(MEMBER_ROLES)}")
        elif role == "helper" and kind not in HELPER_KINDS:
            errs.append(f"helper_kind {kind!r} is not one of {', '.join(HELPER_KINDS)}")
        if not row["person"] or not row["name"]:
            errs.append("person and name are required")
        for problem in (
            formats.id_number_problem(row["id_number"]) if row["id_number"] else None,
            formats.phone_problem(row["phone"]),
        ):
            if problem:
                errs.append(problem)
        if role in ("member", "chief") and (grid, role) in seen:
            errs.append(f"grid {grid} already has its {role} at line {seen[(grid, role)]}")
        if errs:
            run.bad("members", line, "; ".join(errs))
            continue
        if role in ("member", "chief"):
            seen[(grid, role)] = line
        people[row["person"]] = (
            row["person"],
            row["name"],
            row["id_number"] or None,  # unknown, not empty: NULL
            row["phone"] or None,
        )
        rows.append((row["person"], grid, role, kind, row["since"] or run.today))
    for code in sorted(c for c, level in run.grid_levels.items() if level == BASIC):
        if (code, "member") not in seen:
            run.bad("members", 0, f"grid {code} has no full-time member in the roster")
    run.rows["members"] = rows
    run.rows["people"] = list(people.values())


def buildings(run: Run) -> None:
    rows = []
    for line, row in run.rows_of("buildings"):
        if not row["code"] or not row["address"]:
            run.bad("buildings", line, "code and address are required")
            continue
        if row["code"] in run.buildings:
            run.bad("buildings", line, f"building {row['code']} is listed twice")
            continue
        placed = _place(run, row, by_address=False)
        if isinstance(placed, str):
            run.bad("buildings", line, placed)
            continue
        grid, lon, lat = placed
        run.buildings[row["code"]] = grid
        run.addresses[row["address"]] = grid
        rows.append((row["code"], grid, row["address"], lon, lat))
    run.rows["buildings"] = rows


def dwellings(run: Run) -> None:
    rows = []
    for line, row in run.rows_of("dwellings"):
        grid = run.buildings.get(row["building"])
        if not row["code"] or grid is None:
            run.bad("dwellings", line, f"building {row['building']!r} is not a known building")
            continue
        if row["code"] in run.dwellings:
            run.bad("dwellings", line, f"dwelling {row['code']} is listed twice")
            continue
        run.dwellings[row["code"]] = grid
        rows.append((row["code"], row["building"], grid, row["address"] or row["code"]))
    run.rows["dwellings"] = rows


def residents(run: Run) -> None:
    rows: list[tuple[Any, ...]] = []
    ids: set[str] = set()
    numbers: dict[str, int] = {}
    for line, row in run.rows_of("residents"):
        errs = []
        grid = run.dwellings.get(row["dwelling"])
        if grid is None:
            errs.append(f"dwelling {row['dwelling']!r} is not a known dwelling")
        if not row["id"] or not row["name"] or row["id"] in ids:
            errs.append("id and name are required, and the id must be unique")
        for problem in (
            formats.id_number_problem(row["id_number"]),
            formats.phone_problem(row["phone"]),
        ):
            if problem:
                errs.append(problem)
        if row["id_number"] in numbers:
            errs.append(f"the same ID number as line {numbers[row['id_number']]}")
        if errs:
            run.bad("residents", line, "; ".join(errs))
            continue
        ids.add(row["id"])
        numbers[row["id_number"]] = line
        phone = row["phone"] or None
        rows.append((row["id"], row["name"], row["id_number"], phone, row["dwelling"], grid))
    run.rows["residents"] = rows


def organisations(run: Run) -> None:
    rows, ids = [], set()
    for line, row in run.rows_of("organisations"):
        placed = _place(run, row, by_address=True)
        errs = [placed] if isinstance(placed, str) else []
        problem = formats.credit_code_problem(row["credit_code"])
        if problem:
            errs.append(problem)
        if not row["id"] or not row["name"] or row["id"] in ids:
            errs.append("id and name are required, and the id must be unique")
        if errs or isinstance(placed, str):
            run.bad("organisations", line, "; ".join(errs))
            continue
        ids.add(row["id"])
        grid, lon, lat = placed
        rows.append(
            (row["id"], row["name"], row["credit_code"] or None, row["address"], lon, lat, grid)
        )
    run.rows["organisations"] = rows
