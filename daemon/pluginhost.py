"""The plugin host: pluggy, behind a small typed facade.

Built-in plugins are registered exactly like third-party ones (a module with
`@hookimpl`s), then the `gridhall` entry points are loaded. Callers use the methods
here, never `pm.hook` directly.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

from daemon import hookspecs

if TYPE_CHECKING:
    import argparse

    from daemon.events import Event
    from daemon.host import Host

log = logging.getLogger(__name__)

# Modules registered before the entry points, in this order. The governance plugins
# live under `plugins/` and are listed here as they land.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "drivers.builtin",
    "plugins.grid",
    "plugins.tickets",
    "plugins.timebank",
)

BLOCK_ENV = "GRIDHALL_BLOCK_PLUGINS"


class PluginError(Exception):
    """A plugin asked for something the host cannot give (a built-in role, a core key)."""


def _call(impl: Any, **kwargs: Any) -> Any:
    """Call one hookimpl with the arguments it names, as pluggy does: an impl may take
    fewer arguments than its spec."""
    return impl.function(*(kwargs[name] for name in impl.argnames))


async def await_me_maybe(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class PluginHost:
    def __init__(self, blocked: Iterable[str] = ()) -> None:
        self.pm = pluggy.PluginManager("gridhall")
        self.pm.add_hookspecs(hookspecs)
        env_blocked = [n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()]
        self.blocked = set(blocked) | set(env_blocked)
        for name in self.blocked:
            self.pm.set_blocked(name)

    def load(self, *, entry_points: bool = True) -> None:
        for module_name in DEFAULT_PLUGINS:
            if module_name in self.blocked:
                continue
            self.pm.register(importlib.import_module(module_name), name=module_name)
        if entry_points:
            self.pm.load_setuptools_entrypoints("gridhall")
        self.pm.check_pending()

    def register(self, plugin: object, name: str) -> None:
        """Register a plugin object under `name`; a hookimpl without a spec is refused
        and leaves nothing behind."""
        registered = self.pm.register(plugin, name=name)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError:
            if registered is not None:
                self.pm.unregister(name=registered)
            raise

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)

    def names(self) -> list[str]:
        # pluggy keeps a blocked name with no plugin behind it.
        return sorted(name for name, p in self.pm.list_name_plugin() if p is not None)

    def plugin_name(self, plugin: object) -> str:
        return self.pm.get_name(plugin) or repr(plugin)

    # -- collected hooks ---------------------------------------------------------
    def drivers(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for batch in self.pm.hook.gridhall_drivers():
            for cls in batch:
                found[cls.name] = cls
        return found

    def emulators(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for batch in self.pm.hook.gridhall_emulators():
            for cls in batch:
                found[cls.type] = cls
        return found

    def config_sections(self) -> dict[str, Any]:
        sections: dict[str, Any] = {}
        for batch in self.pm.hook.gridhall_config_sections():
            sections.update(batch)
        return sections

    def migrations(self) -> list[Any]:
        return [m for batch in self.pm.hook.gridhall_migrations() for m in batch]

    def roles(self) -> dict[str, list[str]]:
        from daemon.auth import BUILTIN_ROLES

        roles: dict[str, list[str]] = {}
        for impl in self.pm.hook.gridhall_roles.get_hookimpls():
            for role, includes in (_call(impl) or {}).items():
                if role in BUILTIN_ROLES or role in roles:
                    raise PluginError(f"plugin {impl.plugin_name} redefines role {role!r}")
                roles[role] = list(includes)
        return roles

    def api_routers(self, host: Host) -> list[tuple[str, Any]]:
        """(plugin name, router or Mount) for every router a plugin returns."""
        routers: list[tuple[str, Any]] = []
        for impl in self.pm.hook.gridhall_api_routers.get_hookimpls():
            for router in _call(impl, host=host) or []:
                routers.append((impl.plugin_name, router))
        return routers

    def panel_views(self, host: Host) -> list[tuple[str, Any]]:
        """(plugin name, PanelView) for every view a plugin adds to the touch panel."""
        return [
            (impl.plugin_name, view)
            for impl in self._impls("gridhall_panel_views")
            for view in _call(impl, host=host) or []
        ]

    def metrics(self, host: Host) -> list[Any]:
        """Every Prometheus collector a plugin adds to `GET /metrics`."""
        return [
            collector
            for impl in self._impls("gridhall_metrics")
            for collector in _call(impl, host=host) or []
        ]

    def add_cli(self, subparsers: argparse._SubParsersAction[Any]) -> None:
        self.pm.hook.gridhall_cli(subparsers=subparsers)

    async def check_action(
        self, device_id: str, action: str, args: dict[str, Any], host: Host
    ) -> str | None:
        """The first plugin's reason to refuse, or None. A plugin that fails refuses:
        an interlock that cannot be checked must not let the action through."""
        for impl in self._impls("gridhall_check_action"):
            try:
                reason = await await_me_maybe(
                    _call(impl, device_id=device_id, action=action, args=args, host=host)
                )
            except Exception as exc:
                log.exception("plugin %s failed in check_action", impl.plugin_name)
                reason = f"plugin {impl.plugin_name} failed to check the action: {exc}"
            if reason:
                return str(reason)
        return None

    def _impls(self, hook: str) -> list[Any]:
        # pluggy calls the last registered first; keep its order.
        return list(reversed(getattr(self.pm.hook, hook).get_hookimpls()))

    # -- awaited hooks -----------------------------------------------------------
    async def startup(self, host: Host) -> None:
        for result in self.pm.hook.gridhall_startup(host=host):
            await await_me_maybe(result)

    async def shutdown(self, host: Host) -> None:
        for result in self.pm.hook.gridhall_shutdown(host=host):
            try:
                await await_me_maybe(result)
            except Exception:  # one plugin's failure must not stop the others' shutdown
                log.exception("plugin shutdown failed")

    async def mqtt_connected(self, mqtt: Any, host: Host) -> None:
        """Each plugin gets the broker after a (re)connect; one that fails is logged."""
        for impl in self._impls("gridhall_mqtt_connected"):
            try:
                await await_me_maybe(_call(impl, mqtt=mqtt, host=host))
            except Exception:
                log.exception("plugin %s failed in gridhall_mqtt_connected", impl.plugin_name)

    def grid_for_point(self, lon: float, lat: float, host: Host) -> dict[str, Any] | None:
        """The basic grid holding a point, from whichever plugin answers first."""
        found: dict[str, Any] | None = self.pm.hook.gridhall_grid_for_point(
            lon=lon, lat=lat, host=host
        )
        return found

    def member_on_duty(self, grid: str, host: Host) -> dict[str, Any] | None:
        """The full-time member serving a basic grid now, from the first that answers."""
        found: dict[str, Any] | None = self.pm.hook.gridhall_grid_member_on_duty(
            grid=grid, host=host
        )
        return found

    async def ticket_changed(self, change: dict[str, Any], host: Host) -> None:
        """Every plugin hears of a committed ticket change; one that fails is logged."""
        await self._notify("gridhall_ticket_changed", change=change, host=host)

    def ticket_changes(self, after: int, limit: int, host: Host) -> list[dict[str, Any]]:
        """Committed ticket changes after `after`, oldest first ([] with no ticket plugin)."""
        found = self.pm.hook.gridhall_ticket_changes(after=after, limit=limit, host=host)
        return list(found or [])

    async def ticket_alert(self, alert: dict[str, Any], host: Host) -> None:
        await self._notify("gridhall_ticket_alert", alert=alert, host=host)

    async def _notify(self, hook: str, **kwargs: Any) -> None:
        for impl in self._impls(hook):
            try:
                await await_me_maybe(_call(impl, **kwargs))
            except Exception:
                log.exception("plugin %s failed in %s", impl.plugin_name, hook)

    async def event(self, event: Event, host: Host) -> None:
        """Every observer sees every event, whatever another one raised."""
        for impl in self._impls("gridhall_event"):
            try:
                await await_me_maybe(_call(impl, event=event, host=host))
            except Exception:
                log.exception("plugin %s failed on event %s", impl.plugin_name, event.type)
