"""`gridhall tickets import FILE`: categories and departments into the store.

All or nothing, in one transaction; every bad row is printed as `FILE:LINE: message`
(the grid importer's convention) and nothing is written. A daemon that names the file
in `[tickets] categories` imports it at every start, so this command is for checking a
file (`--dry-run`) and for a store whose config names none. A running daemon reads
categories from the store on every report: an import takes effect at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import Any

from daemon.cli import load_config, with_store
from daemon.config import default_path
from daemon.store import Store
from plugins.tickets.catalog import CatalogError, read_catalog, write_catalog
from plugins.tickets.config import TicketsConfig

NAME = "tickets"


def cmd_import(args: argparse.Namespace) -> int:
    config = load_config(args)
    if config is None:
        return 1
    section: TicketsConfig = config.sections.get(NAME) or TicketsConfig()
    try:
        catalog = read_catalog(args.file, section)
    except CatalogError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"refused: {len(exc.problems)} problem(s); nothing was imported", file=sys.stderr)
        return 1
    if args.dry_run:
        print("dry run: the file is good; nothing was written")
        counts = catalog.counts()
    else:

        async def work(store: Store) -> dict[str, int]:
            def unit(conn: sqlite3.Connection) -> dict[str, int]:
                return write_catalog(conn, catalog)

            return await store.write(unit)

        counts = asyncio.run(with_store(config, args.plugins, work))
    print(", ".join(f"{n} {kind}" for kind, n in counts.items()))
    return 0


def add_commands(subparsers: Any) -> None:
    tickets = subparsers.add_parser("tickets", help="tickets: import categories")
    sub = tickets.add_subparsers(dest="tickets_command", required=True)
    p = sub.add_parser("import", help="import a categories file (TOML), all or nothing")
    p.add_argument("file", type=Path)
    p.add_argument("--dry-run", action="store_true", help="check the file, write nothing")
    p.add_argument("-c", "--config", type=Path, default=default_path())
    p.set_defaults(func=cmd_import)
