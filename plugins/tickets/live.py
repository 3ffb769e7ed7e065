"""What the ticket plugin keeps per running daemon: its config, the supervision
ladder, the deadline watcher, the broker to publish alerts on.

Built-in plugins are registered as modules, which carry no state of their own, and
several daemons run in one test process; so this is kept in the host's `plugin_data`,
made on first use and dropped at stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plugins.tickets.alerts import Ladder
from plugins.tickets.config import TicketsConfig

if TYPE_CHECKING:
    from daemon.host import Host
    from plugins.tickets.changes import Teller
    from plugins.tickets.metrics import TicketMetrics
    from plugins.tickets.watcher import Watcher

NAME = "tickets"


@dataclass
class Live:
    config: TicketsConfig
    ladder: Ladder
    watcher: Watcher | None = None
    mqtt: Any = None  # daemon.mqtt.bridge.PluginMqtt of the current connection
    told: Teller | None = None  # tells committed changes, in order
    metrics: TicketMetrics | None = None  # made with the daemon, for GET /metrics

    def teller(self, host: Host) -> Teller:
        if self.told is None:
            from plugins.tickets.changes import Teller

            self.told = Teller(host)
        return self.told

    def wake_for(self, next_alert_at: float | None) -> None:
        """A ticket's next alert changed: the watcher re-plans if it sleeps past it."""
        if self.watcher is not None and next_alert_at is not None:
            self.watcher.wake_for(next_alert_at)


def get(host: Host) -> Live:
    found: Live | None = host.plugin_data.get(NAME)
    if found is None:
        config: TicketsConfig = host.config.sections.get(NAME) or TicketsConfig()
        found = host.plugin_data[NAME] = Live(
            config, Ladder(config.escalation, config.lead, host.calendar)
        )
    return found


def drop(host: Host) -> None:
    host.plugin_data.pop(NAME, None)
