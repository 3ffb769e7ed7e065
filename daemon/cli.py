"""`gridhall`: run, check-config, token create; plugins may add subcommands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from daemon import __version__
from daemon.auth import Roles, create_token
from daemon.config import Config, ConfigError, default_path, load, read_toml
from daemon.pluginhost import PluginHost
from daemon.store import CORE_MIGRATIONS, Store


def _plugins_for(path: Path) -> PluginHost:
    """Plugins load before the config is validated (they add sections and drivers),
    so the block list is read from the raw file first."""
    blocked: list[str] = []
    try:
        _, raw = read_toml(path)
        block = raw.get("plugins", {}).get("block", [])
        blocked = [b for b in block if isinstance(b, str)] if isinstance(block, list) else []
    except (ConfigError, AttributeError):
        pass  # load() reports it with its line
    plugins = PluginHost(blocked)
    plugins.load()
    return plugins


def _load(path: Path) -> tuple[Config, PluginHost]:
    plugins = _plugins_for(path)
    return load(path, plugins), plugins


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config, _ = _load(args.config)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 1
    print(f"{args.config}: ok ({len(config.bus)} buses, {len(config.device)} devices)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    try:
        config, plugins = _load(args.config)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 1
    logging.basicConfig(
        level=config.logging.level.upper(),
        format="%(levelname)s %(name)s: %(message)s",  # the journal adds the time
    )
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # our bus logs link failures
    from daemon.runtime import Daemon

    asyncio.run(Daemon(config, plugins).serve())
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    try:
        config, plugins = _load(args.config)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 1
    roles = Roles(plugins.roles())
    if args.role not in roles:
        print(
            f"unknown role {args.role!r}; roles: {', '.join(sorted(roles.includes))}",
            file=sys.stderr,
        )
        return 2

    async def create() -> str:
        store = Store(config.db_path, synchronous=config.storage.synchronous)
        await store.open()
        try:
            await store.migrate(CORE_MIGRATIONS + plugins.migrations())
            return await create_token(store, args.name, args.role)
        finally:
            await store.close()

    print(asyncio.run(create()))
    return 0


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
    if plugins is not None:
        plugins.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    plugins = PluginHost()
    plugins.load()
    args = build_parser(plugins).parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
