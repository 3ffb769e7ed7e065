"""`gridhall grid import|export|generate`: the registry in and out through files.

import and export open the store as `gridhall token create` does (the config names
it; migrations are applied first). A running daemon keeps serving from memory until
`POST /api/v1/grid/reload` or a restart.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from pathlib import Path
from typing import Any

from daemon import audit
from daemon.cli import load_config as _config
from daemon.cli import with_store as _with_store
from daemon.config import default_path
from daemon.store import Store
from plugins.grid.config import GridConfig
from plugins.grid.generate import JUNLIANGCHENG, Shape, generate
from plugins.grid.tables import NAME


class _DryRun(Exception):
    """Raised after a successful check so the store rolls the import back."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts


def cmd_import(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `gridhall run` registers these commands and must
    # not load shapely (and numpy) for a registry it may never use.
    from plugins.grid.importer import ImportRefused, collect, run_import

    config = _config(args)
    if config is None:
        return 1
    grid_config: GridConfig = config.sections.get(NAME) or GridConfig()
    today, by = time.strftime("%Y-%m-%d"), f"cli:{args.by}"

    async def work(store: Store) -> dict[str, int]:
        def unit(conn: Any) -> dict[str, int]:
            counts = run_import(conn, grid_config, files, stream=sys.stderr, today=today, by=by)
            if args.dry_run:
                raise _DryRun(counts)
            return counts

        result: dict[str, int] = await store.write(unit)
        return result

    try:
        files = collect(args.paths)
        counts = asyncio.run(_with_store(config, args.plugins, work))
    except ImportRefused as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"refused: {len(exc.problems)} problem(s); nothing was imported", file=sys.stderr)
        return 1
    except _DryRun as dry:
        counts = dry.counts
        print("dry run: the files are good; nothing was written")
    print(", ".join(f"{n} {kind}" for kind, n in counts.items()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from plugins.grid.exporter import export

    config = _config(args)
    if config is None:
        return 1

    async def work(store: Store) -> dict[str, int]:
        result: dict[str, int] = await store.read(lambda conn: export(conn, args.out, sys.stderr))
        # An export is an unmasked read of every ID number: it goes in the audit too.
        await audit.record(
            store,
            who=f"cli:{getpass.getuser()}",
            what="grid.export",
            target="grid:export",
            args={"out": str(args.out), "counts": result},
            cause="cli",
            result="ok",
        )
        return result

    counts = asyncio.run(_with_store(config, args.plugins, work))
    print(", ".join(f"{n} {kind}" for kind, n in counts.items()))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    shape = Shape(
        streets=args.streets,
        communities=args.communities,
        grids=args.grids,
        buildings=0 if args.grids_only else JUNLIANGCHENG.buildings,
        dwellings=JUNLIANGCHENG.dwellings,
        residents=JUNLIANGCHENG.residents,
        organisations=JUNLIANGCHENG.organisations,
        sequence_width=args.sequence_width,
    )
    counts = generate(args.out, shape)
    print(", ".join(f"{n} {kind}" for kind, n in counts.items()))
    return 0


def add_commands(subparsers: Any) -> None:
    grid = subparsers.add_parser("grid", help="the grid registry: import, export, generate")
    sub = grid.add_subparsers(dest="grid_command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", type=Path, default=default_path())

    p = sub.add_parser(
        "import", help="import grids.geojson and the CSVs, all or nothing (files or a directory)"
    )
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--dry-run", action="store_true", help="check everything, write nothing")
    p.add_argument("--by", default="import", help="recorded on new assignments")
    with_config(p)
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("export", help="write the registry as grids.geojson and CSVs")
    p.add_argument("out", type=Path)
    with_config(p)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("generate", help="a test district (default: Junliangcheng's scale)")
    p.add_argument("out", type=Path)
    p.add_argument("--streets", type=int, default=JUNLIANGCHENG.streets)
    p.add_argument("--communities", type=int, default=JUNLIANGCHENG.communities, help="per street")
    p.add_argument("--grids", type=int, default=JUNLIANGCHENG.grids, help="per community")
    p.add_argument("--sequence-width", type=int, default=2, choices=(2, 3))
    p.add_argument("--grids-only", action="store_true", help="boundaries, no people or places")
    p.set_defaults(func=cmd_generate)
