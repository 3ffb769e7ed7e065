"""Every hook a gridhall plugin can implement, in one place.

A plugin is a module or object with functions marked `@hookimpl`, registered from the
built-in list or from the `gridhall` entry-point group. The hooks called while the
daemon runs (startup, shutdown, event, check_action) may return an awaitable, which
the host awaits; the others are called while the config is read or the app is built
and return their value.
Hooks only grow: arguments are added, never renamed. Every hook here is documented in
`docs/plugins.md`, and a test checks that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pluggy

if TYPE_CHECKING:
    import argparse

    from daemon.events import Event
    from daemon.host import Host

hookspec = pluggy.HookspecMarker("gridhall")
hookimpl = pluggy.HookimplMarker("gridhall")

# The ticket hooks' vocabulary, part of their contract like their arguments: every
# `transition` a change may carry ("collect" is the creation, the rest the workflow's)
# and the keys of its `ticket`. A plugin checks its config against these without
# importing the ticket plugin (a third party's would not have it); they only grow.
TICKET_TRANSITIONS: Final = (
    "collect",
    "register",
    "dispatch",
    "accept",
    "report",
    "verify",
    "rework",
    "evaluate",
    "reopen",
    "merge",
    "decline",
    "invalidate",
)
TICKET_FIELDS: Final = (
    "id",
    "category",
    "tier",
    "major",
    "state",
    "channel",
    "grid",
    "street",
    "department",
    "member",
    "handler",
    "reporter",
    "created_at",
    "due_at",
    "closed_at",
    "on_time",
)


@hookspec
def gridhall_config_sections() -> dict[str, Any]:  # type: ignore[empty-body]
    """Claim top-level config sections: return `{name: PydanticModel}`.

    Called before the config is validated; the section `[name]` (or `[[name]]` when
    the model is a `list[...]` type) is then validated by the model, and its errors
    are reported with their line like the core's. Since 0.1.
    """


@hookspec
def gridhall_migrations() -> list[Any]:  # type: ignore[empty-body]
    """Return `daemon.store.Migration`s for the plugin's own tables.

    Each migration has a namespace (use the plugin's name) and a version; they are
    applied once each, in version order per namespace, at start. Since 0.1.
    """


@hookspec
def gridhall_drivers() -> list[Any]:  # type: ignore[empty-body]
    """Return device driver classes (subclasses of `drivers.base.Driver`).

    A driver's `name` is what `driver = "..."` in a `[[device]]` names. Since 0.1.
    """


@hookspec
def gridhall_emulators() -> list[Any]:  # type: ignore[empty-body]
    """Return emulator classes (subclasses of `drivers.emulators.base.Emulator`).

    An emulator's `type` is what `type = "..."` in an `[[emulator]]` names; the daemon
    starts them before the buses, for demos and tests. Since 0.1.
    """


@hookspec
def gridhall_roles() -> dict[str, list[str]]:  # type: ignore[empty-body]
    """Add roles: return `{role: [roles it includes]}`.

    The built-in roles are viewer < operator < facility < admin; a plugin role names
    the roles whose rights it has, e.g. `{"dispatcher": ["viewer"]}`. Since 0.1.
    """


@hookspec
def gridhall_api_routers(host: Host) -> list[Any]:  # type: ignore[empty-body]
    """Return FastAPI `APIRouter`s; each is mounted under `/api/v1/<plugin name>/`.

    A router whose own `prefix` starts with `/` outside `/api/v1` (Open311's
    `/open311/v2`) may return `daemon.host.Mount(router, prefix)` to choose its
    place. Use `daemon.api.deps` for auth. Since 0.1.
    """


@hookspec
def gridhall_panel_views(host: Host) -> list[Any]:  # type: ignore[empty-body]
    """Return `daemon.panel.views.PanelView`s: views of the touch panel served at `/`.

    Each is an ES module in a folder of the plugin's package, shown in a tab of its
    own (`slot="view"`) or as a band above every tab (`slot="strip"`), to tokens with
    at least its `role` (and only while its `when(host)`, if given, is true). Called
    once, when the app is built; docs/panel.md says what the module exports and what
    the page gives it. Since 0.3.
    """


@hookspec
async def gridhall_startup(host: Host) -> None:
    """Called once the store is open and the devices are created, before READY.

    `host` gives the config, the store, the event bus and the devices. Since 0.1.
    """


@hookspec
async def gridhall_shutdown(host: Host) -> None:
    """Called when the daemon stops, before the store closes. Since 0.1."""


@hookspec
def gridhall_event(event: Event, host: Host) -> None:
    """Observe every event: device state and availability, actions, plugin events.

    Called from one task, in order; a slow implementation delays only the other
    observers, never the devices. May return an awaitable. Since 0.1.
    """


@hookspec
def gridhall_check_action(
    device_id: str, action: str, args: dict[str, Any], host: Host
) -> str | None:
    """Veto a device action before it is sent: return a reason to refuse it (409).

    Called for every action whatever its source (API, scene, schedule, MQTT); may
    return an awaitable. Return None to allow; an implementation that raises refuses.
    Since 0.1.
    """


@hookspec
def gridhall_cli(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `gridhall` subcommands. Set `func` with `set_defaults(func=...)`; it is
    called with the parsed arguments and returns the exit code. Since 0.1.
    """


@hookspec
def gridhall_mqtt_connected(mqtt: Any, host: Host) -> None:
    """Called after every connection to the broker (the first and each reconnect),
    when `[mqtt]` is configured; may return an awaitable.

    `mqtt` (`daemon.mqtt.bridge.PluginMqtt`) publishes (`mqtt.publish(topic, payload,
    qos=1, retain=False)`, a dict payload is sent as JSON) and subscribes
    (`mqtt.subscribe(filter, handler)`, `handler(topic, payload_bytes)`, may be async).
    Subscriptions last for one connection, so make them here each time; keep `mqtt`
    to publish your events later (from `gridhall_event`, a route). Use topics under
    `mqtt.base_topic + "/<plugin>/"`. Since 0.2.
    """


@hookspec(firstresult=True)
def gridhall_grid_for_point(lon: float, lat: float, host: Host) -> dict[str, Any] | None:
    """The basic grid holding a point (WGS 84 longitude, latitude), or None outside
    every grid: `{"code", "name", "level", "type", "unit", "parent", "path"}`, `path`
    being the codes from the district down. The first non-None answer wins.

    Answered by the grid plugin from memory (an STRtree); a point on a shared edge or
    corner goes to the smallest code (docs/grid.md). Since 0.2.
    """


@hookspec(firstresult=True)
def gridhall_grid_member_on_duty(grid: str, host: Host) -> dict[str, Any] | None:
    """The full-time grid member serving a basic grid now, or None:
    `{"person", "name", "grid", "since"}`. No personal fields: fetch those through
    the API with a role that may see them. The first non-None answer wins. Since 0.2.
    """


@hookspec
def gridhall_ticket_changed(change: dict[str, Any], host: Host) -> None:
    """Called by the ticket plugin after each change to a ticket is committed: its
    creation (`transition` "collect") and every workflow transition. May return an
    awaitable; a failing implementation is logged and the others still run.

    `change` is `{"seq", "at", "actor", "transition", "from", "to", "data", "ticket"}`:
    `seq` increases with every change (the history row's id), `transition` one of
    `TICKET_TRANSITIONS`, `data` the transition's arguments (a reopen's reason, an
    evaluation's satisfaction), `ticket` the ticket after the change, with the keys
    `TICKET_FIELDS`: `{"id", "category", "tier", "major", "state", "channel", "grid",
    "street", "department", "member", "handler", "reporter", "created_at", "due_at",
    "closed_at", "on_time"}`. Delivery is at most once (a crash between the commit and
    the call loses the call): a plugin that must see every change keeps the last `seq`
    it handled and asks `gridhall_ticket_changes` for the rest at startup. Since 0.3.
    """


@hookspec(firstresult=True)
def gridhall_ticket_changes(after: int, limit: int, host: Host) -> list[dict[str, Any]] | None:
    """The committed ticket changes with `seq > after`, oldest first, at most `limit`,
    each shaped as `gridhall_ticket_changed`'s `change` (its `ticket` as it is now).
    Answered by the ticket plugin; None when no ticket plugin is loaded. Since 0.3.
    """


@hookspec
def gridhall_ticket_alert(alert: dict[str, Any], host: Host) -> None:
    """A ticket or a whistle needs attention: `alert` is `{"kind", "level", "ticket",
    "whistle", "message", "at"}`, `kind` one of "reminder" (near its deadline),
    "overdue", "escalated" (supervision moved up a level, `level` the new one),
    "whistle_unanswered". The same alert goes out as the event `tickets.<kind>` on the
    event stream and MQTT; this hook is for code that acts on it (the config's
    `[[tickets.on_alert]]` runs a scene the same way). May return an awaitable. Since 0.3.
    """


@hookspec
def gridhall_metrics(host: Host) -> list[Any]:  # type: ignore[empty-body]
    """Return Prometheus collectors for `GET /metrics`: objects whose `collect()` yields
    metric families (prometheus_client's custom collectors, e.g. `GaugeMetricFamily`).

    Called once, when the daemon is built; they join the daemon's own registry.
    `collect()` runs in the event loop on every scrape, so it answers from memory; a
    collector that needs the store defines `async def refresh()`, awaited before each
    scrape (one `host.store.read` for all it shows). Name metrics `gridhall_<plugin>_`.
    Since 0.3.
    """
