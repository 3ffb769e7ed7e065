"""The grid plugin's tables, in its own migration namespace.

Grid codes are the keys people use, so they are the keys here too. Personal fields
sit in the rows in full; masking happens on the way out (plugins/grid/privacy.py),
where the caller's role is known.
"""

from __future__ import annotations

from daemon.store import Migration

NAME = "grid"

MIGRATIONS = [
    Migration(
        NAME,
        1,
        """
        CREATE TABLE grid_nodes (
            code TEXT PRIMARY KEY,
            parent TEXT REFERENCES grid_nodes(code),
            level TEXT NOT NULL,
            name TEXT NOT NULL,
            type TEXT,
            unit TEXT,
            geometry TEXT NOT NULL
        );
        CREATE INDEX grid_nodes_parent ON grid_nodes(parent);
        CREATE TABLE grid_people (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            id_number TEXT,
            phone TEXT
        );
        CREATE TABLE grid_assignments (
            id INTEGER PRIMARY KEY,
            person TEXT NOT NULL REFERENCES grid_people(id),
            grid TEXT NOT NULL REFERENCES grid_nodes(code),
            role TEXT NOT NULL,
            helper_kind TEXT,
            since TEXT NOT NULL,
            until TEXT,
            by TEXT NOT NULL
        );
        CREATE INDEX grid_assignments_grid ON grid_assignments(grid, since);
        -- One full-time member and one chief on duty per grid, enforced by the store.
        CREATE UNIQUE INDEX grid_assignments_on_duty ON grid_assignments(grid, role)
            WHERE until IS NULL AND role IN ('member', 'chief');
        CREATE TABLE grid_buildings (
            code TEXT PRIMARY KEY,
            grid TEXT NOT NULL REFERENCES grid_nodes(code),
            address TEXT NOT NULL,
            lon REAL,
            lat REAL
        );
        CREATE INDEX grid_buildings_grid ON grid_buildings(grid);
        CREATE INDEX grid_buildings_address ON grid_buildings(address);
        CREATE TABLE grid_dwellings (
            code TEXT PRIMARY KEY,
            building TEXT NOT NULL REFERENCES grid_buildings(code),
            grid TEXT NOT NULL REFERENCES grid_nodes(code),
            address TEXT NOT NULL
        );
        CREATE INDEX grid_dwellings_grid ON grid_dwellings(grid);
        CREATE TABLE grid_residents (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            id_number TEXT NOT NULL UNIQUE,
            phone TEXT,
            dwelling TEXT NOT NULL REFERENCES grid_dwellings(code),
            grid TEXT NOT NULL REFERENCES grid_nodes(code)
        );
        CREATE INDEX grid_residents_grid ON grid_residents(grid);
        CREATE INDEX grid_residents_name ON grid_residents(name);
        CREATE TABLE grid_organisations (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            credit_code TEXT,
            address TEXT,
            lon REAL,
            lat REAL,
            grid TEXT NOT NULL REFERENCES grid_nodes(code)
        );
        CREATE INDEX grid_organisations_grid ON grid_organisations(grid);
        """,
        "grid tree, members and their assignments, the five elements' places and people",
    ),
]

# Import order: a table's references come before it; deletes run the other way.
TABLES = (
    "grid_nodes",
    "grid_people",
    "grid_assignments",
    "grid_buildings",
    "grid_dwellings",
    "grid_residents",
    "grid_organisations",
)
