"""`gridhall tickets import FILE`: categories and departments into the store;
`gridhall tickets open311-key create|list|revoke`: the api_keys of Open311 apps.

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
from plugins.tickets.open311 import keys

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


def cmd_key(args: argparse.Namespace) -> int:
    """An Open311 api_key: printed once, only its hash is stored."""
    config = load_config(args)
    if config is None:
        return 1

    async def work(store: Store) -> Any:
        if args.key_command == "create":
            return await store.write(lambda conn: keys.create(conn, args.name))
        if args.key_command == "revoke":
            return await store.write(lambda conn: keys.revoke(conn, args.name))
        return await store.read(keys.listed)

    try:
        done = asyncio.run(with_store(config, args.plugins, work))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.key_command == "create":
        print(done)
    elif args.key_command == "revoke":
        if not done:
            print(f"no live key named {args.name!r}", file=sys.stderr)
            return 1
        print(f"revoked {args.name!r}")
    else:
        for key in done:
            state = "revoked" if key["revoked_at"] else "live"
            print(f"{key['name']}\t{state}")
    return 0


def add_commands(subparsers: Any) -> None:
    tickets = subparsers.add_parser("tickets", help="tickets: categories, Open311 api_keys")
    sub = tickets.add_subparsers(dest="tickets_command", required=True)
    key = sub.add_parser("open311-key", help="Open311 api_keys for the apps that file reports")
    key_sub = key.add_subparsers(dest="key_command", required=True)
    for name, what in [
        ("create", "print a new api_key once; only its hash is stored"),
        ("revoke", "revoke the api_key of this name"),
        ("list", "the keys' names, live or revoked"),
    ]:
        p = key_sub.add_parser(name, help=what)
        if name != "list":
            p.add_argument("--name", required=True, help="the app it is handed to")
        p.add_argument("-c", "--config", type=Path, default=default_path())
        p.set_defaults(func=cmd_key)
    p = sub.add_parser("import", help="import a categories file (TOML), all or nothing")
    p.add_argument("file", type=Path)
    p.add_argument("--dry-run", action="store_true", help="check the file, write nothing")
    p.add_argument("-c", "--config", type=Path, default=default_path())
    p.set_defaults(func=cmd_import)
