"""Devices at run time: the buses they share, their state, their availability.

A device is available once its state has been read from the device itself, and stays
so until its link drops or an exchange with it fails. While unavailable, actions on
it answer 503 at once, and its poll loop probes it with backoff, so a dead device on
a shared line costs the others one timeout per probe, not one per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pydantic import ValidationError

from daemon.bus import Backoff, Bus, Priority
from daemon.config import BusConfig, Config, DeviceConfig
from daemon.controls import controls
from daemon.errors import (
    BadArguments,
    DeviceError,
    DeviceRejected,
    GridhallError,
    NotFound,
    ProtocolError,
    Unavailable,
)
from daemon.events import EventBus
from daemon.kinds import State
from daemon.store import Store
from drivers.base import DeviceIO, Driver, Memory, current_priority

log = logging.getLogger(__name__)


def describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = "unknown argument" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


class Device:
    def __init__(
        self, config: DeviceConfig, driver: Driver[Any], bus: Bus[Any] | None, events: EventBus
    ) -> None:
        self.config = config
        self.driver = driver
        self.bus = bus
        self.events = events
        self.state: State = {}
        self.available = False
        self.error: str | None = "not yet read"
        self._synced = asyncio.Event()
        self._wake = asyncio.Event()
        self._backoff = Backoff(
            bus.backoff.min_s if bus else 1.0, bus.backoff.max_s if bus else 10.0
        )
        driver.report = self._set_state
        if bus is not None:
            bus.on_up_change(self._on_bus)

    @property
    def id(self) -> str:
        return self.config.id

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.config.kind.value,
            "driver": self.config.driver,
            "name": self.config.name or self.id,
            "available": self.available,
            "state": self.state,
            "error": None if self.available else self._why_unavailable(),
            "controls": self.controls(),
        }

    def controls(self) -> dict[str, Any]:
        """What a panel needs to draw the device (daemon.controls), and its actions."""
        kind = self.config.kind
        return {
            "actions": sorted(self.driver.actions(kind)),
            **controls(kind, self.driver.options, self.driver, self.state),
        }

    def _why_unavailable(self) -> str | None:
        # A bus that never came up sends no "down" change, so say why it is down here
        # rather than "not yet read" (a projector refusing connections since start-up).
        if self.bus is not None and not self.bus.up and self.bus.stats.last_error:
            return f"link down: {self.bus.stats.last_error}"
        return self.error

    # -- state and availability, published only when they change --------------------
    def _set_state(self, state: State) -> None:
        if state != self.state:
            self.state = state
            self.events.publish("state", self.id, state)

    def _set_available(self, available: bool, error: str | None = None) -> None:
        self.error = error
        if available != self.available:
            self.available = available
            self.events.publish("availability", self.id, {"available": available, "error": error})
            if available:
                log.info("device %s: available", self.id)
            else:
                log.warning("device %s: unavailable: %s", self.id, error)

    def _on_bus(self, up: bool) -> None:
        if not up:
            self._synced.clear()
            self._set_available(
                False, f"link down: {self.bus.stats.last_error if self.bus else ''}"
            )

    def _fault(self, exc: DeviceError, *, wake: bool = True) -> None:
        """Mark the device down; from an action, wake the poll loop to probe it."""
        self._synced.clear()
        self._set_available(False, exc.message)
        if wake:
            self._wake.set()

    # -- actions ------------------------------------------------------------------------
    def parse_args(self, action: str, raw: dict[str, Any]) -> Any:
        model = self.driver.actions(self.config.kind).get(action)
        if model is None:
            known = ", ".join(sorted(self.driver.actions(self.config.kind)))
            raise NotFound(f"device {self.id!r} has no action {action!r}; actions: {known}")
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise BadArguments(f"{action}: {describe_validation(exc)}") from exc

    async def act(self, action: str, args: Any) -> State:
        if not self.available:
            raise Unavailable(f"device {self.id!r} is unavailable: {self.error}")
        current_priority.set(Priority.COMMAND)
        try:
            state = await self.driver.act(action, args)
        except DeviceRejected:
            raise  # the device answered; it is alive
        except DeviceError as exc:
            self._fault(exc)
            raise
        except GridhallError:
            raise  # refused or bad arguments: nothing wrong with the device
        except Exception as exc:  # a driver bug must not become a 500 or kill the daemon
            log.exception("device %s: %s raised", self.id, action)
            fault = ProtocolError(f"{action} failed: {type(exc).__name__}: {exc}")
            self._fault(fault)
            raise fault from exc
        self._set_state(state)
        return state

    # -- the poll loop ------------------------------------------------------------------
    async def run(self) -> None:
        current_priority.set(Priority.POLL)
        interval = self.config.poll_ms / 1000
        while True:
            if self.bus is not None:
                await self.bus.wait_up()
            try:
                if not self._synced.is_set():
                    # Back from a reconnect or a fault: the device's own state first.
                    self._set_state(await self.driver.read_state())
                    self._synced.set()
                    self._backoff.reset()
                    self._set_available(True)
                else:
                    self._set_state(await self.driver.poll())
            except DeviceRejected as exc:
                if not self._synced.is_set():
                    # Refused its first read: it cannot be shown, so it stays down, with
                    # the device's own reason, and is asked again with backoff.
                    self._fault(exc, wake=False)
                    await self._sleep(self._backoff.next_delay())
                    continue
                # A refused poll (busy, say): it answered, so it stays available.
                log.info("device %s: poll refused: %s", self.id, exc.message)
            except DeviceError as exc:
                self._fault(exc, wake=False)
                await self._sleep(self._backoff.next_delay())
                continue
            except Exception as exc:  # a driver bug: fault the device, keep polling
                if self.available:
                    log.exception("device %s: poll raised", self.id)
                self._fault(ProtocolError(f"poll failed: {type(exc).__name__}: {exc}"), wake=False)
                await self._sleep(self._backoff.next_delay())
                continue
            await self._sleep(interval)

    async def _sleep(self, seconds: float) -> None:
        """Sleep until the next poll, or until an action's fault wakes the loop to probe
        the device at once (with backoff) rather than after a long poll interval."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()


