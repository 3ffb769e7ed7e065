"""`gridhall`: run, check-config, token create; plugins may add subcommands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from daemon import __version__
from daemon.auth import Roles, create_token
from daemon.config import Config, ConfigError, blocked_plugins, default_path, load
from daemon.pluginhost import PluginHost
from daemon.store import CORE_MIGRATIONS, Store, StoreError

T = TypeVar("T")


def load_config(args: argparse.Namespace) -> Config | None:
    """The config, or None once every error has been printed as FILE:LINE: message.
    For plugins' subcommands too (`args.config`, `args.plugins`)."""
    try:
        return load(args.config, args.plugins)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return None


async def with_store(config: Config, plugins: PluginHost, fn: Callable[[Store], Awaitable[T]]) -> T:
    """Open the config's store (migrations applied, as at start), run `fn`, close it:
    how a command works on the store beside, or without, a running daemon."""
    store = Store(config.db_path, synchronous=config.storage.synchronous)
    await store.open()
    try:
        await store.migrate(CORE_MIGRATIONS + plugins.migrations())
        return await fn(store)
    finally:
        await store.close()


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(args)
    if config is None:
        return 1
    print(f"{args.config}: ok ({len(config.bus)} buses, {len(config.device)} devices)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args)
    if config is None:
        return 1
    setup_logging(config.logging.level)
    from daemon.backup import BackupError
    from daemon.panel.views import PanelViewError
    from daemon.runtime import Daemon

    try:
        return asyncio.run(Daemon(config, args.plugins).serve())
    except (StoreError, BackupError, OSError, PanelViewError) as exc:
        # the store or its lock, a port, a plugin's panel view
        logging.getLogger("gridhall").error("cannot start: %s", exc)
        return 1


_SYSLOG_PRIORITY = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}


class _JournalFormatter(logging.Formatter):
    """Under systemd, a `<N>` prefix gives each line its priority in the journal, so
    `journalctl -p err` finds the errors; the journal adds the time itself."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_SYSLOG_PRIORITY.get(record.levelname, 6)}>{super().format(record)}"


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler()
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # our bus logs link failures


def cmd_token_create(args: argparse.Namespace) -> int:
    config = load_config(args)
    if config is None:
        return 1
    plugins = args.plugins
    roles = Roles(plugins.roles())
    if args.role not in roles:
        print(
            f"unknown role {args.role!r}; roles: {', '.join(sorted(roles.includes))}",
            file=sys.stderr,
        )
        return 2

    async def create(store: Store) -> str:
        return await create_token(store, args.name, args.role)

    print(asyncio.run(with_store(config, plugins, create)))
    return 0


def _store_command(args: argparse.Namespace, what: str, run: Callable[[Path], str]) -> int:
    """backup and restore: the config's store, one line of outcome, exit 0 or 1."""
    from daemon.backup import BackupError

    config = load_config(args)
    if config is None:
        return 1
    try:
        print(run(config.db_path))
    except (BackupError, sqlite3.Error, OSError) as exc:
        print(f"{what} failed: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from daemon.backup import backup

    def run(store: Path) -> str:
        copied = backup(store, args.dest)
        return f"{copied.path}: {copied.bytes} bytes, {copied.tables} tables, {copied.rows} rows"

    return _store_command(args, "backup", run)


def cmd_restore(args: argparse.Namespace) -> int:
    from daemon.backup import restore

    def run(store: Path) -> str:
        copied, previous = restore(store, args.source)
        kept = f"; the store it replaced is kept as {previous}" if previous else ""
        return (
            f"{copied.path}: restored from {args.source}: {copied.tables} tables, "
            f"{copied.rows} rows{kept}"
        )

    return _store_command(args, "restore", run)


def build_parser(plugins: PluginHost | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridhall", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gridhall {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-c",
            "--config",
            type=Path,
            default=default_path(),
            help="config file (default: $GRIDHALL_CONFIG, /etc/gridhall/gridhall.toml, "
            "etc/gridhall.toml)",
        )

    p = sub.add_parser("run", help="run the daemon in the foreground")
    with_config(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("check-config", help="validate a config file")
    with_config(p)
    p.set_defaults(func=cmd_check_config)
    token = sub.add_parser("token", help="API tokens").add_subparsers(
        dest="token_command", required=True
    )
    p = token.add_parser("create", help="print a new token once; only its hash is stored")
    p.add_argument("--role", required=True)
    p.add_argument("--name", required=True)
    with_config(p)
    p.set_defaults(func=cmd_token_create)
    p = sub.add_parser(
        "backup", help="copy the store to DEST (a file or a folder), safely while it runs"
    )
    p.add_argument("dest", type=Path)
    with_config(p)
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser(
        "restore", help="replace the store with a backup (the daemon must be stopped)"
    )
    p.add_argument("source", type=Path)
    with_config(p)
    p.set_defaults(func=cmd_restore)
    if plugins is not None:
        plugins.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # The config names the plugins to block, and plugins add subcommands: find the
    # config first, load the plugins once, then parse the whole command line.
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("-c", "--config", type=Path, default=default_path())
    known, _ = early.parse_known_args(argv)
    plugins = PluginHost(blocked_plugins(known.config))
    plugins.load()
    args = build_parser(plugins).parse_args(argv)
    args.plugins = plugins
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
