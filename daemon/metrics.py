"""Prometheus metrics, one registry per daemon (tests run several daemons in a process).

What already counts itself is read when Prometheus scrapes, never copied on the hot
path: the buses' `BusStats`, the devices' availability, the MQTT client's link. Only
what has no count of its own is observed as it happens, with prometheus-client's
histograms and counters: how long a command waited for its bus, how long an action
took (by device, action and result), how scenes ended.

Plugins add collectors through `gridhall_metrics` (docs/plugins.md); a collector
with an `async def refresh()` has it awaited before every scrape, so it can read the
store in one call and `collect()` from memory.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from daemon.bus import Bus, Priority

if TYPE_CHECKING:
    from daemon.devices import Devices
    from daemon.mqtt.client import MqttClient

# A command waits at most the rest of one exchange; a poll may wait behind commands.
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# From a Modbus write (tens of ms) to a projector's warm-up wait (a minute).
ACTION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    def __init__(self, devices: Devices) -> None:
        self.registry = CollectorRegistry()
        for default in (ProcessCollector, PlatformCollector, GCCollector):
            default(registry=self.registry)
        self.hall = HallCollector(devices)
        self.registry.register(self.hall)
        self.queue_wait = Histogram(
            "gridhall_bus_queue_wait_seconds",
            "How long an exchange waited for its bus before reaching the wire.",
            ["bus", "priority"],
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.actions = Histogram(
            "gridhall_action_duration_seconds",
            "Device actions from any source, from the call to the committed audit row; "
            'result is "ok" or the error code answered.',
            ["device", "action", "result"],
            buckets=ACTION_BUCKETS,
            registry=self.registry,
        )
        self.scenes = Counter(
            "gridhall_scene_runs",
            "Scene and sequence runs that ended, by how they ended.",
            ["scene", "status"],
            registry=self.registry,
        )
        self._refreshing: list[Any] = []
        for bus in devices.buses.values():
            self._watch_wait(bus)

    def _watch_wait(self, bus: Bus[Any]) -> None:
        observe = {int(p): self.queue_wait.labels(bus.id, p.name.lower()).observe for p in Priority}
        bus.on_wait = lambda priority, seconds: observe[priority](seconds)

    def add(self, collectors: Iterable[Any]) -> None:
        """Register plugins' collectors; remember those that refresh before a scrape."""
        for collector in collectors:
            self.registry.register(collector)
            if inspect.iscoroutinefunction(getattr(collector, "refresh", None)):
                self._refreshing.append(collector)

    async def scrape(self, accept: str) -> tuple[bytes, str]:
        """The exposition for an `Accept` header (text, or OpenMetrics when asked)."""
        for collector in self._refreshing:
            await collector.refresh()
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


class HallCollector:
    """The core's counts, read at scrape time from where they are kept."""

    def __init__(self, devices: Devices) -> None:
        self.devices = devices
        self.mqtt: MqttClient | None = None  # the bridge's, with [mqtt]

    def collect(self) -> Iterator[Metric]:
        yield from self._buses()
        available = GaugeMetricFamily(
            "gridhall_device_available",
            "1 while the device's state is read from it, 0 while it is unavailable.",
            labels=["device", "kind", "driver"],
        )
        for device in self.devices:
            c = device.config
            available.add_metric([c.id, c.kind.value, c.driver], float(device.available))
        yield available
        if self.mqtt is not None:
            up = float(self.mqtt.connected)
            yield GaugeMetricFamily("gridhall_mqtt_up", "1 while the MQTT bridge is connected.", up)
            yield CounterMetricFamily(
                "gridhall_mqtt_connects", "Connections made to the broker.", self.mqtt.connects
            )

    def _buses(self) -> Iterator[Metric]:
        labels = ["bus"]
        up = GaugeMetricFamily("gridhall_bus_up", "1 while the bus's link is open.", labels=labels)
        queued = GaugeMetricFamily(
            "gridhall_bus_queued", "Exchanges waiting for the bus now.", labels=labels
        )
        exchanges = CounterMetricFamily(
            "gridhall_bus_exchanges", "Exchanges run on the bus.", labels=labels
        )
        errors = CounterMetricFamily(
            "gridhall_bus_errors",
            'Exchanges that failed, by the error code (e.g. "timeout", "link_down").',
            labels=["bus", "kind"],
        )
        reconnects = CounterMetricFamily(
            "gridhall_bus_reconnects", "Times the link came back after a failure.", labels=labels
        )
        for bus in self.devices.buses.values():
            s = bus.stats
            up.add_metric([bus.id], float(bus.up))
            queued.add_metric([bus.id], bus.queued)
            exchanges.add_metric([bus.id], s.exchanges)
            for kind, n in sorted(s.errors_by_kind.items()):
                errors.add_metric([bus.id, kind], n)
            reconnects.add_metric([bus.id], s.reconnects)
        yield from (up, queued, exchanges, errors, reconnects)