class Devices:
    """The registry: every bus and device of the config, started and stopped together."""

    def __init__(
        self,
        config: Config,
        drivers: dict[str, type[Driver[Any]]],
        events: EventBus,
        store: Store | None = None,
    ) -> None:
        self.buses: dict[str, Bus[Any]] = {}
        self.devices: dict[str, Device] = {}
        bus_configs = {b.id: b for b in config.bus}
        for dev in config.device:
            driver_cls = drivers[dev.driver]
            bus = None
            if driver_cls.link_type is not None:
                bus = self._bus_for(dev, bus_configs.get(dev.bus) if dev.bus else None, driver_cls)
            io = DeviceIO[Any](bus, dev.unit) if bus is not None else None
            driver = driver_cls(dev, config.driver_options[dev.id], io)
            driver.memory = Memory(store, dev.id)
            self.devices[dev.id] = Device(dev, driver, bus, events)
        for device in self.devices.values():
            device.driver.bind(self)
        self._tasks: list[asyncio.Task[None]] = []

    def _bus_for(self, dev: DeviceConfig, bus_cfg: BusConfig | None, driver_cls: Any) -> Bus[Any]:
        key = bus_cfg.id if bus_cfg else f"device:{dev.id}"
        if key in self.buses:
            return self.buses[key]
        url = bus_cfg.url if bus_cfg else dev.url
        assert url is not None  # check-config guarantees a bus or a url
        timeout = (bus_cfg.timeout_ms if bus_cfg else 1000) / 1000
        bus = Bus(
            key,
            driver_cls.make_link(url, bus_cfg, timeout),
            gap_ms=bus_cfg.gap_ms if bus_cfg else 0,
            timeout_s=timeout,
            backoff=Backoff(
                (bus_cfg.reconnect_min_ms if bus_cfg else 1000) / 1000,
                (bus_cfg.reconnect_max_ms if bus_cfg else 10_000) / 1000,
            ),
        )
        self.buses[key] = bus
        return bus

    def get(self, device_id: str) -> Device:
        try:
            return self.devices[device_id]
        except KeyError:
            raise NotFound(f"no device {device_id!r}") from None

    def __iter__(self) -> Any:
        return iter(self.devices.values())

    def start(self) -> None:
        for bus in self.buses.values():
            bus.start()
        for device in self.devices.values():
            self._tasks.append(asyncio.create_task(device.run(), name=f"device:{device.id}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for device in self.devices.values():
            await device.driver.close()
        await asyncio.gather(*(bus.stop() for bus in self.buses.values()))
